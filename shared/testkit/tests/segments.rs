//! Segments (seed 004): create, paste members, CSV uploads processed by the evaluator's
//! import worker (status, counts, error report, member list), real-world and broken CSVs,
//! and processing repeated after a crash giving the same result.

use pushfleet_domain::csv_records::parse_all;
use pushfleet_domain::segment_rows::SegmentRowReader;
use pushfleet_store::UploadClaim;
use pushfleet_testkit::{eventually, Service, TestApp, SEGMENT_UPLOAD_MAX_BYTES};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `n` demo people (person{i}@example.org) with external ids `EXT-{i}`; returns their ids.
async fn people(app: &TestApp, n: usize) -> Vec<Uuid> {
    let (status, created) = app.post("/v1/people", &app.demo_people(n)).await;
    assert_eq!(status, 201, "{created}");
    let ids: Vec<Uuid> = serde_json::from_value(created["ids"].clone()).expect("ids");
    sqlx::query(
        "UPDATE people SET external_id = 'EXT-' || (t.i - 1)
         FROM UNNEST($1::uuid[]) WITH ORDINALITY AS t(id, i) WHERE people.id = t.id",
    )
    .bind(&ids)
    .execute(app.env.store.pool())
    .await
    .expect("set external ids");
    ids
}

async fn deactivate(app: &TestApp, id: Uuid) {
    sqlx::query("UPDATE people SET active = false, deactivated_at = now() WHERE id = $1")
        .bind(id)
        .execute(app.env.store.pool())
        .await
        .expect("deactivate");
}

async fn segment(app: &TestApp, name: &str) -> Uuid {
    let (status, body) = app.post("/v1/segments", &json!({ "name": name })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["member_count"], 0);
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("segment id")
}

async fn upload(app: &TestApp, segment: Uuid, content: impl Into<Vec<u8>>) -> (u16, Value) {
    let r = app
        .http
        .post(format!(
            "{}/v1/segments/{segment}/uploads?filename=people.csv",
            app.api_url
        ))
        .header("content-type", "text/csv")
        .body(content.into())
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Uploads and waits for the worker to finish; returns the final upload view.
async fn upload_and_wait(app: &TestApp, segment: Uuid, content: impl Into<Vec<u8>>) -> Value {
    let (status, accepted) = upload(app, segment, content).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "processing", "{accepted}");
    let id = accepted["id"].as_str().expect("upload id").to_owned();
    wait_finished(app, segment, &id).await
}

async fn wait_finished(app: &TestApp, segment: Uuid, upload: &str) -> Value {
    eventually("the upload to be processed", TIMEOUT, || async {
        let (status, view) = app
            .get(&format!("/v1/segments/{segment}/uploads/{upload}"))
            .await;
        (status == 200 && view["status"] != "processing").then_some(view)
    })
    .await
}

async fn get_text(app: &TestApp, path: &str) -> (u16, String, String) {
    let r = app
        .http
        .get(format!("{}{path}", app.api_url))
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, r.text().await.unwrap_or_default())
}

/// The error report as (row, value, reason) triples, header checked.
async fn error_report(app: &TestApp, view: &Value) -> Vec<(String, String, String)> {
    let url = view["errors_url"].as_str().expect("errors_url");
    let (status, content_type, text) = get_text(app, url).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let records = parse_all(text.as_bytes()).expect("the report is CSV");
    assert_eq!(records[0].fields, ["row", "value", "reason"]);
    records[1..]
        .iter()
        .map(|r| {
            (
                r.fields[0].clone(),
                r.fields[1].clone(),
                r.fields[2].clone(),
            )
        })
        .collect()
}

async fn member_emails(app: &TestApp, segment: Uuid) -> Vec<String> {
    let (status, content_type, text) =
        get_text(app, &format!("/v1/segments/{segment}/members.csv")).await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let records = parse_all(text.as_bytes()).expect("the member list is CSV");
    assert_eq!(records[0].fields, ["name", "email"]);
    let mut emails: Vec<String> = records[1..].iter().map(|r| r.fields[1].clone()).collect();
    emails.sort();
    emails
}

fn triple(row: &str, value: &str, reason: &str) -> (String, String, String) {
    (row.into(), value.into(), reason.into())
}

