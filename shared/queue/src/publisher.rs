use crate::QueueError;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};
use std::collections::VecDeque;

/// One message to publish: persistent, JSON.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub exchange: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl OutgoingMessage {
    pub fn new(exchange: String, routing_key: String, payload: Vec<u8>) -> Self {
        Self {
            exchange,
            routing_key,
            payload,
            headers: Vec::new(),
        }
    }

    /// Straight to a named queue through the default exchange.
    pub fn to_queue(queue: String, payload: Vec<u8>) -> Self {
        Self::new(String::new(), queue, payload)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Publishes on a confirm-mode channel. A batch is pipelined: up to `window` messages are
/// outstanding at once, and `publish_all` returns only when the broker confirmed every one.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    window: usize,
}

impl Publisher {
    pub(crate) async fn new(channel: Channel, window: usize) -> Result<Self, QueueError> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            channel,
            window: window.max(1),
        })
    }

    pub async fn publish(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        self.publish_all(std::iter::once(message)).await
    }

    /// Publishes every message and waits for all confirms. On error some messages may have
    /// reached the broker: callers treat the batch as not published and publish it again,
    /// which consumers tolerate (they deduplicate on the delivery id).
    #[tracing::instrument(skip_all, name = "publish_batch")]
    pub async fn publish_all(
        &self,
        messages: impl IntoIterator<Item = OutgoingMessage>,
    ) -> Result<(), QueueError> {
        let mut in_flight: VecDeque<(usize, PublisherConfirm)> = VecDeque::new();
        for (index, m) in messages.into_iter().enumerate() {
            if in_flight.len() >= self.window {
                if let Some((i, confirm)) = in_flight.pop_front() {
                    check(i, confirm.await?)?;
                }
            }
            let confirm = self
                .channel
                .basic_publish(
                    m.exchange.into(),
                    m.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &m.payload,
                    properties(&m.headers),
                )
                .await?;
            in_flight.push_back((index, confirm));
        }
        while let Some((i, confirm)) = in_flight.pop_front() {
            check(i, confirm.await?)?;
        }
        Ok(())
    }
}

fn properties(headers: &[(String, String)]) -> BasicProperties {
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"));
    if headers.is_empty() {
        return props;
    }
    let mut table = FieldTable::default();
    for (k, v) in headers {
        table.insert(
            ShortString::from(k.as_str()),
            AMQPValue::LongString(LongString::from(v.as_str())),
        );
    }
    props.with_headers(table)
}

fn check(index: usize, confirmation: Confirmation) -> Result<(), QueueError> {
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable { index }),
        Confirmation::Nack(_) => Err(QueueError::Nacked { index }),
    }
}
