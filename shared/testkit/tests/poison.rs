//! One bad row or job never holds up the rest: a delivery whose recipient's stored data no
//! longer makes a send job fails alone, with the reason, whether the evaluator publishes it
//! or the scheduler (deferred sends); an evaluate job that fails the same way every time is
//! dead-lettered after a few tries, with the reason on the campaign, and replayable; a
//! sender that cannot read what it needs fails the delivery instead of requeueing it
//! forever.

use chrono::{Duration as ChronoDuration, Timelike, Utc};
use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::Availability;
use pushfleet_testkit::{eventually, Service, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// (state, last_error) of each delivery of a person (by e-mail) on a channel.
async fn delivery_of(pool: &PgPool, email: &str, channel: &str) -> (String, Option<String>) {
    sqlx::query_as(
        "SELECT d.state, d.last_error FROM deliveries d JOIN people p ON p.id = d.person_id
         WHERE p.email = $1 AND d.channel = $2",
    )
    .bind(email)
    .bind(channel)
    .fetch_one(pool)
    .await
    .expect("the delivery row")
}

async fn corrupt(pool: &PgPool, sql: &str, email: &str) {
    let n = sqlx::query(sql)
        .bind(email)
        .execute(pool)
        .await
        .expect("corrupt a row")
        .rows_affected();
    assert_eq!(n, 1, "{sql}");
}

fn id_of(v: &Value) -> Uuid {
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recipient_whose_stored_address_no_longer_parses_fails_alone() {
    let app = TestApp::spawn().await;
    let n = 6;
    let (audience, template) = app.create_audience_and_template(n).await;
    let pool = app.env.store.pool().clone();
    // Stored data that passed validation once and no longer parses (a hand edit, an import
    // that bypassed the api, an older release's rules).
    corrupt(
        &pool,
        "UPDATE people SET phone = 'garbage' WHERE email = $1",
        "person2@example.org",
    )
    .await;
    corrupt(
        &pool,
        "UPDATE people SET teams_conversation = '42' WHERE email = $1",
        "person4@example.org",
    )
    .await;
    let id = app
        .create_campaign_from(audience, template, &Channel::ALL)
        .await;

    let view = app.wait_for_completion(id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 3 * n - 2, "{view}");
    assert_eq!(view["progress"]["by_state"]["failed"], 2, "{view}");
    let (state, reason) = delivery_of(&pool, "person2@example.org", "sms").await;
    assert_eq!(state, "failed");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("stored phone number is invalid"),
        "{reason}"
    );
    let (state, reason) = delivery_of(&pool, "person4@example.org", "teams").await;
    assert_eq!(state, "failed");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("stored Teams conversation is invalid"),
        "{reason}"
    );
    // The same people's other channels are not held back by the bad field.
    assert_eq!(
        delivery_of(&pool, "person2@example.org", "email").await.0,
        "sent"
    );
    assert_eq!(
        delivery_of(&pool, "person4@example.org", "sms").await.0,
        "sent"
    );
    let stats = app.sim.recorder.stats();
    assert_eq!(
        (stats.email.unique, stats.sms.unique, stats.teams.unique),
        (n, n - 1, n - 1)
    );
    assert_eq!(stats.total.duplicates, 0);
    app.shutdown().await;
}

