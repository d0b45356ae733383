//! Several scheduler replicas fire each due campaign exactly once.

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use pushfleet_domain::{Channel, EvaluateJob};
use pushfleet_queue::Topology;
use pushfleet_testkit::{eventually, Service, TestApp};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_publish_one_evaluate_job_per_due_campaign() {
    // No evaluator: the evaluate jobs stay in the queue where the test can count them.
    let mut app = TestApp::spawn_with(&[]).await;
    let (audience, template) = app.create_audience_and_template(2).await;
    let mut campaigns = BTreeSet::new();
    for _ in 0..25 {
        campaigns.insert(
            app.create_campaign_from(audience.clone(), template.clone(), &[Channel::Email])
                .await,
        );
    }
    app.start(Service::Scheduler).await;
    app.start_replica(Service::Scheduler, 1).await;

    let conn = Connection::connect(&app.env.amqp_url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let ch = conn.create_channel().await.expect("channel");
    let queue = Topology::new(app.env.namespace.clone()).evaluate_queue();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    // Both schedulers are done once every campaign has left `scheduled` and the outbox is empty.
    let pool = app.env.store.pool().clone();
    eventually(
        "all campaigns claimed and relayed",
        Duration::from_secs(30),
        || {
            let pool = pool.clone();
            async move {
                let open: i64 = sqlx::query_scalar(
                    "SELECT (SELECT count(*) FROM campaigns WHERE status = 'scheduled')
                      + (SELECT count(*) FROM outbox)",
                )
                .fetch_one(&pool)
                .await
                .ok()?;
                (open == 0).then_some(())
            }
        },
    )
    .await;
    app.stop(Service::Scheduler).await;
    app.stop_replica(Service::Scheduler, 1).await;

    let declared = ch
        .queue_declare(queue.clone().into(), passive, FieldTable::default())
        .await
        .expect("the evaluate queue exists");
    assert_eq!(declared.message_count() as usize, campaigns.len());

    let mut seen = BTreeSet::new();
    while let Some(msg) = ch
        .basic_get(queue.clone().into(), BasicGetOptions::default())
        .await
        .expect("basic_get")
    {
        let job: EvaluateJob = serde_json::from_slice(&msg.delivery.data).expect("an evaluate job");
        assert!(
            seen.insert(job.campaign_id),
            "{} published twice",
            job.campaign_id
        );
        msg.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    assert_eq!(seen, campaigns.into_iter().collect::<BTreeSet<Uuid>>());
    app.shutdown().await;
}
