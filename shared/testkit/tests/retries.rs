//! Provider failures: transient ones retry through the delay queues, permanent ones are not
//! retried, and exhausted attempts end in the dead-letter queue, listed and replayable
//! through the API.

use pushfleet_domain::Channel;
use pushfleet_testkit::{Service, TestApp};
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn max_attempts(app: &TestApp) -> i32 {
    sqlx::query_scalar("SELECT max(attempts) FROM deliveries")
        .fetch_one(app.env.store.pool())
        .await
        .expect("attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_500s_is_retried_until_every_message_is_sent_once() {
    let app = TestApp::spawn().await;
    app.sim
        .knobs
        .update(|k| k.teams.server_error = 1.0)
        .expect("knobs");
    let n = 30;
    let campaign = app.create_campaign(n, &[Channel::Teams]).await;
    // Every first attempt fails; then the provider recovers.
    let failed_once = app
        .sim
        .recorder
        .wait_for(|s| s.rejected.teams.server_error >= n, TIMEOUT)
        .await;
    assert!(failed_once);
    app.sim
        .knobs
        .update(|k| k.teams.server_error = 0.0)
        .expect("knobs");

    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    assert!(max_attempts(&app).await >= 2, "the sends were retried");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.teams.unique, stats.teams.duplicates), (n, 0));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permanent_failures_are_not_retried_and_say_why() {
    let app = TestApp::spawn().await;
    app.sim
        .knobs
        .update(|k| {
            k.sms.rejected_recipients.insert("+15550000001".into());
            k.sms.rejected_recipients.insert("+15550000003".into());
        })
        .expect("knobs");
    let campaign = app.create_campaign(5, &[Channel::Sms]).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 3, "{view}");
    assert_eq!(view["progress"]["by_state"]["failed"], 2, "{view}");
    let rows: Vec<(i32, Option<String>)> = sqlx::query_as(
        "SELECT attempts, last_error FROM deliveries WHERE state = 'failed' ORDER BY id",
    )
    .fetch_all(app.env.store.pool())
    .await
    .expect("failed rows");
    for (attempts, error) in rows {
        assert_eq!(attempts, 1, "a permanent failure is not retried");
        assert!(
            error.unwrap_or_default().contains("21211"),
            "the provider's reason is kept"
        );
    }
    assert_eq!(app.sim.recorder.stats().rejected.sms.permanent, 2);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exhausted_attempts_dead_letter_with_a_reason_and_can_be_replayed() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    app.sender_tuning.retry.max_attempts = 2;
    app.start(Service::SmsSender).await;
    app.sim
        .knobs
        .update(|k| k.sms.server_error = 1.0)
        .expect("knobs");
    let n = 8;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;

    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["dead"], n, "{view}");
    let (status, page) = app
        .get(&format!("/v1/dead-letters?campaign_id={campaign}"))
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), n);
    for item in &items {
        assert_eq!(item["attempts"], 2);
        assert!(
            item["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("HTTP 500"),
            "{item}"
        );
    }
    assert_eq!(app.sim.recorder.stats().sms.unique, 0);

    // The provider recovers; the operator replays the campaign's dead letters.
    app.sim
        .knobs
        .update(|k| k.sms.server_error = 0.0)
        .expect("knobs");
    let (status, replayed) = app
        .post(
            "/v1/dead-letters/replay",
            &json!({ "campaign_id": campaign }),
        )
        .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["replayed"], n);
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let (_, page) = app.get("/v1/dead-letters").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0));
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (n, 0));
    app.shutdown().await;
}