/// Working hours that start an hour from now (on a clock where that does not wrap past
/// midnight): every delivery of a campaign with this window is deferred.
fn later_today_window() -> Value {
    let now = Utc::now();
    let offset_h = (-12i64..=12)
        .find(|h| (now + ChronoDuration::hours(*h)).hour() < 20)
        .expect("some zone where it is not evening");
    let zone = match offset_h {
        0 => "UTC".to_owned(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    };
    let local = now + ChronoDuration::hours(offset_h);
    let from = (local + ChronoDuration::hours(1))
        .format("%H:%M")
        .to_string();
    let to = (local + ChronoDuration::hours(2))
        .format("%H:%M")
        .to_string();
    json!({"days": 1, "time_zone": zone, "working_hours": {"from": from, "to": to}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_deferred_delivery_fails_alone_and_the_scheduler_publishes_the_rest() {
    let app = TestApp::spawn().await;
    let n = 5;
    let (audience, template) = app.create_audience_and_template(n).await;
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "deferred", "audience_id": &audience, "template_id": &template,
                    "channels": ["sms"], "send_window": later_today_window()}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = id_of(&campaign);
    let pool = app.env.store.pool().clone();
    eventually("every delivery deferred", TIMEOUT, || async {
        let (_, view) = app.get(&format!("/v1/campaigns/{id}")).await;
        (view["progress"]["deferred"] == n).then_some(())
    })
    .await;

    // The recipient's phone goes bad while the send waits; then the time comes for all.
    corrupt(
        &pool,
        "UPDATE people SET phone = 'garbage' WHERE email = $1",
        "person1@example.org",
    )
    .await;
    sqlx::query("UPDATE deliveries SET due_at = now()")
        .execute(&pool)
        .await
        .expect("make them due");

    let view = app.wait_for_completion(id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n - 1, "{view}");
    let (state, reason) = delivery_of(&pool, "person1@example.org", "sms").await;
    assert_eq!(state, "failed");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("stored phone number is invalid"),
        "{reason}"
    );
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (n - 1, 0));

    // Deferred publishing goes on: a later deferred campaign (e-mail, which the bad phone
    // does not concern) is published too.
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "deferred 2", "audience_id": audience, "template_id": template,
                    "channels": ["email"], "send_window": later_today_window()}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let second = id_of(&campaign);
    eventually("deferred", TIMEOUT, || async {
        let (_, view) = app.get(&format!("/v1/campaigns/{second}")).await;
        (view["progress"]["deferred"] == n).then_some(())
    })
    .await;
    sqlx::query("UPDATE deliveries SET due_at = now() WHERE campaign_id = $1")
        .bind(second)
        .execute(&pool)
        .await
        .expect("make them due");
    let view = app.wait_for_completion(second, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evaluate_job_failing_every_time_is_dead_lettered_then_replayable() {
    let app = TestApp::spawn().await;
    let n = 3;
    let (audience, template) = app.create_audience_and_template(n).await;
    let start = Utc::now() + ChronoDuration::hours(1);
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "poison", "audience_id": audience, "template_id": template,
                    "channels": ["email"], "start_at": start}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = id_of(&campaign);
    let pool = app.env.store.pool().clone();
    // A stored window that no longer decodes: evaluating fails the same way every time.
    sqlx::query(
        "UPDATE campaigns SET send_window = '{\"bogus\": true}', start_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .expect("corrupt the campaign");

    let error: String = eventually("the evaluation given up", TIMEOUT, || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT evaluation_error FROM campaigns WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .ok()
        .flatten()
    })
    .await;
    // The test fleet's EVALUATOR_MAX_ATTEMPTS is 3.
    assert!(
        error.starts_with("evaluation given up after 3 attempts"),
        "{error}"
    );
    assert_eq!(app.sim.recorder.stats().total.received, 0);
    let dead = dead_letter_reasons(&app).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("send_window"), "{dead:?}");

    // Fixed, and replayed through the api: the campaign goes out, once.
    sqlx::query("UPDATE campaigns SET send_window = NULL WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .expect("fix the campaign");
    let (status, body) = app
        .post("/v1/dead-letters/replay", &json!({"campaign_id": id}))
        .await;
    assert_eq!((status, &body["replayed"]), (202, &json!(1)), "{body}");
    let view = app.wait_for_completion(id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    assert_eq!(view["evaluation_error"], Value::Null, "{view}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.email.unique, stats.email.duplicates), (n, 0));
    app.shutdown().await;
}

/// The reasons of the messages in this namespace's dead-letter queue (taken off it).
async fn dead_letter_reasons(app: &TestApp) -> Vec<String> {
    let topology = pushfleet_queue::Topology::new(app.env.namespace.clone());
    let conn = lapin::Connection::connect(&app.env.amqp_url, Default::default())
        .await
        .expect("connect to RabbitMQ");
    let ch = conn.create_channel().await.expect("channel");
    let mut reasons = Vec::new();
    while let Some(m) = ch
        .basic_get(
            topology.dead_letter_queue().into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .expect("basic.get")
    {
        reasons.push(
            pushfleet_queue::header(&m.delivery, pushfleet_queue::REASON_HEADER)
                .unwrap_or_default(),
        );
    }
    let _ = conn.close(200, "done".into()).await;
    reasons
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_that_cannot_read_the_retry_context_fails_the_delivery_instead_of_looping() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    app.sim
        .knobs
        .update(|k| {
            k.presence.users.insert("user-1".into(), Availability::Away);
        })
        .expect("knobs");
    let n = 3;
    let (audience, template) = app.create_audience_and_template(n).await;
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "presence", "audience_id": audience, "template_id": template,
                    "channels": ["teams"], "wait_for_availability": true}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = id_of(&campaign);
    let pool = app.env.store.pool().clone();
    // Counted directly: "none unpublished" and "all there" as two queries could straddle
    // the expansion's commit (0 unpublished of 0, then 3 rows), and the window below would
    // be corrupted before the evaluator reads it, so no job would ever be published.
    eventually("the send jobs published", TIMEOUT, || async {
        let published: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE published_at IS NOT NULL")
                .fetch_one(&pool)
                .await
                .ok()?;
        (published == n as i64).then_some(())
    })
    .await;
    // What the sender reads to reschedule an unavailable recipient no longer decodes.
    sqlx::query("UPDATE campaigns SET send_window = '{\"bogus\": true}' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .expect("corrupt the campaign");
    app.start(Service::TeamsSender).await;

    let (state, reason) = eventually("user-1's delivery failed", TIMEOUT, || async {
        let row = delivery_of(&pool, "person1@example.org", "teams").await;
        (row.0 == "failed").then_some(row)
    })
    .await;
    assert_eq!(state, "failed");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.starts_with("not sent: reading when to try again failed"),
        "{reason}"
    );
    eventually("the others sent", TIMEOUT, || async {
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'sent'")
            .fetch_one(&pool)
            .await
            .ok()?;
        (sent == n as i64 - 1).then_some(())
    })
    .await;
    assert_eq!(app.sim.recorder.stats().teams.unique, n - 1);
    app.shutdown().await;
}
