//! The directory import: real-world CSV, upserts by external id or e-mail, relations that
//! point further down the file, a per-row report, and clear refusals of what is not CSV.

use pushfleet_testkit::{Service, TestApp};
use serde_json::Value;

async fn api_only() -> TestApp {
    TestApp::spawn_with(&[Service::Api]).await
}

async fn import(app: &TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/v1/people/import", app.api_url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST the import");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn person_by_external_id(app: &TestApp, external_id: &str) -> Option<Value> {
    sqlx::query_scalar::<_, Value>(
        "SELECT to_jsonb(p) - 'created_at' - 'updated_at' FROM people p WHERE external_id = $1",
    )
    .bind(external_id)
    .fetch_optional(app.env.store.pool())
    .await
    .expect("query person")
}

async fn count_people(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(app.env.store.pool())
        .await
        .expect("count")
}

const MESSY_CSV: &str = "\u{feff}External ID,E-mail,First Name,Last name,Department,Teams,Roles,Joining date,Manager,Coaches,Attributes.cost_center,Favourite colour\r\n\
E1,ceo@corp.io,Ceo,Boss,Board,,,2020-01-01,,,CC-0,blue\r\n\
\r\n\
E2,\"lead@corp.io\",\"Lea, the lead\",Smith,Engineering,\"Alpha;Beta\",admin,2024-03-01,E1,,CC-1,red\r\n\
E3,dev@corp.io,\"Dev \"\"the kid\"\"\",Jones,Engineering,Alpha,,2026-06-01,lead@corp.io,E1;E2,CC-1,\r\n\
E4,not-an-email,Bad,Row,Sales,,,,,,,\r\n\
E5,late@corp.io,Late,Joiner,Sales,,,31/12/2026,,,,\r\n\
E6,new@corp.io,New,Person,Sales,,,,E99,,,\r\n\
\r\n";

