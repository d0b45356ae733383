//! Twilio status callbacks end to end: the simulator posts signed callbacks to the api, which
//! moves each SMS delivery's provider status forward; forged, repeated and out-of-order
//! callbacks change nothing they should not.

use chrono::{DateTime, Utc};
use pushfleet_domain::{twilio_signature, Channel, DeliveryState};
use pushfleet_store::Outcome;
use pushfleet_testkit::{eventually, Service, TestApp, TWILIO_AUTH_TOKEN};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);

/// What a delivery row says about its provider status.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct StatusRow {
    provider_message_id: Option<String>,
    provider_status: Option<String>,
    provider_error_code: Option<String>,
    provider_status_at: Option<DateTime<Utc>>,
    segments: Option<i32>,
}

async fn status_rows(app: &TestApp) -> Vec<StatusRow> {
    sqlx::query_as(
        "SELECT provider_message_id, provider_status, provider_error_code, provider_status_at,
                segments
         FROM deliveries WHERE channel = 'sms' ORDER BY id",
    )
    .fetch_all(app.env.store.pool())
    .await
    .expect("delivery rows")
}

async fn status_row(app: &TestApp, sid: &str) -> StatusRow {
    sqlx::query_as(
        "SELECT provider_message_id, provider_status, provider_error_code, provider_status_at,
                segments
         FROM deliveries WHERE provider_message_id = $1",
    )
    .bind(sid)
    .fetch_one(app.env.store.pool())
    .await
    .expect("delivery row")
}

async fn parked(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT provider_message_id, status FROM provider_status_inbox ORDER BY 1")
        .fetch_all(app.env.store.pool())
        .await
        .expect("parked reports")
}

type Params = Vec<(String, String)>;

/// The form Twilio posts for a message status.
fn callback(sid: &str, status: &str, error_code: Option<&str>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("To", "+15550000001"),
        ("From", "+15005550006"),
        ("AccountSid", "ACsim"),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(code) = error_code {
        params.push(("ErrorCode".into(), code.into()));
    }
    params
}

fn sign(app: &TestApp, params: &[(String, String)]) -> String {
    twilio_signature::sign(TWILIO_AUTH_TOKEN, &app.twilio_status_url(), params)
}

