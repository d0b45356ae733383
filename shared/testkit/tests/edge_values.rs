//! Values Postgres cannot store, or that no part of the fleet means: U+0000 in any text, dates
//! outside years 1 to 9999, unknown time zones, oversized templates, invalid UTF-8. Each is
//! refused at the edge with a 4xx (or a row of the import's report) naming the field, and
//! nothing is written. Before the domain types `Text` and `Timestamp`, each of these was a
//! 500 or was stored.

use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};

async fn api_only() -> TestApp {
    TestApp::spawn_with(&[Service::Api]).await
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(app.env.store.pool())
        .await
        .expect("count rows")
}

/// A 422 whose body names `field` (in the message or a detail) and says why.
fn assert_refused(status: u16, body: &Value, field: &str, why: &str) {
    assert_eq!(status, 422, "{body}");
    let text = body["error"].to_string();
    assert!(text.contains(field), "the error names {field}: {body}");
    assert!(text.contains(why), "the error says {why}: {body}");
}

const NUL: &str = "must not contain a NUL character";

#[tokio::test]
async fn a_nul_character_in_any_text_is_refused_naming_the_field() {
    let app = api_only().await;
    let (status, body) = app
        .post(
            "/v1/people",
            &json!({"people": [{"first_name": "a\u{0}b"}]}),
        )
        .await;
    assert_refused(status, &body, "people[0].first_name", NUL);
    assert_eq!(count(&app, "people").await, 0);

    let (status, body) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "subject": "s", "body": "Hello\u{0}"}),
        )
        .await;
    assert_refused(status, &body, "body", NUL);
    let card = json!({"type": "AdaptiveCard", "version": "1.5",
        "body": [{"type": "TextBlock", "text": "x\u{0}"}]});
    let (status, body) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "b", "teams_format": "adaptive_card", "card": card}),
        )
        .await;
    assert_refused(status, &body, "card.body[0].text", NUL);
    assert_eq!(count(&app, "templates").await, 0);

    let (status, body) = app.post("/v1/segments", &json!({"name": "seg\u{0}"})).await;
    assert_refused(status, &body, "name", NUL);
    assert_eq!(count(&app, "segments").await, 0);

    let criteria = json!({"all": [{"property": "department", "op": "equals", "value": "x\u{0}"}]});
    let (status, body) = app
        .post("/v1/audiences/preview", &json!({"criteria": criteria}))
        .await;
    assert_refused(status, &body, "criteria.all[0].value", NUL);
    let (status, body) = app
        .post("/v1/audiences", &json!({"name": "a", "criteria": criteria}))
        .await;
    assert_refused(status, &body, "criteria.all[0].value", NUL);
    assert_eq!(count(&app, "audiences").await, 0);
}

#[tokio::test]
async fn the_import_refuses_nul_and_invalid_utf8_per_row() {
    let app = api_only().await;
    let mut ndjson = br#"{"email": "ada@example.org", "first_name": "Ada"}"#.to_vec();
    ndjson.extend_from_slice(b"\n{\"email\": \"bad@example.org\", \"first_name\": \"B\xffob\"}\n");
    ndjson.extend_from_slice(
        br#"{"email": "nul@example.org", "first_name": "N", "attributes": {"k": "v\u0000"}}"#,
    );
    let response = app
        .http
        .post(format!("{}/v1/people/import", app.api_url))
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .expect("POST the import");
    let report: Value = response.json().await.expect("a JSON report");
    assert_eq!(report["inserted"], 1, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let errors = report["errors"].to_string();
    assert!(errors.contains("not valid UTF-8"), "{report}");
    assert!(errors.contains("attributes.k"), "{report}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT first_name FROM people")
        .fetch_all(app.env.store.pool())
        .await
        .expect("people");
    assert_eq!(stored, ["Ada"], "no name repaired into U+FFFD");
}

#[tokio::test]
async fn dates_outside_years_1_to_9999_are_refused() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (audience, template) = app.create_audience_and_template(2).await;
    for start_at in ["-4714-01-01T00:00:00Z", "+262142-12-31T00:00:00Z"] {
        let (status, body) = app
            .post(
                "/v1/campaigns",
                &json!({"name": "c", "audience_id": audience, "template_id": template,
                        "channels": ["email"], "start_at": start_at}),
            )
            .await;
        assert_refused(status, &body, "start_at", "between the years 1 and 9999");
    }
    assert_eq!(count(&app, "campaigns").await, 0);

    let csv = "email,first_name,joining_date\nold@example.org,Old,-4714-01-01\n";
    let response = app
        .http
        .post(format!("{}/v1/people/import", app.api_url))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("POST the import");
    let report: Value = response.json().await.expect("a JSON report");
    assert_eq!(report["failed"], 1, "{report}");
    assert!(
        report["errors"].to_string().contains("joining_date"),
        "{report}"
    );
}

#[tokio::test]
async fn an_unknown_time_zone_is_refused_as_the_import_does() {
    let app = api_only().await;
    let (status, body) = app
        .post(
            "/v1/people",
            &json!({"people": [{"first_name": "M", "time_zone": "Mars/Olympus"}]}),
        )
        .await;
    assert_refused(status, &body, "people[0].time_zone", "IANA time zone");
    assert_eq!(count(&app, "people").await, 0);
}

#[tokio::test]
async fn templates_and_criteria_are_bounded() {
    let app = api_only().await;
    let big = "x".repeat(100_001);
    let (status, body) = app
        .post("/v1/templates", &json!({"name": "t", "body": big}))
        .await;
    assert_refused(status, &body, "body", "at most 100000 bytes");
    assert_eq!(count(&app, "templates").await, 0);

    // Far more criteria than allowed: one error, not one per criterion.
    let leaves: Vec<Value> = (0..5_000)
        .map(|_| json!({"property": "nope", "op": "nope", "value": 1}))
        .collect();
    let (status, body) = app
        .post(
            "/v1/audiences/preview",
            &json!({"criteria": {"any": leaves}}),
        )
        .await;
    assert_refused(status, &body, "criteria", "at most 200 criteria");
    assert!(body.to_string().len() < 1_000, "a short answer: {body}");

    // Past the document's bound, the parse itself stops (memory bounded by the bound, not
    // by the body): 60,000 values where 50,000 are allowed.
    let values = vec![json!(1); 60_000];
    let (status, body) = app
        .post(
            "/v1/audiences/preview",
            &json!({"criteria": {"any": values}}),
        )
        .await;
    assert_refused(status, &body, "criteria", "too many values");
}