#[tokio::test]
async fn a_messy_csv_imports_its_valid_rows_and_reports_the_rest() {
    let app = api_only().await;
    let (status, report) = import(&app, "text/csv", MESSY_CSV).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows"], 6, "{report}");
    assert_eq!(report["inserted"], 4, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let errors = report["errors"].as_array().expect("errors");
    let by_row: Vec<(i64, String)> = errors
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().unwrap_or(-1),
                e["field"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    // Line numbers as an editor shows them (blank line 3 included); the unknown manager of
    // E6 is reported but E6 is imported.
    assert_eq!(
        by_row,
        vec![
            (6, "email".to_owned()),
            (7, "joining_date".to_owned()),
            (8, "manager".to_owned())
        ],
        "{report}"
    );
    let warnings = report["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(warnings[0]
        .as_str()
        .unwrap_or("")
        .contains("Favourite colour"));

    let dev = person_by_external_id(&app, "E3")
        .await
        .expect("E3 imported");
    let lead = person_by_external_id(&app, "E2")
        .await
        .expect("E2 imported");
    let ceo = person_by_external_id(&app, "E1")
        .await
        .expect("E1 imported");
    assert_eq!(dev["first_name"], "Dev \"the kid\"");
    assert_eq!(lead["first_name"], "Lea, the lead");
    assert_eq!(lead["teams"], serde_json::json!(["Alpha", "Beta"]));
    assert_eq!(
        dev["attributes"],
        serde_json::json!({"cost_center": "CC-1"})
    );
    // A forward reference (E2 names E1 above it; E3 names lead@ by e-mail) resolves.
    assert_eq!(dev["manager_id"], lead["id"]);
    assert_eq!(lead["manager_id"], ceo["id"]);
    let coaches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM person_relations WHERE kind = 'coach' AND person_id = $1::text::uuid",
    )
    .bind(dev["id"].as_str())
    .fetch_one(app.env.store.pool())
    .await
    .expect("coaches");
    assert_eq!(coaches, 2);
    assert!(person_by_external_id(&app, "E4").await.is_none());

    // The same file again changes nothing and creates nobody.
    let (status, again) = import(&app, "text/csv", MESSY_CSV).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["inserted"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(count_people(&app).await, 4);
    assert_eq!(person_by_external_id(&app, "E3").await, Some(dev));
}

#[tokio::test]
async fn upserts_match_by_external_id_then_email_and_touch_only_given_columns() {
    let app = api_only().await;
    let (status, r) = import(
        &app,
        "text/csv",
        "email,first_name,department,phone\nada@corp.io,Ada,Research,+33612345678\nbob@corp.io,Bob,Sales,\n",
    )
    .await;
    assert_eq!((status, r["inserted"].as_u64()), (200, Some(2)), "{r}");
    // An external id adopts the person found by e-mail; the phone column is absent, so
    // Ada keeps her phone; Bob's e-mail cannot move to Ada's.
    let (status, r) = import(
        &app,
        "text/csv",
        "external_id,email,department\nA1,ADA@corp.io,Physics\nB1,bob@corp.io,\nB2,ada@corp.io,x\n",
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (
            r["inserted"].as_u64(),
            r["updated"].as_u64(),
            r["failed"].as_u64()
        ),
        (Some(0), Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(r["errors"][0]["row"], 4, "{r}");
    assert!(r["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("belongs to another person"));
    let ada = person_by_external_id(&app, "A1")
        .await
        .expect("Ada adopted A1");
    assert_eq!(ada["department"], "Physics");
    assert_eq!(ada["phone"], "+33612345678");
    assert_eq!(ada["first_name"], "Ada");
    let bob = person_by_external_id(&app, "B1")
        .await
        .expect("Bob adopted B1");
    assert_eq!(bob["department"], Value::Null, "an empty cell clears");

    // Deactivating keeps the row (and its history).
    let (status, r) = import(
        &app,
        "application/x-ndjson",
        "{\"external_id\": \"A1\", \"active\": false}\n\nnot json\n",
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["updated"].as_u64(), r["failed"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let ada = person_by_external_id(&app, "A1")
        .await
        .expect("still there");
    assert_eq!(ada["active"], false);
    assert!(ada["deactivated_at"].is_string());

    // A person twice in one batch: the later row wins, as if rows ran one by one.
    let (status, r) = import(
        &app,
        "application/json",
        r#"{"people": [{"external_id": "C1", "first_name": "One"}, {"external_id": "C1", "first_name": "Two"}]}"#,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["inserted"].as_u64(), r["updated"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let c1 = person_by_external_id(&app, "C1").await.expect("C1");
    assert_eq!(c1["first_name"], "Two");

    // Managers: one set within the batch, one only at the end; the file's last word wins.
    let (status, r) = import(
        &app,
        "text/csv",
        "external_id,email,manager\nM1,m1@corp.io,\nW1,w1@corp.io,M2\nW1,w1@corp.io,m1@CORP.io\nM2,m2@corp.io,\nW2,w2@corp.io,M2\n",
    )
    .await;
    assert_eq!((status, r["failed"].as_u64()), (200, Some(0)), "{r}");
    let m1 = person_by_external_id(&app, "M1").await.expect("M1");
    let m2 = person_by_external_id(&app, "M2").await.expect("M2");
    let w1 = person_by_external_id(&app, "W1").await.expect("W1");
    let w2 = person_by_external_id(&app, "W2").await.expect("W2");
    assert_eq!(w1["manager_id"], m1["id"], "the later row of W1 names M1");
    assert_eq!(
        w2["manager_id"], m2["id"],
        "W2 names M2, written earlier in the file"
    );

    // The api shows the directory fields, and DELETE deactivates (the row stays).
    let bob = person_by_external_id(&app, "B1").await.expect("B1");
    let id = bob["id"].as_str().expect("id");
    let (status, view) = app.get(&format!("/v1/people/{id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["external_id"].as_str(), view["active"].as_bool()),
        (Some("B1"), Some(true)),
        "{view}"
    );
    let r = app
        .http
        .delete(format!("{}/v1/people/{id}", app.api_url))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 204);
    let (_, view) = app.get(&format!("/v1/people/{id}")).await;
    assert_eq!(view["active"], false, "{view}");
    let r = app
        .http
        .delete(format!(
            "{}/v1/people/{}",
            app.api_url,
            uuid::Uuid::now_v7()
        ))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn what_is_not_csv_is_refused_with_a_clear_error() {
    let mut app = api_only().await;
    // Binary: the rows before the NUL byte are kept, and the answer says so.
    let mut body = b"email,first_name\nok@corp.io,Ok\n".to_vec();
    body.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0xff]);
    let (status, r) = import(&app, "text/csv", body).await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["code"], "not_csv");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("1 rows before it were imported"),
        "{r}"
    );
    assert_eq!(count_people(&app).await, 1);

    let (status, r) = import(&app, "text/csv", &b"email\n\xff\xfe\xfd\n"[..]).await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (400, Some("not_csv")),
        "{r}"
    );
    let (status, r) = import(&app, "text/csv", "name,department\nAda,R&D\n").await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (422, Some("invalid_header")),
        "{r}"
    );
    let (status, r) = import(&app, "text/csv", "").await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (422, Some("empty_file")),
        "{r}"
    );
    let (status, r) = import(&app, "application/pdf", "%PDF").await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{r}"
    );
    let (status, r) = import(&app, "application/json", "{\"people\": [").await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{r}"
    );

    // Over the size limit: 413, JSON body.
    app.import_max_bytes = 2_000;
    app.restart_api().await;
    let big: String = std::iter::once("email\n".to_owned())
        .chain((0..500).map(|i| format!("p{i}@corp.io\n")))
        .collect();
    let (status, r) = import(&app, "text/csv", big).await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{r}"
    );
}

