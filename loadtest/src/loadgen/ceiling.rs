//! The broker's own ceiling: raw RabbitMQ throughput on this machine with the fleet's
//! durability (persistent messages, publisher confirms with the same window, manual acks
//! one by one, the same prefetch) and the same message size, on private queues. With
//! batching on, a message is a batch of `SEND_JOBS_PER_MESSAGE` send jobs, so the broker's
//! ceiling in deliveries is messages per second times jobs per message.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use std::collections::VecDeque;

use pushfleet_domain::{
    Channel, EmailAddress, PhoneNumber, Recipient, SendJob, SendMessage, TeamsConversationRef,
};

/// What to measure.
#[derive(Debug, Clone)]
pub struct CeilingSpec {
    pub amqp_url: String,
    /// Queue names are `{namespace}.ceiling.{n}`.
    pub namespace: String,
    /// One queue and one consumer connection per channel of the fleet run.
    pub queues: usize,
    pub messages: usize,
    /// One message as the fleet publishes it ([`sample_send_message`]).
    pub payload: Vec<u8>,
    /// Send jobs in `payload`, for the report.
    pub jobs_per_message: usize,
    /// Outstanding confirms (the evaluator's `CONFIRM_WINDOW`).
    pub confirm_window: usize,
    /// The senders' `SENDER_PREFETCH`.
    pub prefetch: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CeilingResult {
    pub messages: usize,
    pub payload_bytes: usize,
    pub jobs_per_message: usize,
    pub queues: usize,
    pub seconds: f64,
    /// Messages published, confirmed, delivered and acked per second, end to end.
    pub per_second: f64,
}

impl CeilingResult {
    /// The ceiling in deliveries: what the broker could carry at this message rate.
    pub fn jobs_per_second(&self) -> f64 {
        self.per_second * self.jobs_per_message.max(1) as f64
    }
}

/// A message as the fleet publishes it with `jobs_per_message` send jobs in each (one job
/// travels as itself), for its size.
pub fn sample_send_message(jobs_per_message: usize) -> anyhow::Result<Vec<u8>> {
    let job: SendJob = serde_json::from_slice(&sample_send_job()?)?;
    let jobs: Vec<SendJob> = (0..jobs_per_message.max(1) as i64)
        .map(|i| SendJob {
            delivery_id: job.delivery_id + i,
            ..job.clone()
        })
        .collect();
    Ok(SendMessage::encode(&jobs)?)
}

/// A send job like the ones the fleet publishes, for its size.
pub fn sample_send_job() -> anyhow::Result<Vec<u8>> {
    let job = SendJob {
        delivery_id: 1_234_567,
        campaign_id: uuid::Uuid::new_v4(),
        channel: Channel::Teams,
        template_id: uuid::Uuid::new_v4(),
        person_id: Some(uuid::Uuid::new_v4()),
        recipient: Recipient {
            first_name: "Ada123456".into(),
            last_name: "Lovelace".into(),
            email: Some(EmailAddress::parse("lt-1a2b3c4d-123456@example.org")?),
            phone: Some(PhoneNumber::parse("+15550123456")?),
            teams: Some(TeamsConversationRef {
                service_url: "http://127.0.0.1:18180/".into(),
                conversation_id: Some("a:lt-1a2b3c4d-123456".into()),
                user_id: None,
                tenant_id: None,
            }),
            // Every person has a time zone; other properties as the directory holds them.
            properties: [("time_zone", "UTC")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        },
        attempt: 1,
        maybe_duplicate: false,
        wait_for_availability: false,
        link_key: Some(12_345),
    };
    Ok(serde_json::to_vec(&job)?)
}

/// Publishes `messages` round-robin over the queues from one confirm-mode channel (as the
/// evaluator does) while one consumer per queue acks each message; timed from the first
/// publish to the last ack.
pub async fn measure(spec: &CeilingSpec) -> anyhow::Result<CeilingResult> {
    if spec.queues == 0 || spec.messages == 0 {
        bail!("the ceiling needs at least one queue and one message");
    }
    let names: Vec<String> = (0..spec.queues)
        .map(|i| format!("{}.ceiling.{i}", spec.namespace))
        .collect();
    let publisher_conn = Connection::connect(&spec.amqp_url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let setup = publisher_conn.create_channel().await?;
    for name in &names {
        setup
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        setup
            .queue_purge(name.as_str().into(), QueuePurgeOptions::default())
            .await?;
    }

    // Consumers first, each on its own connection like a sender process.
    let mut consumers = Vec::new();
    let mut consumer_conns = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let expected = spec.messages / spec.queues + usize::from(i < spec.messages % spec.queues);
        let conn = Connection::connect(&spec.amqp_url, ConnectionProperties::default()).await?;
        let ch = conn.create_channel().await?;
        ch.basic_qos(spec.prefetch, BasicQosOptions::default())
            .await?;
        let mut consumer = ch
            .basic_consume(
                name.as_str().into(),
                format!("ceiling-{i}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        consumer_conns.push(conn);
        consumers.push(tokio::spawn(async move {
            let mut acked = 0usize;
            while acked < expected {
                let Some(delivery) = consumer.next().await else {
                    bail!("consumer stream ended after {acked} of {expected}");
                };
                delivery?.acker.ack(BasicAckOptions::default()).await?;
                acked += 1;
            }
            Ok::<usize, anyhow::Error>(acked)
        }));
    }

    let ch = publisher_conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into());
    let started = Instant::now();
    let mut in_flight = VecDeque::new();
    for n in 0..spec.messages {
        if in_flight.len() >= spec.confirm_window.max(1) {
            if let Some(confirm) = in_flight.pop_front() {
                check(confirm).await?;
            }
        }
        let confirm = ch
            .basic_publish(
                "".into(),
                names[n % names.len()].as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &spec.payload,
                props.clone(),
            )
            .await?;
        in_flight.push_back(confirm);
    }
    while let Some(confirm) = in_flight.pop_front() {
        check(confirm).await?;
    }
    let mut total = 0;
    for c in consumers {
        total += tokio::time::timeout(Duration::from_secs(600), c)
            .await
            .context("consumers did not finish")???;
    }
    let seconds = started.elapsed().as_secs_f64();

    for name in &names {
        let _ = setup
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = publisher_conn.close(200, "done".into()).await;
    for conn in consumer_conns {
        let _ = conn.close(200, "done".into()).await;
    }
    Ok(CeilingResult {
        messages: total,
        payload_bytes: spec.payload.len(),
        jobs_per_message: spec.jobs_per_message,
        queues: spec.queues,
        seconds,
        per_second: total as f64 / seconds.max(1e-9),
    })
}

async fn check(confirm: lapin::PublisherConfirm) -> anyhow::Result<()> {
    match confirm.await? {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => bail!("a ceiling message was returned unroutable"),
        Confirmation::Nack(_) => bail!("the broker nacked a ceiling message"),
    }
}