#[tokio::test]
async fn pasted_emails_add_members_with_a_report_per_row() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let ids = people(&app, 5).await;
    deactivate(&app, ids[3]).await;
    let seg = segment(&app, "new starters").await;
    // Person 4 left this segment on their own: a paste does not put them back.
    app.env
        .store
        .opt_out_of_segment(seg, ids[4], "test", None)
        .await
        .expect("opt out");

    let pasted =
        "person0@example.org\n\nPERSON1@EXAMPLE.ORG\r\nnot-an-email@\nperson0@example.org\n\
                  nobody@example.org\nEXT-2\nperson3@example.org\nperson4@example.org\n";
    let (status, report) = app
        .post_raw(&format!("/v1/segments/{seg}/members"), "text/plain", pasted)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["total"], 8, "{report}");
    assert_eq!(report["added"], 3, "{report}");
    assert_eq!(report["failed"], 5, "{report}");
    assert_eq!(report["member_count"], 3, "{report}");
    let errors: Vec<(i64, String)> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().expect("row"),
                e["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (4, "invalid_email".to_owned()),
            (5, "duplicate_row".to_owned()),
            (6, "unknown_person".to_owned()),
            (8, "deactivated".to_owned()),
            (9, "opted_out".to_owned()),
        ]
    );

    // JSON lists; people already in stay in once; EXT-1 is person 1, named by row 2.
    let (status, report) = app
        .post(
            &format!("/v1/segments/{seg}/members"),
            &json!({"emails": ["person0@example.org", "person1@example.org"],
                    "external_ids": ["EXT-1", "EXT-99"]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["added"], 2, "{report}");
    assert_eq!(
        report["errors"],
        json!([{"row": 3, "value": "EXT-1", "reason": "duplicate_row"},
               {"row": 4, "value": "EXT-99", "reason": "unknown_person"}])
    );
    assert_eq!(report["member_count"], 3, "{report}");

    let (status, view) = app.get(&format!("/v1/segments/{seg}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["name"], "new starters");
    assert_eq!(view["member_count"], 3);
    assert_eq!(view["latest_upload"], Value::Null);
    let (status, list) = app.get("/v1/segments").await;
    assert_eq!(status, 200);
    assert_eq!(list["segments"][0]["id"], seg.to_string());

    assert_eq!(
        member_emails(&app, seg).await,
        [
            "person0@example.org",
            "person1@example.org",
            "person2@example.org"
        ]
    );

    // Bad requests: 4xx with a JSON body, nothing added.
    let (status, body) = app.post("/v1/segments", &json!({"name": " "})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app
        .post_raw(&format!("/v1/segments/{seg}/members"), "text/plain", "\n\n")
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app
        .post_raw(&format!("/v1/segments/{seg}/members"), "text/csv", "a@b.io")
        .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = app
        .post_raw(
            &format!("/v1/segments/{}/members", Uuid::new_v4()),
            "text/plain",
            "person0@example.org",
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    app.shutdown().await;
}

#[tokio::test]
async fn an_upload_is_processed_by_the_worker_with_status_counts_and_reports() {
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let ids = people(&app, 6).await;
    deactivate(&app, ids[5]).await;
    let seg = segment(&app, "uploaded").await;
    app.env
        .store
        .opt_out_of_segment(seg, ids[4], "test", None)
        .await
        .expect("opt out");

    // Excel's "CSV UTF-8": a BOM, CRLF, a header with an extra column, quoted fields (one
    // with a comma, one with a line break), blank lines, bad rows among good ones.
    let csv = "\u{feff}Name,Email,External ID\r\n\
               \"Lovelace, Ada\",person0@example.org,\r\n\
               \r\n\
               \"Two\r\nlines\",,EXT-1\r\n\
               Typo,person2@example,\r\n\
               Ghost,ghost@example.org,\r\n\
               Again,PERSON0@example.org,\r\n\
               ,,\r\n\
               Opted,person4@example.org,\r\n\
               Gone,,EXT-5\r\n\
               Three,person3@example.org,EXT-3\r\n";
    let view = upload_and_wait(&app, seg, csv).await;
    assert_eq!(view["status"], "completed_with_errors", "{view}");
    assert_eq!(view["total"], 8, "{view}");
    assert_eq!(view["added"], 3, "{view}");
    assert_eq!(view["failed"], 5, "{view}");
    assert_eq!(view["filename"], "people.csv");
    let warnings = view["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{view}");
    assert!(
        warnings[0].as_str().unwrap_or_default().contains("Name"),
        "{view}"
    );

    assert_eq!(
        error_report(&app, &view).await,
        vec![
            triple("6", "person2@example", "invalid_email"),
            triple("7", "ghost@example.org", "unknown_person"),
            triple("8", "PERSON0@example.org", "duplicate_row"),
            triple("10", "person4@example.org", "opted_out"),
            triple("11", "EXT-5", "deactivated"),
        ]
    );
    assert_eq!(
        member_emails(&app, seg).await,
        [
            "person0@example.org",
            "person1@example.org",
            "person3@example.org"
        ]
    );
    let (_, segment_view) = app.get(&format!("/v1/segments/{seg}")).await;
    assert_eq!(segment_view["member_count"], 3);
    assert_eq!(segment_view["latest_upload"]["id"], view["id"]);
    assert_eq!(
        segment_view["latest_upload"]["status"],
        "completed_with_errors"
    );

    // The file is dropped once processed: the members and the report are the record.
    let content: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT content FROM segment_uploads WHERE id = $1::uuid")
            .bind(view["id"].as_str())
            .fetch_one(app.env.store.pool())
            .await
            .expect("upload row");
    assert_eq!(content, None);

    // A clean file, no header, LF, external ids and e-mails mixed: `completed`.
    let seg2 = segment(&app, "clean").await;
    let view = upload_and_wait(&app, seg2, "EXT-0\nperson1@example.org\n\nEXT-2").await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(
        (view["total"].as_i64(), view["added"].as_i64()),
        (Some(3), Some(3))
    );
    assert_eq!(view["failed"], 0);
    assert_eq!(view["warnings"], json!([]));
    assert!(error_report(&app, &view).await.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn broken_csvs_are_read_or_refused_clearly_and_valid_rows_are_kept() {
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    people(&app, 4).await;

    // Quoted fields with separators, quotes and line breaks; no header; an extra column.
    let seg = segment(&app, "quoted").await;
    let csv = "\"person0@example.org\",\"note, with a comma\"\n\
               \"person1@example.org\",\"a \"\"quoted\"\"\nmultiline note\"\n\
               \"not an email@\",x\n\
               \n\n   \n\
               person2@example.org";
    let view = upload_and_wait(&app, seg, csv).await;
    assert_eq!(view["status"], "completed_with_errors", "{view}");
    assert_eq!(
        (view["total"].as_i64(), view["added"].as_i64()),
        (Some(4), Some(3))
    );
    assert_eq!(view["warnings"].as_array().map(Vec::len), Some(1), "{view}");
    assert_eq!(
        error_report(&app, &view).await,
        vec![triple("4", "not an email@", "invalid_email")]
    );

    // A header only: nothing to add, nothing wrong.
    let seg = segment(&app, "header only").await;
    let view = upload_and_wait(&app, seg, "email\r\n\r\n").await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["total"], 0);

    // Refused before anything is stored, each with a JSON error saying why.
    let seg = segment(&app, "refused").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10".to_vec();
    let oversized = "person0@example.org\n".repeat(SEGMENT_UPLOAD_MAX_BYTES / 20 + 10);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("binary", png, 400, "not_csv"),
        ("latin-1", b"caf\xe9@example.org\n".to_vec(), 400, "not_csv"),
        ("empty", Vec::new(), 400, "empty_file"),
        (
            "bom and blank lines",
            b"\xEF\xBB\xBF\r\n\r\n".to_vec(),
            400,
            "empty_file",
        ),
        (
            "oversized",
            oversized.into_bytes(),
            413,
            "payload_too_large",
        ),
    ];
    for (what, content, want_status, want_code) in cases {
        let (status, body) = upload(&app, seg, content).await;
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(body["error"]["code"], want_code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    let r = app
        .http
        .post(format!("{}/v1/segments/{seg}/uploads", app.api_url))
        .header("content-type", "image/png")
        .body("person0@example.org")
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 415);
    let (status, _) = upload(&app, Uuid::new_v4(), "person0@example.org").await;
    assert_eq!(status, 404);
    let uploads: i64 =
        sqlx::query_scalar("SELECT count(*) FROM segment_uploads WHERE segment_id = $1")
            .bind(seg)
            .fetch_one(app.env.store.pool())
            .await
            .expect("count");
    assert_eq!(uploads, 0, "refused files are not stored");
    app.shutdown().await;
}

/// A worker that died after some batches, and the job delivered twice: the upload is
/// finished once, with the counts and report of a clean run.
#[tokio::test]
async fn processing_again_after_a_crash_and_a_repeated_job_give_the_same_result() {
    let mut app = TestApp::spawn_with(&[Service::Api]).await;
    let n = 1500;
    let ids = people(&app, n).await;
    for id in ids.iter().step_by(100) {
        deactivate(&app, *id).await;
    }
    // 2,600 rows over three batches: everyone, unknown people, and repeats.
    let mut csv = String::from("email\n");
    for i in 0..n {
        csv.push_str(&format!("person{i}@example.org\n"));
    }
    for i in 0..600 {
        csv.push_str(&format!("stranger{i}@example.org\n"));
    }
    for i in 0..500 {
        csv.push_str(&format!("person{i}@example.org\n"));
    }
    assert!(csv.len() < SEGMENT_UPLOAD_MAX_BYTES);

    let crashed = segment(&app, "crashed").await;
    let (status, accepted) = upload(&app, crashed, csv.clone()).await;
    assert_eq!(status, 202, "{accepted}");
    let upload_id: Uuid = accepted["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");

    // A worker takes the upload, commits two batches, and dies (its connection closes).
    let claim = app
        .env
        .store
        .claim_segment_upload(upload_id)
        .await
        .expect("claim");
    let UploadClaim::Claimed(mut partial) = claim else {
        panic!("the upload should be claimable");
    };
    let mut reader = SegmentRowReader::new();
    let rows: Vec<_> = parse_all(&partial.content)
        .expect("csv")
        .into_iter()
        .filter_map(|r| reader.read(r.line as i64, &r.fields))
        .collect();
    for batch in rows.chunks(pushfleet_evaluator::IMPORT_BATCH).take(2) {
        partial.record_batch(batch).await.expect("batch");
    }
    // While it holds the upload, another worker keeps off it.
    assert!(matches!(
        pushfleet_evaluator::import_upload(&app.env.store, upload_id).await,
        Ok(pushfleet_evaluator::ImportOutcome::Busy)
    ));
    drop(partial);

    // The job is in the outbox once; a second copy as if the relay had published it twice.
    sqlx::query(
        "INSERT INTO outbox (routing_key, payload) SELECT routing_key, payload FROM outbox",
    )
    .execute(app.env.store.pool())
    .await
    .expect("duplicate the outbox row");
    app.start(Service::Scheduler).await;
    app.start(Service::Evaluator).await;
    let after_crash = wait_finished(&app, crashed, &upload_id.to_string()).await;

    // The same file into a fresh segment, processed once, cleanly.
    let clean = segment(&app, "clean").await;
    let clean_view = upload_and_wait(&app, clean, csv).await;

    let deactivated = ids.iter().step_by(100).count() as i64;
    for view in [&after_crash, &clean_view] {
        assert_eq!(view["status"], "completed_with_errors", "{view}");
        assert_eq!(view["total"], 2600, "{view}");
        assert_eq!(view["added"], n as i64 - deactivated, "{view}");
        assert_eq!(view["failed"], 1100 + deactivated, "{view}");
    }
    let crashed_report = error_report(&app, &after_crash).await;
    assert_eq!(crashed_report.len(), 1100 + deactivated as usize);
    assert_eq!(crashed_report, error_report(&app, &clean_view).await);
    assert_eq!(
        member_emails(&app, crashed).await,
        member_emails(&app, clean).await
    );

    // Both copies of the job were consumed: nothing is left to process or to requeue.
    eventually("the outbox to be relayed", TIMEOUT, || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(app.env.store.pool())
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
    app.shutdown().await;
}
