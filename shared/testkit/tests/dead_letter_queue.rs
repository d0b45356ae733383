//! The RabbitMQ dead-letter queue is bounded (`DEAD_LETTER_TTL_HOURS`,
//! `DEAD_LETTER_MAX_LENGTH`), and a fleet starts on a broker that still holds the unbounded
//! queue of earlier releases: that one is unbound, emptied into the new one, and deleted.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::SimConfig;
use pushfleet_queue::{Broker, DeadLetterRetention, Topology};
use pushfleet_testkit::{eventually, Service, TestApp, TestEnv};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn connect(env: &TestEnv) -> Connection {
    Connection::connect(&env.amqp_url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ")
}

/// Messages in a queue, or `None` when it does not exist.
async fn message_count(conn: &Connection, queue: &str) -> Option<u32> {
    let ch = conn.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    // A missing queue closes the channel: one channel per look.
    let count = ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .ok()
        .map(|q| q.message_count());
    let _ = ch.close(200, "looked".into()).await;
    count
}

/// What an earlier release declared: `{ns}.dlx` and an unbounded `{ns}.dead-letters`
/// bound to it, holding `n` dead letters.
async fn legacy_dead_letter_queue(conn: &Connection, topology: &Topology, n: usize) {
    let ch = conn.create_channel().await.expect("channel");
    // Confirm mode: each publish below returns only once the broker has queued the message,
    // so the count that follows sees all of them.
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    ch.exchange_declare(
        topology.dead_letter_exchange().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare the dlx");
    let legacy = topology.legacy_dead_letter_queue();
    ch.queue_declare(
        legacy.clone().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare the legacy queue");
    ch.queue_bind(
        legacy.into(),
        topology.dead_letter_exchange().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind it");
    for i in 0..n {
        ch.basic_publish(
            topology.dead_letter_exchange().into(),
            "".into(),
            BasicPublishOptions::default(),
            format!("{{\"old\": {i}}}").as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    }
    let _ = ch.close(200, "prepared".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_starts_where_the_unbounded_dead_letter_queue_exists_and_retires_it() {
    let mut env = TestEnv::new().await;
    // A small limit, to see it hold.
    env.dead_letter_max_length = 6;
    let topology = Topology::new(env.namespace.clone());
    let conn = connect(&env).await;
    legacy_dead_letter_queue(&conn, &topology, 4).await;
    assert_eq!(
        message_count(&conn, &topology.legacy_dead_letter_queue()).await,
        Some(4)
    );

    let app = TestApp::spawn_in(env, &Service::ALL, SimConfig::ephemeral()).await;
    // The old queue's messages move to the new queue, and the old queue goes.
    eventually("the legacy queue retired", TIMEOUT, || async {
        message_count(&conn, &topology.legacy_dead_letter_queue())
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        message_count(&conn, &topology.dead_letter_queue()).await,
        Some(4)
    );

    // The fleet works, and its dead letters go to the bounded queue: three more make seven,
    // of which the six newest are kept.
    app.sim
        .knobs
        .update(|k| k.sms.server_error = 1.0)
        .expect("knobs");
    let id = app.create_campaign(3, &[Channel::Sms]).await;
    let view = app.wait_for_completion(id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["dead"], 3, "{view}");
    eventually("the limit holds", TIMEOUT, || async {
        (message_count(&conn, &topology.dead_letter_queue()).await == Some(6)).then_some(())
    })
    .await;
    assert!(message_count(&conn, &topology.legacy_dead_letter_queue())
        .await
        .is_none());
    let _ = conn.close(200, "done".into()).await;
    app.shutdown().await;
}

#[tokio::test]
async fn other_retention_settings_do_not_stop_a_service_from_starting() {
    let env = TestEnv::new().await;
    let first = Topology::new(env.namespace.clone());
    let broker = Broker::connect(&env.amqp_url, first.clone())
        .await
        .expect("first declare");
    broker.close().await;
    // A later deploy with another retention: the queue keeps its arguments, with a warning.
    let other = first.with_dead_letter_retention(DeadLetterRetention {
        ttl: Duration::from_secs(60),
        max_length: 10,
    });
    let broker = Broker::connect(&env.amqp_url, other)
        .await
        .expect("declare with other retention");
    assert!(broker.is_connected());
    broker.close().await;
}
