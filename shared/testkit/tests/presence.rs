//! Seed 001's availability-aware Teams sends: a recipient who is not Available is tried in
//! rounds of three tries a day (the pre-calculated time, 10 minutes later, the next full
//! hour), the next round the next working day, three rounds, and then the message is not
//! sent, with that reason. The waits are hours long, so the test
//! moves a deferred delivery's due time to now instead of waiting (the schedule itself is
//! unit-tested in shared/sender/src/presence_retry.rs).

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use pushfleet_loadtest::simulator::Availability;
use pushfleet_testkit::{eventually, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(sqlx::FromRow, Debug)]
struct Row {
    state: String,
    attempts: i32,
    presence_misses: i32,
    due_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

async fn row_for(app: &TestApp, conversation: &str) -> Row {
    try_row_for(app, conversation)
        .await
        .expect("the delivery row")
}

async fn try_row_for(app: &TestApp, conversation: &str) -> Option<Row> {
    sqlx::query_as::<_, Row>(
        "SELECT d.state, d.attempts, d.presence_misses, d.due_at, d.last_error
         FROM deliveries d JOIN people p ON p.id = d.person_id
         WHERE p.teams_conversation->>'conversation_id' = $1",
    )
    .bind(conversation)
    .fetch_optional(app.env.store.pool())
    .await
    .expect("query the delivery row")
}

async fn make_due_now(app: &TestApp, conversation: &str) {
    sqlx::query(
        "UPDATE deliveries d SET due_at = now() FROM people p
         WHERE p.id = d.person_id AND p.teams_conversation->>'conversation_id' = $1",
    )
    .bind(conversation)
    .execute(app.env.store.pool())
    .await
    .expect("move the due time");
}

async fn availability_campaign(app: &TestApp, n: usize) -> Uuid {
    let (audience, template) = app.create_audience_and_template(n).await;
    let (status, c) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "presence", "audience_id": audience, "template_id": template,
                    "channels": ["teams"], "wait_for_availability": true}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

async fn state_counts(app: &TestApp, id: Uuid) -> Value {
    app.get(&format!("/v1/campaigns/{id}")).await.1["progress"]["by_state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_away_recipient_is_retried_later_and_gets_the_message_once_available() {
    let app = TestApp::spawn().await;
    app.sim
        .knobs
        .update(|k| {
            k.presence.users.insert("user-3".into(), Availability::Away);
        })
        .expect("knobs");
    let n = 6;
    let id = availability_campaign(&app, n).await;

    eventually(
        "the available ones sent, user-3 rescheduled",
        TIMEOUT,
        || async {
            let s = state_counts(&app, id).await;
            (s["sent"] == n - 1 && s["retrying"] == 1).then_some(())
        },
    )
    .await;
    let row = row_for(&app, "a:conv-3").await;
    assert_eq!(
        (row.state.as_str(), row.attempts, row.presence_misses),
        ("retrying", 0, 1)
    );
    let due = row.due_at.expect("a next try");
    let in_ten = Utc::now() + ChronoDuration::minutes(10);
    assert!(
        (due - in_ten).num_seconds().abs() < 30,
        "next try in 10 minutes, got {due}"
    );
    assert!(row.last_error.unwrap_or_default().contains("Away"));
    let (_, view) = app.get(&format!("/v1/campaigns/{id}")).await;
    assert_eq!(view["progress"]["deferred"], 1, "{view}");
    assert_eq!(app.sim.recorder.stats().teams.unique, n - 1);

    // User-3 comes back; ten minutes pass.
    app.sim
        .knobs
        .update(|k| {
            k.presence
                .users
                .insert("user-3".into(), Availability::Available);
        })
        .expect("knobs");
    make_due_now(&app, "a:conv-3").await;
    let view = app.wait_for_completion(id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.teams.unique, stats.teams.duplicates), (n, 0));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_three_rounds_unavailable_the_message_is_not_sent_with_that_reason() {
    let app = TestApp::spawn().await;
    app.sim
        .knobs
        .update(|k| k.presence.default = Availability::Busy)
        .expect("knobs");
    let id = availability_campaign(&app, 1).await;
    eventually("first miss recorded", TIMEOUT, || async {
        let row = try_row_for(&app, "a:conv-0").await?;
        (row.presence_misses == 1).then_some(())
    })
    .await;
    // Skip ahead: eight misses recorded, the ninth try is due now.
    sqlx::query("UPDATE deliveries SET presence_misses = 8, due_at = now()")
        .execute(app.env.store.pool())
        .await
        .expect("skip ahead");
    let view = app.wait_for_completion(id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["failed"], 1, "{view}");
    let row = row_for(&app, "a:conv-0").await;
    assert_eq!(
        (row.attempts, row.presence_misses),
        (0, 9),
        "no message was ever sent"
    );
    let reason = row.last_error.unwrap_or_default();
    assert!(
        reason.contains("not sent: recipient unavailable after 3 rounds"),
        "{reason}"
    );
    assert_eq!(app.sim.recorder.stats().teams.received, 0);
    app.shutdown().await;
}

/// Seed 001: "When a campaign lasts several days, here is the sending process in case of
/// absence": the next round ("the next day during opening hours") belongs to the campaign,
/// so a one-day campaign unprograms the message when its day's round is missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_next_day_round_after_the_campaign_window_ends() {
    let app = TestApp::spawn().await;
    app.sim
        .knobs
        .update(|k| k.presence.default = Availability::Away)
        .expect("knobs");
    let (audience, template) = app.create_audience_and_template(1).await;
    let (status, c) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "one day", "audience_id": audience, "template_id": template,
                    "channels": ["teams"], "wait_for_availability": true,
                    "send_window": {"days": 1, "time_zone": "UTC"}}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id: Uuid = c["id"].as_str().and_then(|s| s.parse().ok()).expect("id");
    eventually("a due time", TIMEOUT, || async {
        try_row_for(&app, "a:conv-0").await?.due_at.map(|_| ())
    })
    .await;
    // Skip ahead to the round's last try (the next full hour), due now.
    sqlx::query("UPDATE deliveries SET presence_misses = 2, due_at = now()")
        .execute(app.env.store.pool())
        .await
        .expect("skip ahead");
    let view = app.wait_for_completion(id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["failed"], 1, "{view}");
    let row = row_for(&app, "a:conv-0").await;
    assert_eq!((row.attempts, row.presence_misses), (0, 3));
    let reason = row.last_error.unwrap_or_default();
    assert!(
        reason.contains("not sent: recipient unavailable until the campaign's window ended"),
        "{reason}"
    );
    assert_eq!(app.sim.recorder.stats().teams.received, 0);
    app.shutdown().await;
}
