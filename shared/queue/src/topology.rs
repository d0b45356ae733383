use crate::QueueError;
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel as AmqpChannel, Connection, ExchangeKind};
use pushfleet_domain::Channel;
use std::time::Duration;

/// A delay queue for retries: messages wait there for `delay`, then dead-letter back onto
/// their send queue. One queue per fixed delay, because RabbitMQ only expires messages at the
/// head of a queue: mixing delays in one queue would hold short ones behind long ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryTier {
    pub delay: Duration,
}

/// How long the dead-letter queue keeps a message, and how many it keeps (the oldest are
/// dropped first). The queue is a convenience for operators: the record of a dead delivery
/// is its `dead` row in Postgres, which `GET /v1/dead-letters` lists and replay works from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterRetention {
    pub ttl: Duration,
    pub max_length: u32,
}

impl Default for DeadLetterRetention {
    /// Two weeks, 100,000 messages.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(14 * 24 * 3600),
            max_length: 100_000,
        }
    }
}

/// Every exchange and queue name of the fleet, under one namespace (`pf` in production;
/// tests use a unique one each, so they can share one broker).
///
/// ```text
/// {ns}.work  (direct) --evaluate-->    {ns}.evaluate
///                     --segment-imports--> {ns}.segment-imports
///                     --bot-replies--> {ns}.bot-replies
///                     --send.email-->  {ns}.send.email    (likewise teams, sms)
/// {ns}.retry.{channel}.{ms}  --TTL--> {ns}.work / send.{channel}
/// rejected or exhausted       -->     {ns}.dlx (fanout) --> {ns}.dead-letters.v2
/// ```
///
/// The dead-letter queue's name carries a version because its arguments changed: RabbitMQ
/// refuses to redeclare an existing queue with other arguments (PRECONDITION_FAILED, which
/// also closes the channel), so the unbounded `{ns}.dead-letters` of earlier releases
/// could not simply gain a TTL and a length limit. Declaring retires it instead: it is
/// unbound from `{ns}.dlx`, its messages are moved to the new queue in the background, and
/// it is deleted once empty (see `legacy_dead_letters`). Retention set later through
/// `DEAD_LETTER_TTL_HOURS` / `DEAD_LETTER_MAX_LENGTH` that differs from the existing
/// queue's does not stop a service from starting: the queue keeps its arguments and a
/// warning says so (change them with a broker policy, or delete the queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    namespace: String,
    dead_letters: DeadLetterRetention,
}

