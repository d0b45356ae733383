//! Bad input at the API: a clear 4xx with a JSON error body, and nothing written.

use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(app.env.store.pool())
        .await
        .expect("count rows")
}

async fn api_only() -> TestApp {
    TestApp::spawn_with(&[Service::Api]).await
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "an error explains itself: {body}"
    );
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_json_body() {
    let app = api_only().await;
    let (status, body) = app
        .post_raw("/v1/people", "application/json", "{\"people\": [")
        .await;
    assert_error(status, &body, 400, "invalid_json");
    assert_eq!(count(&app, "people").await, 0);
}

#[tokio::test]
async fn unknown_and_missing_fields_are_rejected() {
    let app = api_only().await;
    let (status, body) = app
        .post(
            "/v1/people",
            &json!({"people": [{"first_name": "Ada", "nickname": "A"}]}),
        )
        .await;
    assert_error(status, &body, 422, "invalid_body");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("nickname"));

    let (status, body) = app.post("/v1/templates", &json!({"name": "no body"})).await;
    assert_error(status, &body, 422, "invalid_body");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("body"));
    assert_eq!(
        count(&app, "people").await + count(&app, "templates").await,
        0
    );
}

#[tokio::test]
async fn a_non_json_content_type_is_a_415() {
    let app = api_only().await;
    let (status, body) = app.post_raw("/v1/people", "text/csv", "email\na@b.c").await;
    assert_error(status, &body, 415, "unsupported_media_type");
}

#[tokio::test]
async fn invalid_people_are_reported_per_field_and_none_are_written() {
    let app = api_only().await;
    let (status, body) = app
        .post(
            "/v1/people",
            &json!({"people": [
                {"first_name": "Ok", "email": "ok@example.org"},
                {"first_name": " ", "email": "not-an-email", "phone": "0612"},
            ]}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .map(|d| d.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["people[1].email", "people[1].phone", "people[1].first_name"]
    );
    // All or nothing: the valid first person is not written either.
    assert_eq!(count(&app, "people").await, 0);
}

#[tokio::test]
async fn a_duplicate_email_is_a_409() {
    let app = api_only().await;
    let person = json!({"people": [{"first_name": "Ada", "email": "ada@example.org"}]});
    assert_eq!(app.post("/v1/people", &person).await.0, 201);
    let (status, body) = app
        .post(
            "/v1/people",
            &json!({"people": [{"first_name": "Ada", "email": "ADA@Example.org"}]}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    assert_eq!(count(&app, "people").await, 1);
}

#[tokio::test]
async fn an_unknown_placeholder_is_rejected_when_the_template_is_saved() {
    let app = api_only().await;
    let (status, body) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "Hi {{nickname}}"}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    assert_eq!(body["error"]["details"][0]["field"], "body");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("nickname"));
    assert_eq!(count(&app, "templates").await, 0);
}

#[tokio::test]
async fn an_audience_needs_members_that_exist() {
    let app = api_only().await;
    let (status, body) = app
        .post("/v1/audiences", &json!({"name": "empty", "person_ids": []}))
        .await;
    assert_error(status, &body, 422, "validation_failed");

    let ghost = uuid::Uuid::new_v4();
    let (status, body) = app
        .post(
            "/v1/audiences",
            &json!({"name": "ghosts", "person_ids": [ghost]}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    assert!(body["error"]["details"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains(&ghost.to_string()));
    assert_eq!(count(&app, "audiences").await, 0);
}

#[tokio::test]
async fn a_campaign_must_reference_an_existing_audience_and_template() {
    let app = api_only().await;
    let (_, template) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "Hi {{first_name}}"}),
        )
        .await;
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "c", "audience_id": uuid::Uuid::new_v4(),
                    "template_id": template["id"], "channels": ["email"]}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    assert_eq!(body["error"]["details"][0]["field"], "audience_id");

    let (_, people) = app
        .post(
            "/v1/people",
            &json!({"people": [{"first_name": "Ada", "email": "ada@example.org"}]}),
        )
        .await;
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "a", "person_ids": people["ids"]}),
        )
        .await;
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "c", "audience_id": audience["id"],
                    "template_id": uuid::Uuid::new_v4(), "channels": ["email"]}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    assert_eq!(body["error"]["details"][0]["field"], "template_id");

    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "c", "audience_id": audience["id"],
                    "template_id": template["id"], "channels": ["fax"]}),
        )
        .await;
    assert_error(status, &body, 422, "invalid_body");

    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "c", "audience_id": audience["id"],
                    "template_id": template["id"], "channels": []}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    assert_eq!(count(&app, "campaigns").await, 0);
}

#[tokio::test]
async fn bad_paths_and_unknown_routes_get_json_errors() {
    let app = api_only().await;
    let (status, body) = app.get("/v1/campaigns/not-a-uuid").await;
    assert_error(status, &body, 400, "invalid_path");
    let (status, body) = app
        .get(&format!("/v1/campaigns/{}", uuid::Uuid::new_v4()))
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get("/v1/nothing-here").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get("/v1/people").await;
    assert_error(status, &body, 405, "method_not_allowed");
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = api_only().await;
    // The test API allows 1 MiB.
    let big = format!(
        "{{\"people\": [{{\"first_name\": \"{}\"}}]}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, body) = app.post_raw("/v1/people", "application/json", &big).await;
    assert_error(status, &body, 413, "payload_too_large");
    assert_eq!(count(&app, "people").await, 0);
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes() {
    let app = api_only().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/v1/people",
        "/v1/audiences",
        "/v1/templates",
        "/v1/campaigns",
        "/v1/campaigns/{id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    // Every reference names a schema the document holds (utoipa registers the schemas of
    // bodies, not those a query parameter names).
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
