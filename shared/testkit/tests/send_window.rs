//! Seed 001's sending window: sends are spread at random over working hours and wait in
//! Postgres (not in a consumer) until due; the scheduler publishes them on time.

use chrono::{Duration as ChronoDuration, Timelike, Utc};
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::TestApp;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_spread_over_the_working_hours_and_none_goes_early() {
    let app = TestApp::spawn().await;
    let (audience, template) = app.create_audience_and_template(20).await;

    // Working hours: the 3 seconds starting 2 seconds from now, on a clock far from midnight
    // (a window may not wrap past it).
    let now = Utc::now();
    let (zone, offset_h) = if (60..86_340).contains(&now.num_seconds_from_midnight()) {
        ("UTC", 0)
    } else {
        ("Etc/GMT-12", 12)
    };
    let local = now + ChronoDuration::hours(offset_h);
    let from = (local + ChronoDuration::seconds(2))
        .format("%H:%M:%S")
        .to_string();
    let to = (local + ChronoDuration::seconds(5))
        .format("%H:%M:%S")
        .to_string();
    let window_start = now + ChronoDuration::seconds(1);
    let window_end = now + ChronoDuration::seconds(6);

    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({
                "name": "spread", "audience_id": audience, "template_id": template,
                "channels": ["sms"],
                "send_window": {"days": 1, "time_zone": zone,
                                "working_hours": {"from": from, "to": to}},
            }),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");

    // Evaluated at once (every delivery given a due time), but every send waits for it.
    let pool = app.env.store.pool().clone();
    pushfleet_testkit::eventually("due times assigned", Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE due_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .ok()?;
        (n == 20).then_some(())
    })
    .await;
    let (_, view) = app.get(&format!("/v1/campaigns/{id}")).await;
    if Utc::now() < window_start {
        assert_eq!(view["progress"]["deferred"], 20, "{view}");
    }

    let view = app.wait_for_completion(id, Duration::from_secs(30)).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 20, "{view}");
    let received: Vec<_> = app
        .sim
        .recorder
        .messages_for(SimChannel::Sms)
        .into_iter()
        .map(|m| m.received_at)
        .collect();
    assert_eq!(received.len(), 20);
    let first = received.iter().min().copied().expect("some");
    let last = received.iter().max().copied().expect("some");
    assert!(
        first >= window_start,
        "sent before the window: {first} < {window_start}"
    );
    assert!(
        last <= window_end,
        "sent after the window: {last} > {window_end}"
    );
    assert!(
        last - first >= ChronoDuration::milliseconds(1000),
        "sends are spread, not a burst: {first} .. {last}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_window_is_refused_with_the_field_named() {
    let app = TestApp::spawn_with(&[]).await;
    let (audience, template) = app.create_audience_and_template(1).await;
    for (window, field) in [
        (
            json!({"days": 2, "time_zone": "Mars/Olympus"}),
            "send_window.time_zone",
        ),
        (json!({"days": 0}), "send_window.days"),
        (
            json!({"days": 1, "working_hours": {"from": "17:00", "to": "09:00"}}),
            "send_window.working_hours",
        ),
        (
            json!({"days": 1, "working_hours": {"from": "9h", "to": "17:00"}}),
            "send_window.working_hours.from",
        ),
        (json!({"days": 1, "weekdays": [0]}), "send_window.weekdays"),
    ] {
        let (status, body) = app
            .post(
                "/v1/campaigns",
                &json!({"name": "w", "audience_id": audience, "template_id": template,
                        "channels": ["email"], "send_window": window}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{body}");
    }
    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(app.env.store.pool())
        .await
        .expect("count");
    assert_eq!(campaigns, 0);
    app.shutdown().await;
}

/// A campaign with a send window, paused with jobs parked and resumed outside its working
/// hours: the parked deliveries get new times in the window, not "now".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_campaign_resumed_outside_its_hours_waits_for_them() {
    use pushfleet_testkit::Service;
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let (audience, template) = app.create_audience_and_template(5).await;
    // Working hours: one hour starting two hours from now, on a clock that does not wrap
    // past midnight within the next three hours.
    let now = Utc::now();
    let (zone, offset_h) = if now.hour() < 20 {
        ("UTC", 0)
    } else {
        ("Etc/GMT+12", -12)
    };
    let local = now + ChronoDuration::hours(offset_h);
    let from = (local + ChronoDuration::hours(2))
        .format("%H:%M")
        .to_string();
    let to = (local + ChronoDuration::hours(3))
        .format("%H:%M")
        .to_string();
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({
                "name": "resumed at night", "audience_id": audience, "template_id": template,
                "channels": ["sms"],
                "send_window": {"days": 2, "time_zone": zone,
                                "working_hours": {"from": from, "to": to}},
            }),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id: uuid::Uuid = campaign["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let pool = app.env.store.pool().clone();
    pushfleet_testkit::eventually("due times assigned", Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND due_at IS NOT NULL",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .ok()?;
        (n == 5).then_some(())
    })
    .await;
    let (status, paused) = app
        .post(&format!("/v1/campaigns/{id}/pause"), &json!({}))
        .await;
    assert_eq!(status, 200, "{paused}");
    // Two jobs were parked by a sender while paused: unpublished, no due time.
    sqlx::query(
        "UPDATE deliveries SET due_at = NULL, published_at = NULL
         WHERE id IN (SELECT id FROM deliveries WHERE campaign_id = $1 ORDER BY id LIMIT 2)",
    )
    .bind(id)
    .execute(&pool)
    .await
    .expect("park two");
    let (status, resumed) = app
        .post(&format!("/v1/campaigns/{id}/resume"), &json!({}))
        .await;
    assert_eq!(status, 200, "{resumed}");

    let early: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries
         WHERE campaign_id = $1 AND (due_at IS NULL OR due_at < now() + interval '1 hour')",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(early, 0, "every delivery waits for the working hours");
    app.shutdown().await;
}