/// Two imports of the same new people at once: each batch inserts without `ON CONFLICT`, so
/// one of the two writers meets the other's rows as a unique violation and runs the batch
/// again. Every row of both files must land once, as an insert in one report and an update
/// in the other (or both as updates), with no row reported failed.
#[tokio::test]
async fn concurrent_imports_of_the_same_people_neither_fail_nor_duplicate() {
    let app = api_only().await;
    let n = 12_000;
    let csv: String = std::iter::once("external_id,email,first_name,manager\n".to_owned())
        .chain((0..n).map(|i| {
            let manager = if i >= 10 {
                format!("X{}", i / 10)
            } else {
                String::new()
            };
            format!("X{i},p{i}@corp.io,P{i},{manager}\n")
        }))
        .collect();
    let (a, b) = tokio::join!(
        import(&app, "text/csv", csv.clone()),
        import(&app, "text/csv", csv)
    );
    for (status, report) in [&a, &b] {
        assert_eq!(*status, 200, "{report}");
        assert_eq!(report["failed"], 0, "{report}");
    }
    let inserted = a.1["inserted"].as_i64().unwrap_or(-1) + b.1["inserted"].as_i64().unwrap_or(-1);
    let updated = a.1["updated"].as_i64().unwrap_or(-1) + b.1["updated"].as_i64().unwrap_or(-1);
    assert_eq!(inserted, n, "each person inserted once: {a:?} {b:?}");
    assert_eq!(updated, n, "and found by the other import: {a:?} {b:?}");
    assert_eq!(count_people(&app).await, n);
    let without_manager: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM people WHERE manager_id IS NULL AND external_id <> ALL($1)",
    )
    .bind((0..10).map(|i| format!("X{i}")).collect::<Vec<_>>())
    .fetch_one(app.env.store.pool())
    .await
    .expect("count managers");
    assert_eq!(without_manager, 0, "every manager resolved");
}
