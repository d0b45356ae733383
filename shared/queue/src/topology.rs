use crate::QueueError;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel as AmqpChannel, ExchangeKind};
use pushfleet_domain::Channel;
use std::time::Duration;

/// A delay queue for retries: messages wait there for `delay`, then dead-letter back onto
/// their send queue. One queue per fixed delay, because RabbitMQ only expires messages at the
/// head of a queue: mixing delays in one queue would hold short ones behind long ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryTier {
    pub delay: Duration,
}

/// Every exchange and queue name of the fleet, under one namespace (`pf` in production;
/// tests use a unique one each, so they can share one broker).
///
/// ```text
/// {ns}.work  (direct) --evaluate-->    {ns}.evaluate
///                     --segment-imports--> {ns}.segment-imports
///                     --send.email-->  {ns}.send.email    (likewise teams, sms)
/// {ns}.retry.{channel}.{ms}  --TTL--> {ns}.work / send.{channel}
/// rejected or exhausted       -->     {ns}.dlx (fanout) --> {ns}.dead-letters
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    namespace: String,
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
        }
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

    /// Send jobs as persistent messages to their channel's queue, in order.
    pub fn send_job_messages(
        &self,
        jobs: &[pushfleet_domain::SendJob],
    ) -> Result<Vec<crate::OutgoingMessage>, serde_json::Error> {
        jobs.iter()
            .map(|job| {
                Ok(crate::OutgoingMessage::new(
                    self.work_exchange(),
                    Self::send_key(job.channel),
                    serde_json::to_vec(job)?,
                ))
            })
            .collect()
    }

    /// Declares everything, idempotently. Every service calls it at start, so whichever
    /// starts first creates the topology.
    pub async fn declare(&self, ch: &AmqpChannel) -> Result<(), QueueError> {
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
        ch.queue_declare(
            self.dead_letter_queue().into(),
            durable_queue,
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            self.dead_letter_queue().into(),
            self.dead_letter_exchange().into(),
            "".into(),
            QueueBindOptions::default(),
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
        assert_eq!(
            t.retry_queue(Channel::Email, Topology::RETRY_TIERS[0]),
            "t1.retry.email.1000ms"
        );
    }
}
