//! `Idempotency-Key` on creates: a retry with the same key and request gets the first
//! answer and creates nothing again, concurrent retries included; the same key with another
//! request is refused. Before, 50 identical segment uploads made 50 upload jobs.

use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(app.env.store.pool())
        .await
        .expect("count rows")
}

/// POSTs `body` with an Idempotency-Key; returns the status, whether it was a replay, and
/// the JSON answer.
async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    content_type: &str,
    body: String,
) -> (u16, bool, Value) {
    let r = app
        .http
        .post(format!("{}{path}", app.api_url))
        .header("content-type", content_type)
        .header("idempotency-key", key)
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    (status, replayed, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_identical_uploads_with_one_key_make_one_upload() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (status, segment) = app.post("/v1/segments", &json!({"name": "s"})).await;
    assert_eq!(status, 201, "{segment}");
    let path = format!(
        "/v1/segments/{}/uploads",
        segment["id"].as_str().expect("id")
    );
    let csv = "email\na@example.org\nb@example.org\n".to_owned();

    let answers = futures::future::join_all(
        (0..50).map(|_| post_with_key(&app, &path, "upload-1", "text/csv", csv.clone())),
    )
    .await;
    let mut ids = std::collections::BTreeSet::new();
    for (status, _, body) in &answers {
        match status {
            202 => {
                ids.insert(body["id"].as_str().expect("upload id").to_owned());
            }
            // Sent while the first was still running.
            409 => assert_eq!(body["error"]["code"], "idempotency_key_in_use", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every answer names the one upload");
    assert_eq!(count(&app, "segment_uploads").await, 1);
    // Once the first finished, a retry is answered from the record.
    let (status, replayed, body) = post_with_key(&app, &path, "upload-1", "text/csv", csv).await;
    assert_eq!((status, replayed), (202, true), "{body}");
    assert!(ids.contains(body["id"].as_str().expect("id")));
}

#[tokio::test]
async fn a_retried_create_gets_the_first_answer_and_another_request_is_refused() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (audience, template) = app.create_audience_and_template(2).await;
    let campaign = json!({"name": "c", "audience_id": audience, "template_id": template,
                          "channels": ["email"]})
    .to_string();
    let json = "application/json";
    let (s1, r1, first) = post_with_key(&app, "/v1/campaigns", "c-1", json, campaign.clone()).await;
    let (s2, r2, again) = post_with_key(&app, "/v1/campaigns", "c-1", json, campaign.clone()).await;
    assert_eq!((s1, r1), (201, false), "{first}");
    assert_eq!((s2, r2), (201, true), "{again}");
    assert_eq!(first["id"], again["id"]);
    assert_eq!(count(&app, "campaigns").await, 1);

    // The same key for another request.
    let other = campaign.replace("\"c\"", "\"other\"");
    let (status, _, body) = post_with_key(&app, "/v1/campaigns", "c-1", json, other).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(count(&app, "campaigns").await, 1);

    // Without a key, each request creates.
    let (status, _) = app
        .post(
            "/v1/campaigns",
            &serde_json::from_str(&campaign).expect("json"),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(count(&app, "campaigns").await, 2);
}

#[tokio::test]
async fn a_validation_answer_is_replayed_and_a_malformed_key_refused() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let bad = json!({"name": ""}).to_string();
    let json = "application/json";
    let (s1, _, _) = post_with_key(&app, "/v1/segments", "s-1", json, bad.clone()).await;
    let (s2, replayed, _) = post_with_key(&app, "/v1/segments", "s-1", json, bad).await;
    assert_eq!((s1, s2, replayed), (422, 422, true));

    let long = "k".repeat(256);
    let body = json!({"name": "ok"}).to_string();
    let (status, _, answer) = post_with_key(&app, "/v1/segments", &long, json, body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_idempotency_key");
    assert_eq!(count(&app, "segments").await, 0);
}

#[tokio::test]
async fn a_request_that_lost_its_claim_cannot_answer_over_the_one_that_took_it() {
    use pushfleet_store::{KeyClaim, StoredResponse};
    use std::time::Duration;
    let app = TestApp::spawn_with(&[]).await;
    let store = &app.env.store;
    let fingerprint = b"the same request".to_vec();
    // A claim with no lease left: its holder is taken for dead, and a retry takes over.
    let Ok(KeyClaim::Claimed(first)) = store
        .claim_idempotency_key("caller", "k", &fingerprint, Duration::ZERO)
        .await
    else {
        panic!("the first use claims the key");
    };
    let Ok(KeyClaim::Claimed(second)) = store
        .claim_idempotency_key("caller", "k", &fingerprint, Duration::from_secs(60))
        .await
    else {
        panic!("the retry takes over an expired claim");
    };
    assert_ne!(first, second);
    let answer = |body: &str| StoredResponse {
        status: 201,
        content_type: Some("application/json".into()),
        body: body.as_bytes().to_vec(),
    };
    let renewed = store
        .renew_idempotency_key("caller", "k", first, Duration::from_secs(60))
        .await
        .expect("renew");
    assert!(!renewed, "the first holder cannot renew a claim it lost");
    store
        .release_idempotency_key("caller", "k", first)
        .await
        .expect("release");
    let recorded = store
        .complete_idempotency_key("caller", "k", first, &answer("first"))
        .await
        .expect("complete");
    assert!(!recorded, "nor answer over the retry");
    let recorded = store
        .complete_idempotency_key("caller", "k", second, &answer("second"))
        .await
        .expect("complete");
    assert!(recorded);
    let replayed = store
        .claim_idempotency_key("caller", "k", &fingerprint, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(replayed, KeyClaim::Replay(answer("second")));
    // A live claim is renewed, and a retry meanwhile waits.
    let Ok(KeyClaim::Claimed(live)) = store
        .claim_idempotency_key("caller", "k2", &fingerprint, Duration::ZERO)
        .await
    else {
        panic!("claim k2");
    };
    assert!(store
        .renew_idempotency_key("caller", "k2", live, Duration::from_secs(60))
        .await
        .expect("renew"));
    let retry = store
        .claim_idempotency_key("caller", "k2", &fingerprint, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(
        retry,
        KeyClaim::InProgress,
        "a renewed claim is not taken over"
    );
    app.shutdown().await;
}
