//! Send jobs travel in batches (`SEND_JOBS_PER_MESSAGE`, 10 in tests): per channel on the
//! wire; a redelivered batch sends only what is not recorded yet; one job's transient failure
//! retries that job alone; a sender stopped mid-batch acks the batch and hands back only the
//! jobs it had not started; a malformed batch is dead-lettered.

use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel as AmqpChannel, Connection, ConnectionProperties};
use pushfleet_domain::{Channel, SendJob, SendMessage};
use pushfleet_loadtest::simulator::{Channel as SimChannel, Latency, SimConfig};
use pushfleet_queue::{Broker, Topology};
use pushfleet_testkit::{eventually, Service, TestApp, SEND_JOBS_PER_MESSAGE};
use std::collections::BTreeSet;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn connect(app: &TestApp) -> Connection {
    Connection::connect(&app.env.amqp_url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ")
}

/// Ready messages in a queue.
async fn message_count(conn: &Connection, queue: &str) -> u32 {
    let ch = conn.create_channel().await.expect("channel");
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let count = ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .expect("the queue exists")
        .message_count();
    let _ = ch.close(200, "looked".into()).await;
    count
}

/// Publishes a raw payload to a send queue, confirmed.
async fn publish(conn: &Connection, topology: &Topology, channel: Channel, payload: &[u8]) {
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    ch.basic_publish(
        topology.work_exchange().as_str().into(),
        Topology::send_key(channel).as_str().into(),
        BasicPublishOptions::default(),
        payload,
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
    .expect("publish")
    .await
    .expect("confirm");
    let _ = ch.close(200, "published".into()).await;
}

/// The next message of a queue, unacked (it returns to the queue when `ch` closes), decoded:
/// (redelivered, jobs).
async fn take(ch: &AmqpChannel, queue: &str) -> Option<(bool, Vec<SendJob>)> {
    let m = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")?;
    let jobs = match SendMessage::from_json(&m.delivery.data) {
        Ok(SendMessage::One(job)) => vec![*job],
        Ok(SendMessage::Batch(jobs)) => jobs,
        Err(e) => panic!("undecodable send message: {e}"),
    };
    Some((m.delivery.redelivered, jobs))
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.env.store.pool())
        .await
        .expect("count")
}

async fn sent_ids(app: &TestApp) -> BTreeSet<i64> {
    sqlx::query_scalar::<_, i64>("SELECT id FROM deliveries WHERE state = 'sent'")
        .fetch_all(app.env.store.pool())
        .await
        .expect("sent rows")
        .into_iter()
        .collect()
}

async fn all_published(app: &TestApp, n: i64) {
    eventually("every send job published", TIMEOUT, || async {
        (count(
            app,
            "SELECT count(*) FROM deliveries WHERE published_at IS NOT NULL",
        )
        .await
            == n)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_travels_in_batches_per_channel_and_reaches_everyone_once() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let n = 25;
    let campaign = app.create_campaign(n, &Channel::ALL).await;
    all_published(&app, 3 * n as i64).await;

    // 25 jobs per channel: two full messages and a partial one, on each channel's queue.
    let conn = connect(&app).await;
    let topology = Topology::new(app.env.namespace.clone());
    assert_eq!(SEND_JOBS_PER_MESSAGE, 10);
    for channel in Channel::ALL {
        assert_eq!(
            message_count(&conn, &topology.send_queue(channel)).await,
            3,
            "{channel}"
        );
    }
    let _ = conn.close(200, "done".into()).await;

    for channel in Channel::ALL {
        app.start(Service::sender(channel)).await;
    }
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 3 * n, "{view}");
    let stats = app.sim.recorder.stats();
    for ch in [SimChannel::Email, SimChannel::Teams, SimChannel::Sms] {
        let s = stats.channel(ch);
        assert_eq!((s.unique, s.duplicates), (n, 0), "{ch:?}: {s:?}");
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM deliveries WHERE attempts <> 1").await,
        0,
        "one provider call per delivery"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivered_batch_sends_only_the_jobs_not_yet_recorded() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let n = 10;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    all_published(&app, n as i64).await;

    // What a sender killed mid-batch leaves: it took the message, recorded some outcomes
    // (three sent; one failed with its retry queued), and died before the ack.
    let conn = connect(&app).await;
    let topology = Topology::new(app.env.namespace.clone());
    let ch = conn.create_channel().await.expect("channel");
    let (redelivered, jobs) = take(&ch, &topology.send_queue(Channel::Sms))
        .await
        .expect("the batch");
    assert!(!redelivered);
    assert_eq!(jobs.len(), n, "one message carries the campaign");
    let recorded_sent: Vec<i64> = jobs[..3].iter().map(|j| j.delivery_id).collect();
    sqlx::query("UPDATE deliveries SET state = 'sent', attempts = 1 WHERE id = ANY($1)")
        .bind(&recorded_sent)
        .execute(app.env.store.pool())
        .await
        .expect("record three as sent");
    let failed_once = &jobs[3];
    sqlx::query("UPDATE deliveries SET state = 'retrying', attempts = 1 WHERE id = $1")
        .bind(failed_once.delivery_id)
        .execute(app.env.store.pool())
        .await
        .expect("record one failed attempt");
    let retry = SendJob {
        attempt: 2,
        maybe_duplicate: true,
        ..failed_once.clone()
    };
    let retry = serde_json::to_vec(&retry).expect("encode the retry");
    publish(&conn, &topology, Channel::Sms, &retry).await;
    // The channel closes unacked: the broker redelivers the batch.
    let _ = ch.close(200, "died".into()).await;

    app.start(Service::SmsSender).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (n - 3, 0));
    let received: BTreeSet<String> = app
        .sim
        .recorder
        .messages_for(SimChannel::Sms)
        .into_iter()
        .map(|m| m.recipient)
        .collect();
    for job in &jobs[..3] {
        let phone = job.recipient.phone.as_ref().expect("a phone").to_string();
        assert!(
            !received.contains(&phone),
            "{phone} was recorded: not sent again"
        );
    }
    // The failed job went out once, by its retry, not by the redelivered batch.
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM deliveries WHERE id = $1")
        .bind(failed_once.delivery_id)
        .fetch_one(app.env.store.pool())
        .await
        .expect("attempts");
    assert_eq!(attempts, 2);
    eventually("the batch acked", TIMEOUT, || async {
        (message_count(&conn, &topology.send_queue(Channel::Sms)).await == 0).then_some(())
    })
    .await;
    let _ = conn.close(200, "done".into()).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transient_failure_retries_only_that_job_of_its_batch() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    // Room for the failure to be seen and lifted before the attempts run out.
    app.sender_tuning.retry.max_attempts = 5;
    app.start(Service::SmsSender).await;
    let flaky = "+15550000003";
    app.sim
        .knobs
        .update(|k| {
            k.sms.failing_recipients.insert(flaky.into());
        })
        .expect("knobs");
    let n = 10;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;

    let seen = app
        .sim
        .recorder
        .wait_for(
            |s| s.rejected.sms.server_error >= 1 && s.sms.unique == n - 1,
            TIMEOUT,
        )
        .await;
    assert!(seen, "the batch's other jobs went out while one failed");
    app.sim
        .knobs
        .update(|k| k.sms.failing_recipients.clear())
        .expect("knobs");

    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (n, 0));
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT p.phone, d.attempts FROM deliveries d JOIN people p ON p.id = d.person_id",
    )
    .fetch_all(app.env.store.pool())
    .await
    .expect("attempts");
    for (phone, attempts) in rows {
        if phone == flaky {
            assert!(attempts >= 2, "the failing job was retried: {attempts}");
        } else {
            assert_eq!(attempts, 1, "{phone} is not sent again with the retry");
        }
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_calls_in_flight_stay_within_the_provider_concurrency() {
    let sim = SimConfig {
        latency: Latency::new(20, 0),
        ..SimConfig::ephemeral()
    };
    let mut app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    // Sixteen job slots but three provider calls: the other jobs wait for a call, not for
    // a connection of their own.
    app.sender_tuning.concurrency = 16;
    app.sender_tuning.provider_concurrency = 3;
    let n = 40;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    all_published(&app, n as i64).await;
    app.start(Service::SmsSender).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (n, 0));
    assert!(
        (1..=3).contains(&stats.max_concurrent_calls),
        "at most 3 calls at once, saw {}",
        stats.max_concurrent_calls
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_stopped_mid_batch_acks_it_and_hands_back_only_the_jobs_not_started() {
    let sim = SimConfig {
        latency: Latency::new(100, 0),
        ..SimConfig::ephemeral()
    };
    let mut app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    // Two job slots: a batch of ten is still running when the stop comes.
    app.sender_tuning.concurrency = 2;
    let n = 40;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    all_published(&app, n as i64).await;
    app.start(Service::SmsSender).await;
    assert!(app.sim.recorder.wait_for_unique(3, TIMEOUT).await);
    app.stop(Service::SmsSender).await;

    // Every provider call made is recorded.
    let sent = sent_ids(&app).await;
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (sent.len(), 0));
    assert!(sent.len() < n, "stopped mid-campaign");

    // Every delivery not sent is in exactly one queued message, and no sent one is: the
    // batch that was running was acked, its jobs not started came back on their own.
    let conn = connect(&app).await;
    let topology = Topology::new(app.env.namespace.clone());
    let ch = conn.create_channel().await.expect("channel");
    let unsent = n - sent.len();
    // The hand-back waits a second in the shortest delay queue before it is back.
    let taken = std::sync::Mutex::new(Vec::new());
    eventually("every unsent job queued", TIMEOUT, || async {
        let mut got = Vec::new();
        while let Some(m) = take(&ch, &topology.send_queue(Channel::Sms)).await {
            got.push(m);
        }
        let mut taken = taken.lock().expect("lock");
        taken.extend(got);
        let jobs: usize = taken.iter().map(|(_, jobs)| jobs.len()).sum();
        (jobs >= unsent).then_some(())
    })
    .await;
    let queued: Vec<(bool, Vec<SendJob>)> = taken.into_inner().expect("lock");
    let mut ids = BTreeSet::new();
    for (_, jobs) in &queued {
        for job in jobs {
            assert!(
                ids.insert(job.delivery_id),
                "{} queued twice",
                job.delivery_id
            );
            assert!(
                !sent.contains(&job.delivery_id),
                "{} sent and queued",
                job.delivery_id
            );
        }
    }
    assert_eq!(ids.len(), unsent);
    // The evaluator's own messages say "first copy"; the hand-back says "maybe a duplicate".
    let handed_back: Vec<&Vec<SendJob>> = queued
        .iter()
        .filter(|(_, jobs)| jobs.iter().all(|j| j.maybe_duplicate))
        .map(|(_, jobs)| jobs)
        .collect();
    // Each batch that had begun (two ran side by side) came back without its settled jobs.
    assert!(!handed_back.is_empty(), "a hand-back: {queued:?}");
    for jobs in &handed_back {
        assert!(jobs.iter().all(|j| j.attempt == 1));
        assert!(jobs.len() < SEND_JOBS_PER_MESSAGE);
    }
    assert!(
        queued
            .iter()
            .all(|(redelivered, jobs)| *redelivered || jobs.iter().all(|j| j.maybe_duplicate)),
        "the other messages are the evaluator's, returned unacked"
    );
    let _ = ch.close(200, "looked".into()).await;
    let _ = conn.close(200, "done".into()).await;

    app.start(Service::SmsSender).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (n, 0));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_batch_is_dead_lettered_and_the_rest_goes_on() {
    let app = TestApp::spawn().await;
    let conn = connect(&app).await;
    let topology = Topology::new(app.env.namespace.clone());
    // Declared as the services do (they may not have got that far yet).
    Broker::connect(&app.env.amqp_url, topology.clone())
        .await
        .expect("declare the topology")
        .close()
        .await;
    let good = serde_json::json!({
        "delivery_id": 999_999, "campaign_id": uuid::Uuid::new_v4(), "channel": "sms",
        "template_id": uuid::Uuid::new_v4(), "attempt": 1,
        "recipient": {"first_name": "A", "last_name": "B", "phone": "+15550000001"},
    });
    let malformed = [
        serde_json::json!([{"delivery_id": "one"}]),
        serde_json::json!([]),
        serde_json::json!([good, {"nonsense": true}]),
    ];
    for payload in &malformed {
        let bytes = serde_json::to_vec(payload).expect("bytes");
        publish(&conn, &topology, Channel::Sms, &bytes).await;
    }

    let n = 12;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    eventually("the malformed batches dead-lettered", TIMEOUT, || async {
        (message_count(&conn, &topology.dead_letter_queue()).await == 3).then_some(())
    })
    .await;
    let ch = conn.create_channel().await.expect("channel");
    let mut dead = Vec::new();
    while let Some(m) = ch
        .basic_get(
            topology.dead_letter_queue().as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .expect("basic.get")
    {
        dead.push(serde_json::from_slice::<serde_json::Value>(&m.delivery.data).expect("json"));
    }
    // Kept as they were, for an operator (in the order they were handled).
    let mut dead: Vec<String> = dead.iter().map(ToString::to_string).collect();
    let mut expected: Vec<String> = malformed.iter().map(ToString::to_string).collect();
    dead.sort();
    expected.sort();
    assert_eq!(dead, expected);
    assert_eq!(app.sim.recorder.stats().sms.unique, n);
    let _ = conn.close(200, "done".into()).await;
    app.shutdown().await;
}