/// Posts a callback with the given signature header (none when `None`).
async fn post_callback(
    app: &TestApp,
    params: &[(String, String)],
    signature: Option<&str>,
) -> (u16, Value) {
    let mut request = app.http.post(app.twilio_status_url()).form(params);
    if let Some(sig) = signature {
        request = request.header("X-Twilio-Signature", sig);
    }
    let response = request.send().await.expect("POST the callback");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts a callback signed as Twilio signs it.
async fn post_signed(app: &TestApp, params: &[(String, String)]) -> (u16, Value) {
    post_callback(app, params, Some(&sign(app, params))).await
}

/// `n` SMS deliveries recorded as sent with sids `SMtest{i}`, written through the store as
/// the evaluator and the sms-sender write them (no provider involved).
async fn seed_sent_sms(app: &TestApp, n: usize) -> Vec<String> {
    let campaign: Uuid = app.create_campaign(n, &[Channel::Sms]).await;
    let store = &app.env.store;
    store.expand_campaign(campaign).await.expect("expand");
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM deliveries ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("delivery ids");
    let sids: Vec<String> = (0..n).map(|i| format!("SMtest{i}")).collect();
    let outcomes: Vec<Outcome> = ids
        .iter()
        .zip(&sids)
        .map(|(id, sid)| Outcome {
            provider_message_id: Some(sid.clone()),
            segments: Some(1),
            ..Outcome::new(*id, DeliveryState::Sent)
        })
        .collect();
    store.record_outcomes(&outcomes).await.expect("outcomes");
    sids
}

async fn progress_view(app: &TestApp, campaign: Uuid) -> Value {
    let (status, view) = app.get(&format!("/v1/campaigns/{campaign}")).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Waits until the campaign's SMS deliveries all report `status` through the api. Callbacks
/// answered before the sender wrote the sid are applied by the sender's outcome write, which
/// commits after the campaign already shows completed.
async fn wait_for_provider_status(app: &TestApp, campaign: Uuid, status: &str, n: usize) -> Value {
    eventually(&format!("{n} sms deliveries {status}"), TIMEOUT, || async {
        let view = progress_view(app, campaign).await;
        (view["progress"]["by_provider_status"]["sms"][status] == n).then_some(view)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_sms_of_a_campaign_ends_delivered() {
    let app = TestApp::spawn().await;
    let n = 40;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    app.wait_for_completion(campaign, TIMEOUT).await;
    // Two callbacks per message (sent, then delivered), every one answered 2xx.
    let answered = app
        .sim
        .recorder
        .wait_for(|s| s.callbacks.sent + s.callbacks.failed >= 2 * n, TIMEOUT)
        .await;
    assert!(
        answered,
        "callbacks: {:?}",
        app.sim.recorder.stats().callbacks
    );
    assert_eq!(app.sim.recorder.stats().callbacks.failed, 0);

    let view = wait_for_provider_status(&app, campaign, "delivered", n).await;
    assert_eq!(
        view["progress"]["by_provider_status"]["sms"]
            .as_object()
            .map(|m| m.len()),
        Some(1),
        "only delivered: {view}"
    );
    for row in status_rows(&app).await {
        assert_eq!(row.provider_status.as_deref(), Some("delivered"), "{row:?}");
        assert_eq!(row.provider_error_code, None, "{row:?}");
        assert!(row.provider_status_at.is_some(), "{row:?}");
        assert_eq!(row.segments, Some(1), "a short GSM-7 text is one segment");
    }
    assert!(
        parked(&app).await.is_empty(),
        "every early callback found its delivery"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undelivered_messages_keep_twilios_error_code() {
    let app = TestApp::spawn().await;
    app.sim
        .knobs
        .update(|k| k.status_callbacks.undelivered_rate = 1.0)
        .expect("knobs");
    let n = 20;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    // Twilio accepted them: the send itself succeeded, the handset was not reached.
    assert_eq!(view["progress"]["by_channel"]["sms"]["sent"], n, "{view}");

    wait_for_provider_status(&app, campaign, "undelivered", n).await;
    for row in status_rows(&app).await {
        assert_eq!(
            row.provider_status.as_deref(),
            Some("undelivered"),
            "{row:?}"
        );
        assert_eq!(row.provider_error_code.as_deref(), Some("30003"), "{row:?}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn forged_callbacks_are_refused_and_change_nothing() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let sids = seed_sent_sms(&app, 1).await;
    let sid = sids[0].as_str();
    let (status, body) = post_signed(&app, &callback(sid, "sent", None)).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("applied")));
    let before = status_row(&app, sid).await;
    assert_eq!(before.provider_status.as_deref(), Some("sent"));

    let failed = callback(sid, "failed", Some("30008"));
    let good_signature = sign(&app, &failed);
    let mut tampered = failed.clone();
    tampered[2].1 = "delivered".into();
    let elsewhere = twilio_signature::sign(
        TWILIO_AUTH_TOKEN,
        "https://attacker.example/v1/webhooks/twilio/status",
        &failed,
    );
    let wrong_token = twilio_signature::sign("not-the-token", &app.twilio_status_url(), &failed);
    let unknown_sid = callback("SMnobody", "delivered", None);
    let cases: [(&str, &Params, Option<&str>); 6] = [
        ("no signature", &failed, None),
        ("garbage signature", &failed, Some("bm90IGEgc2lnbmF0dXJl")),
        ("signed with another token", &failed, Some(&wrong_token)),
        ("signed for another URL", &failed, Some(&elsewhere)),
        ("a tampered parameter", &tampered, Some(&good_signature)),
        ("an unknown sid, unsigned", &unknown_sid, None),
    ];
    for (what, params, signature) in cases {
        let (status, body) = post_callback(&app, params, signature).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_signature", "{what}: {body}");
        assert_eq!(
            status_row(&app, sid).await,
            before,
            "{what} changed the delivery"
        );
        assert!(parked(&app).await.is_empty(), "{what} was parked");
    }

    // The same request, correctly signed, is accepted.
    let (status, body) = post_callback(&app, &failed, Some(&good_signature)).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("applied")));
    let after = status_row(&app, sid).await;
    assert_eq!(after.provider_status.as_deref(), Some("failed"));
    assert_eq!(after.provider_error_code.as_deref(), Some("30008"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_replayed_callback_is_harmless() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let sids = seed_sent_sms(&app, 1).await;
    let delivered = callback(&sids[0], "delivered", None);
    let (status, body) = post_signed(&app, &delivered).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("applied")));
    let first = status_row(&app, &sids[0]).await;
    for _ in 0..3 {
        let (status, body) = post_signed(&app, &delivered).await;
        assert_eq!((status, body["result"].as_str()), (200, Some("stale")));
    }
    assert_eq!(
        status_row(&app, &sids[0]).await,
        first,
        "not even the timestamp moved"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn statuses_only_move_forward() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let sids = seed_sent_sms(&app, 2).await;

    // Delivered, then a late `sent`: delivered stays.
    let (status, _) = post_signed(&app, &callback(&sids[0], "delivered", None)).await;
    assert_eq!(status, 200);
    let (status, body) = post_signed(&app, &callback(&sids[0], "sent", None)).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("stale")));
    // A final status is never replaced, not even by another final one.
    let (status, body) = post_signed(&app, &callback(&sids[0], "undelivered", Some("30003"))).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("stale")));
    let row = status_row(&app, &sids[0]).await;
    assert_eq!(row.provider_status.as_deref(), Some("delivered"));
    assert_eq!(row.provider_error_code, None);

    // queued -> sent -> undelivered, each one applied.
    for (s, code) in [
        ("queued", None),
        ("sent", None),
        ("undelivered", Some("30003")),
    ] {
        let (status, body) = post_signed(&app, &callback(&sids[1], s, code)).await;
        assert_eq!(
            (status, body["result"].as_str()),
            (200, Some("applied")),
            "{s}"
        );
        assert_eq!(
            status_row(&app, &sids[1]).await.provider_status.as_deref(),
            Some(s)
        );
    }
    assert_eq!(
        status_row(&app, &sids[1])
            .await
            .provider_error_code
            .as_deref(),
        Some("30003")
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_callback_before_the_sid_is_recorded_is_parked_then_applied() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let campaign = app.create_campaign(1, &[Channel::Sms]).await;
    let store = &app.env.store;
    store.expand_campaign(campaign).await.expect("expand");
    let delivery_id: i64 = sqlx::query_scalar("SELECT id FROM deliveries")
        .fetch_one(store.pool())
        .await
        .expect("delivery id");

    // Twilio's callbacks overtake the sender's outcome write: both arrive for an unknown sid.
    for s in ["delivered", "sent"] {
        let (status, body) = post_signed(&app, &callback("SMearly", s, None)).await;
        assert_eq!(
            (status, body["result"].as_str()),
            (200, Some("parked")),
            "{s}"
        );
    }
    assert_eq!(
        parked(&app).await,
        vec![("SMearly".to_owned(), "delivered".to_owned())],
        "the later status is kept"
    );

    store
        .record_outcomes(&[Outcome {
            provider_message_id: Some("SMearly".into()),
            segments: Some(1),
            ..Outcome::new(delivery_id, DeliveryState::Sent)
        }])
        .await
        .expect("outcome");
    let row = status_row(&app, "SMearly").await;
    assert_eq!(row.provider_status.as_deref(), Some("delivered"));
    assert!(row.provider_status_at.is_some());
    assert!(parked(&app).await.is_empty());
    let view = progress_view(&app, campaign).await;
    assert_eq!(
        view["progress"]["by_provider_status"]["sms"]["delivered"], 1,
        "{view}"
    );
    app.shutdown().await;
}

/// The park-then-look-again protocol under contention: each callback races the outcome
/// write that records its sid, and none may be lost whichever commits first.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn callbacks_racing_the_outcome_write_are_never_lost() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let n = 200;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    let store = &app.env.store;
    store.expand_campaign(campaign).await.expect("expand");
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM deliveries ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("delivery ids");
    let races = ids.iter().enumerate().map(|(i, id)| {
        let sid = format!("SMrace{i}");
        let outcome = Outcome {
            provider_message_id: Some(sid.clone()),
            segments: Some(1),
            ..Outcome::new(*id, DeliveryState::Sent)
        };
        let app = &app;
        async move {
            let params = callback(&sid, "delivered", None);
            let (answer, recorded) = tokio::join!(
                post_signed(app, &params),
                store.record_outcomes(std::slice::from_ref(&outcome))
            );
            assert_eq!(answer.0, 200, "{}", answer.1);
            recorded.expect("outcome");
        }
    });
    futures::future::join_all(races).await;

    let view = progress_view(&app, campaign).await;
    assert_eq!(
        view["progress"]["by_provider_status"]["sms"]["delivered"], n,
        "{view}"
    );
    assert!(parked(&app).await.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn bad_callbacks_get_a_json_4xx_and_write_nothing() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let sids = seed_sent_sms(&app, 1).await;
    let before = status_row(&app, &sids[0]).await;

    let mut no_sid = callback(&sids[0], "delivered", None);
    no_sid.retain(|(k, _)| k != "MessageSid");
    let (status, body) = post_signed(&app, &no_sid).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_form")),
        "{body}"
    );

    let mut twice = callback(&sids[0], "delivered", None);
    twice.push(("MessageStatus".into(), "failed".into()));
    let (status, body) = post_signed(&app, &twice).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_form")),
        "{body}"
    );

    let (status, body) = app
        .post_raw(
            "/v1/webhooks/twilio/status",
            "application/json",
            r#"{"MessageSid": "SMtest0", "MessageStatus": "failed"}"#,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );

    assert_eq!(status_row(&app, &sids[0]).await, before);
    assert!(parked(&app).await.is_empty());
    app.shutdown().await;
}

/// A callback's MessageStatus, the answer's `result`, and the provider status stored after.
type Step = (&'static str, &'static str, Option<&'static str>);

/// Twilio's other statuses: a signed callback is never refused (Twilio would log an error
/// and, with retries configured, post it again). What maps onto the stored statuses moves
/// the delivery forward; the rest is answered `ignored` and writes nothing.
#[tokio::test]
async fn every_twilio_status_is_answered_2xx_and_mapped_or_ignored() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let sids = seed_sent_sms(&app, 6).await;
    let steps: [(&str, &[Step]); 6] = [
        // accepted and scheduled are queued; sending is sent; read comes after delivered.
        (
            &sids[0],
            &[
                ("accepted", "applied", Some("queued")),
                ("scheduled", "stale", Some("queued")),
                ("sending", "applied", Some("sent")),
                ("read", "applied", Some("delivered")),
            ],
        ),
        // read alone (the delivered callback lost) still says delivered.
        (
            &sids[1],
            &[
                ("read", "applied", Some("delivered")),
                ("sending", "stale", Some("delivered")),
            ],
        ),
        // canceled is final: nothing after it changes it.
        (
            &sids[2],
            &[
                ("scheduled", "applied", Some("queued")),
                ("canceled", "applied", Some("canceled")),
                ("delivered", "stale", Some("canceled")),
            ],
        ),
        // partially_delivered claims no full delivery: sent, and a final status follows.
        (
            &sids[3],
            &[
                ("partially_delivered", "applied", Some("sent")),
                ("delivered", "applied", Some("delivered")),
            ],
        ),
        // receiving/received are about inbound messages: nothing to record.
        (
            &sids[4],
            &[
                ("receiving", "ignored", None),
                ("received", "ignored", None),
            ],
        ),
        // An undocumented status, validly signed: ignored, not refused.
        (
            &sids[5],
            &[
                ("exploded", "ignored", None),
                ("DELIVERED", "ignored", None),
            ],
        ),
    ];
    for (sid, sequence) in steps {
        for (twilio_status, result, stored) in sequence {
            let (status, body) = post_signed(&app, &callback(sid, twilio_status, None)).await;
            assert_eq!(
                (status, body["result"].as_str()),
                (200, Some(*result)),
                "{sid} {twilio_status}: {body}"
            );
            assert_eq!(
                status_row(&app, sid).await.provider_status.as_deref(),
                *stored,
                "{sid} after {twilio_status}"
            );
        }
    }
    // Forged, whatever the status: refused as before.
    let forged = callback(&sids[4], "canceled", None);
    let (status, _) = post_callback(&app, &forged, Some("bm90IGEgc2lnbmF0dXJl")).await;
    assert_eq!(status, 403);
    assert_eq!(status_row(&app, &sids[4]).await.provider_status, None);
    assert!(parked(&app).await.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn the_webhook_is_in_the_openapi_document() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let op = &doc["paths"]["/v1/webhooks/twilio/status"]["post"];
    assert!(
        op["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object(),
        "{op}"
    );
    for code in ["200", "400", "403"] {
        assert!(op["responses"][code].is_object(), "{code}: {op}");
    }
    assert!(
        doc["components"]["schemas"]["ProgressView"]["properties"]["by_provider_status"]
            .is_object()
    );
    app.shutdown().await;
}