impl Topology {
    /// Delays of the retry tiers; a retry waits in the first tier at least as long as its
    /// backoff (the last tier for anything longer).
    pub const RETRY_TIERS: [RetryTier; 5] = [
        RetryTier {
            delay: Duration::from_secs(1),
        },
        RetryTier {
            delay: Duration::from_secs(5),
        },
        RetryTier {
            delay: Duration::from_secs(30),
        },
        RetryTier {
            delay: Duration::from_secs(120),
        },
        RetryTier {
            delay: Duration::from_secs(600),
        },
    ];

    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            dead_letters: DeadLetterRetention::default(),
        }
    }

    pub fn with_dead_letter_retention(mut self, retention: DeadLetterRetention) -> Self {
        self.dead_letters = retention;
        self
    }

    pub fn dead_letter_retention(&self) -> DeadLetterRetention {
        self.dead_letters
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn work_exchange(&self) -> String {
        format!("{}.work", self.namespace)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.namespace)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letters.v2", self.namespace)
    }

    /// The unbounded dead-letter queue of earlier releases, retired at declare time.
    pub fn legacy_dead_letter_queue(&self) -> String {
        format!("{}.dead-letters", self.namespace)
    }

    pub const EVALUATE_KEY: &'static str = "evaluate";

    pub fn evaluate_queue(&self) -> String {
        format!("{}.evaluate", self.namespace)
    }

    /// Segment CSV uploads to process (api, through the outbox -> evaluator).
    pub const SEGMENT_IMPORT_KEY: &'static str = "segment-imports";

    pub fn segment_import_queue(&self) -> String {
        format!("{}.segment-imports", self.namespace)
    }

    /// The Teams bot's replies to button presses (api, through the outbox -> teams-sender).
    pub const BOT_REPLY_KEY: &'static str = "bot-replies";

    pub fn bot_reply_queue(&self) -> String {
        format!("{}.bot-replies", self.namespace)
    }

    /// Whether a routing key of the work exchange has a queue bound to it.
    pub fn is_work_key(&self, key: &str) -> bool {
        key == Self::EVALUATE_KEY
            || key == Self::SEGMENT_IMPORT_KEY
            || key == Self::BOT_REPLY_KEY
            || Channel::ALL.into_iter().any(|c| Self::send_key(c) == key)
    }

    pub fn send_key(channel: Channel) -> String {
        format!("send.{channel}")
    }

    pub fn send_queue(&self, channel: Channel) -> String {
        format!("{}.send.{channel}", self.namespace)
    }

    pub fn retry_queue(&self, channel: Channel, tier: RetryTier) -> String {
        format!(
            "{}.retry.{channel}.{}ms",
            self.namespace,
            tier.delay.as_millis()
        )
    }

    /// The longest delay a retry queue holds; longer waits go through the scheduler.
    pub fn longest_delay() -> Duration {
        Self::RETRY_TIERS[Self::RETRY_TIERS.len() - 1].delay
    }

    /// The shortest tier that waits at least `backoff`.
    pub fn tier_for(backoff: Duration) -> RetryTier {
        Self::RETRY_TIERS
            .into_iter()
            .find(|t| t.delay >= backoff)
            .unwrap_or(Self::RETRY_TIERS[Self::RETRY_TIERS.len() - 1])
    }

    /// Send jobs as persistent messages to their channel's queue: per channel, in order, up to
    /// `per_message` jobs in each message (`SendMessage`: a lone job travels as itself, so
    /// `per_message` 1 publishes what every release understands).
    pub fn send_job_messages(
        &self,
        jobs: &[pushfleet_domain::SendJob],
        per_message: usize,
    ) -> Result<Vec<crate::OutgoingMessage>, serde_json::Error> {
        let mut messages = Vec::with_capacity(jobs.len().div_ceil(per_message.max(1)));
        for channel in Channel::ALL {
            let of_channel: Vec<&pushfleet_domain::SendJob> =
                jobs.iter().filter(|j| j.channel == channel).collect();
            for chunk in of_channel.chunks(per_message.max(1)) {
                messages.push(crate::OutgoingMessage::new(
                    self.work_exchange(),
                    Self::send_key(channel),
                    pushfleet_domain::SendMessage::encode(chunk)?,
                ));
            }
        }
        Ok(messages)
    }

    /// Declares everything, idempotently. Every service calls it at start, so whichever
    /// starts first creates the topology. Returns whether the legacy dead-letter queue
    /// exists (and was unbound): then its messages are still to be moved.
    pub async fn declare(&self, conn: &Connection) -> Result<bool, QueueError> {
        let ch = conn.create_channel().await?;
        self.declare_work(&ch).await?;
        let _ = ch.close(200, "topology declared".into()).await;
        self.declare_dead_letter_queue(conn).await?;
        self.unbind_legacy_dead_letters(conn).await
    }

    /// The dead-letter queue with its retention; an existing one declared with other
    /// retention is kept as it is.
    async fn declare_dead_letter_queue(&self, conn: &Connection) -> Result<(), QueueError> {
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut args = FieldTable::default();
        args.insert(
            ShortString::from("x-message-ttl"),
            AMQPValue::LongLongInt(
                i64::try_from(self.dead_letters.ttl.as_millis()).unwrap_or(i64::MAX),
            ),
        );
        args.insert(
            ShortString::from("x-max-length"),
            AMQPValue::LongLongInt(i64::from(self.dead_letters.max_length)),
        );
        args.insert(
            ShortString::from("x-overflow"),
            AMQPValue::LongString(LongString::from("drop-head")),
        );
        let queue = self.dead_letter_queue();
        let ch = conn.create_channel().await?;
        match ch
            .queue_declare(queue.clone().into(), durable_queue, args)
            .await
        {
            Ok(_) => {}
            Err(e) if is_precondition_failed(&e) => {
                tracing::warn!(%queue, ttl_ms = self.dead_letters.ttl.as_millis() as u64,
                    max_length = self.dead_letters.max_length,
                    "the dead-letter queue exists with other retention arguments; keeping them \
                     (set a policy or delete the queue to change them)");
                // The refusal closed that channel.
                let ch = conn.create_channel().await?;
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                ch.queue_declare(queue.clone().into(), passive, FieldTable::default())
                    .await?;
                let _ = ch.close(200, "checked".into()).await;
                return self.bind_dead_letter_queue(conn).await;
            }
            Err(e) => return Err(e.into()),
        }
        let _ = ch.close(200, "declared".into()).await;
        self.bind_dead_letter_queue(conn).await
    }

    async fn bind_dead_letter_queue(&self, conn: &Connection) -> Result<(), QueueError> {
        let ch = conn.create_channel().await?;
        ch.queue_bind(
            self.dead_letter_queue().into(),
            self.dead_letter_exchange().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let _ = ch.close(200, "bound".into()).await;
        Ok(())
    }

    /// Retires the legacy dead-letter queue: deleted at once if it is missing or empty (a
    /// delete of a missing queue is a no-op in RabbitMQ, so a clean start logs no error,
    /// where a passive declare's NOT_FOUND closed a channel and lapin logged it as one);
    /// otherwise unbound from `{ns}.dlx`, so it stops growing. Returns whether it still
    /// holds messages to move.
    async fn unbind_legacy_dead_letters(&self, conn: &Connection) -> Result<bool, QueueError> {
        let ch = conn.create_channel().await?;
        let legacy = self.legacy_dead_letter_queue();
        let if_empty = QueueDeleteOptions {
            if_empty: true,
            ..Default::default()
        };
        match ch.queue_delete(legacy.clone().into(), if_empty).await {
            Ok(_) => {
                let _ = ch.close(200, "legacy queue absent or deleted".into()).await;
                return Ok(false);
            }
            // PRECONDITION_FAILED: it holds messages (and the refusal closed the channel).
            Err(e) if is_precondition_failed(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let ch = conn.create_channel().await?;
        ch.queue_unbind(
            legacy.into(),
            self.dead_letter_exchange().into(),
            "".into(),
            FieldTable::default(),
        )
        .await?;
        let _ = ch.close(200, "unbound".into()).await;
        Ok(true)
    }

    /// The work exchange and queues, the dead-letter exchange, and the retry queues.
    async fn declare_work(&self, ch: &AmqpChannel) -> Result<(), QueueError> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(
            self.work_exchange().into(),
            ExchangeKind::Direct,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
        ch.exchange_declare(
            self.dead_letter_exchange().into(),
            ExchangeKind::Fanout,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;

        let mut work_args = FieldTable::default();
        work_args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from(self.dead_letter_exchange())),
        );
        let mut bindings = vec![
            (self.evaluate_queue(), Self::EVALUATE_KEY.to_owned()),
            (
                self.segment_import_queue(),
                Self::SEGMENT_IMPORT_KEY.to_owned(),
            ),
            (self.bot_reply_queue(), Self::BOT_REPLY_KEY.to_owned()),
        ];
        for c in Channel::ALL {
            bindings.push((self.send_queue(c), Self::send_key(c)));
        }
        for (queue, key) in bindings {
            ch.queue_declare(queue.clone().into(), durable_queue, work_args.clone())
                .await?;
            ch.queue_bind(
                queue.into(),
                self.work_exchange().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }

        for c in Channel::ALL {
            for tier in Self::RETRY_TIERS {
                let mut args = FieldTable::default();
                args.insert(
                    ShortString::from("x-message-ttl"),
                    AMQPValue::LongLongInt(tier.delay.as_millis() as i64),
                );
                args.insert(
                    ShortString::from("x-dead-letter-exchange"),
                    AMQPValue::LongString(LongString::from(self.work_exchange())),
                );
                args.insert(
                    ShortString::from("x-dead-letter-routing-key"),
                    AMQPValue::LongString(LongString::from(Self::send_key(c))),
                );
                ch.queue_declare(self.retry_queue(c, tier).into(), durable_queue, args)
                    .await?;
            }
        }
        Ok(())
    }
}

fn soft_error(e: &lapin::Error) -> Option<&lapin::protocol::AMQPSoftError> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            lapin::protocol::AMQPErrorKind::Soft(soft) => Some(soft),
            _ => None,
        },
        _ => None,
    }
}

fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(
        soft_error(e),
        Some(lapin::protocol::AMQPSoftError::PRECONDITIONFAILED)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_shortest_tier_that_waits_long_enough() {
        assert_eq!(
            Topology::tier_for(Duration::from_millis(200)).delay,
            Duration::from_secs(1)
        );
        assert_eq!(
            Topology::tier_for(Duration::from_secs(6)).delay,
            Duration::from_secs(30)
        );
        assert_eq!(
            Topology::tier_for(Duration::from_secs(86_400)).delay,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn names_live_under_the_namespace() {
        let t = Topology::new("t1");
        assert_eq!(t.send_queue(Channel::Sms), "t1.send.sms");
        assert_eq!(t.segment_import_queue(), "t1.segment-imports");
        // The outbox relay drops rows whose key no queue is bound to.
        assert!(t.is_work_key(Topology::SEGMENT_IMPORT_KEY));
        assert!(t.is_work_key(Topology::EVALUATE_KEY));
        assert!(t.is_work_key(Topology::BOT_REPLY_KEY));
        assert_eq!(t.bot_reply_queue(), "t1.bot-replies");
        assert!(!t.is_work_key("segment-import"));
        assert_eq!(
            t.retry_queue(Channel::Email, Topology::RETRY_TIERS[0]),
            "t1.retry.email.1000ms"
        );
    }

    fn job(id: i64, channel: &str) -> pushfleet_domain::SendJob {
        serde_json::from_value(serde_json::json!({
            "delivery_id": id,
            "campaign_id": "6f1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
            "channel": channel,
            "template_id": "7a1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
            "recipient": {"first_name": "A", "last_name": "B"},
            "attempt": 1,
        }))
        .expect("a send job")
    }

    /// (routing key, delivery ids) of each message.
    fn shapes(messages: &[crate::OutgoingMessage]) -> Vec<(String, Vec<i64>)> {
        messages
            .iter()
            .map(|m| {
                let ids = match pushfleet_domain::SendMessage::from_json(&m.payload) {
                    Ok(pushfleet_domain::SendMessage::One(j)) => vec![j.delivery_id],
                    Ok(pushfleet_domain::SendMessage::Batch(js)) => {
                        js.iter().map(|j| j.delivery_id).collect()
                    }
                    Err(e) => panic!("undecodable message: {e}"),
                };
                (m.routing_key.clone(), ids)
            })
            .collect()
    }

    #[test]
    fn send_jobs_are_grouped_per_channel_in_order_up_to_the_size() {
        let t = Topology::new("t1");
        let jobs: Vec<_> = (1..=7)
            .map(|i| job(i, if i % 2 == 0 { "sms" } else { "email" }))
            .collect();
        let messages = t.send_job_messages(&jobs, 3).expect("messages");
        let key = |c| Topology::send_key(c);
        assert_eq!(
            shapes(&messages),
            vec![
                (key(Channel::Email), vec![1, 3, 5]),
                (key(Channel::Email), vec![7]),
                (key(Channel::Sms), vec![2, 4, 6]),
            ]
        );
        assert!(messages.iter().all(|m| m.exchange == "t1.work"));
        // 1 (and 0, read as 1) is one job per message, as before batching.
        for per_message in [0, 1] {
            let messages = t.send_job_messages(&jobs, per_message).expect("messages");
            assert_eq!(messages.len(), 7);
            assert!(messages.iter().all(|m| m.payload.first() == Some(&b'{')));
        }
    }
}
