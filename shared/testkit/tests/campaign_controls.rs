//! The emergency stop across two sender replicas: a paused campaign starts no provider call
//! on either (its queued jobs are parked, no attempt spent), resumes where it stopped and
//! reaches everyone exactly once; a cancelled one ends every unsent delivery `cancelled`
//! and sends nothing more.

use chrono::Utc;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{Channel as SimChannel, Latency, SimConfig};
use pushfleet_queue::Topology;
use pushfleet_testkit::faults::assert_each_recipient_once;
use pushfleet_testkit::{eventually, Service, TestApp};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);
const N: usize = 300;
/// A pause reaches the senders within their poll (250 ms); a call already started ends
/// within the simulator's latency (at most 30 ms). Calls starting later than this after
/// the pause was answered would be calls the pause failed to stop.
const REACH: chrono::TimeDelta = chrono::TimeDelta::milliseconds(1000);

async fn ready_jobs(app: &TestApp) -> u32 {
    let conn = Connection::connect(&app.env.amqp_url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let ch = conn.create_channel().await.expect("channel");
    let queue = Topology::new(app.env.namespace.clone()).send_queue(Channel::Email);
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let count = ch
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await
        .expect("the queue exists")
        .message_count();
    let _ = conn.close(200, "looked".into()).await;
    count
}

async fn count(app: &TestApp, campaign: Uuid, condition: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND {condition}"
    ))
    .bind(campaign)
    .fetch_one(app.env.store.pool())
    .await
    .expect("count deliveries")
}

/// Two e-mail sender replicas, a scheduler and an evaluator; a 300-recipient campaign
/// under way.
async fn campaign_under_way() -> (TestApp, Uuid) {
    let sim = SimConfig {
        latency: Latency::new(20, 10),
        ..SimConfig::ephemeral()
    };
    let mut app = TestApp::spawn_with_sim(
        &[Service::Scheduler, Service::Evaluator, Service::EmailSender],
        sim,
    )
    .await;
    app.start_replica(Service::EmailSender, 1).await;
    let campaign = app.create_campaign(N, &[Channel::Email]).await;
    assert!(app.sim.recorder.wait_for_unique(40, TIMEOUT).await);
    (app, campaign)
}

/// Both replicas stopped as SIGTERM stops them: the calls under way end and are recorded,
/// the jobs not started go back to the queue. Returns the calls made, each of them recorded.
async fn stop_senders(app: &mut TestApp, campaign: Uuid) -> i64 {
    app.stop_replica(Service::EmailSender, 0).await;
    app.stop_replica(Service::EmailSender, 1).await;
    let sent = count(app, campaign, "state = 'sent'").await;
    assert_eq!(
        sent,
        app.sim.recorder.unique_count() as i64,
        "every call recorded"
    );
    sent
}

/// No call began later than [`REACH`] after `halted_at`.
fn assert_no_late_call(app: &TestApp, halted_at: chrono::DateTime<Utc>) {
    let late = app
        .sim
        .recorder
        .messages_for(SimChannel::Email)
        .into_iter()
        .filter(|m| m.received_at > halted_at + REACH)
        .count();
    assert_eq!(late, 0, "calls began after the campaign was halted");
}

async fn start_senders(app: &mut TestApp) {
    app.start_replica(Service::EmailSender, 0).await;
    app.start_replica(Service::EmailSender, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_campaign_sends_nothing_and_resumes_where_it_stopped() {
    let (mut app, campaign) = campaign_under_way().await;
    let path = format!("/v1/campaigns/{campaign}");
    let (status, paused) = app
        .post(&format!("{path}/pause"), &serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{paused}");
    let paused_at = Utc::now();
    assert_eq!(paused["status"], "paused");

    let sent = stop_senders(&mut app, campaign).await;
    assert!(sent < N as i64, "paused mid-campaign: {sent} sent");
    assert_no_late_call(&app, paused_at);
    // Senders started while the campaign is paused park every job of it they get.
    start_senders(&mut app).await;
    eventually("every unsent delivery parked", TIMEOUT, || async {
        let published = count(
            &app,
            campaign,
            "state IN ('pending', 'retrying') AND published_at IS NOT NULL",
        )
        .await;
        (published == 0 && ready_jobs(&app).await == 0).then_some(())
    })
    .await;
    let parked = count(
        &app,
        campaign,
        "state = 'pending' AND published_at IS NULL AND due_at IS NULL",
    )
    .await;
    assert_eq!(
        sent + parked,
        N as i64,
        "every unsent delivery waits, parked"
    );
    assert_eq!(
        app.sim.recorder.unique_count() as i64,
        sent,
        "nothing sent while paused"
    );
    let (_, view) = app.get(&path).await;
    assert_eq!(view["status"], "paused", "{view}");
    let (status, _) = app
        .post(&format!("{path}/pause"), &serde_json::json!({}))
        .await;
    assert_eq!(status, 409, "paused once");

    let (status, resumed) = app
        .post(&format!("{path}/resume"), &serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{resumed}");
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], N, "{view}");
    let stats = app.sim.recorder.stats();
    let stats = stats.channel(SimChannel::Email);
    assert_eq!((stats.unique, stats.duplicates), (N, 0), "{stats:?}");
    assert_each_recipient_once(&app, Channel::Email, N);
    let most_attempts: i32 =
        sqlx::query_scalar("SELECT max(attempts) FROM deliveries WHERE campaign_id = $1")
            .bind(campaign)
            .fetch_one(app.env.store.pool())
            .await
            .expect("attempts");
    assert_eq!(most_attempts, 1, "parking spent no attempt");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_campaign_ends_its_unsent_deliveries_and_sends_nothing_more() {
    let (mut app, campaign) = campaign_under_way().await;
    let path = format!("/v1/campaigns/{campaign}");
    let (status, cancelled) = app
        .post(&format!("{path}/cancel"), &serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let cancelled_at = Utc::now();

    let sent = stop_senders(&mut app, campaign).await;
    assert!(sent < N as i64, "cancelled mid-campaign: {sent} sent");
    assert_no_late_call(&app, cancelled_at);
    let ended = count(&app, campaign, "state = 'cancelled'").await;
    assert_eq!(sent + ended, N as i64, "every delivery sent or cancelled");
    // A second campaign queued whole while no sender runs, then cancelled: its jobs reach
    // the senders fresh (not flagged as redelivered), and are dropped unsent.
    let (_, first) = app.get(&path).await;
    let second = app
        .create_campaign_from(
            first["audience_id"].clone(),
            first["template_id"].clone(),
            &[Channel::Email],
        )
        .await;
    eventually("the second campaign queued", TIMEOUT, || async {
        (count(&app, second, "published_at IS NOT NULL").await == N as i64).then_some(())
    })
    .await;
    let (status, _) = app
        .post(
            &format!("/v1/campaigns/{second}/cancel"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    start_senders(&mut app).await;
    eventually("the queue drained", TIMEOUT, || async {
        (ready_jobs(&app).await == 0).then_some(())
    })
    .await;
    stop_senders(&mut app, campaign).await;
    assert_eq!(
        app.sim.recorder.unique_count() as i64,
        sent,
        "nothing sent after the cancel"
    );
    assert_eq!(
        app.sim
            .recorder
            .stats()
            .channel(SimChannel::Email)
            .duplicates,
        0
    );
    let (_, view) = app.get(&path).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["progress"]["by_state"]["cancelled"], ended, "{view}");
    let (status, _) = app
        .post(&format!("{path}/resume"), &serde_json::json!({}))
        .await;
    assert_eq!(status, 409, "a cancelled campaign does not resume");
    app.shutdown().await;
}
