//! RabbitMQ: the topology (declared here and nowhere else), a publisher that pipelines
//! confirms, and the consumer loop every worker runs.

mod broker;
mod consumer;
mod error;
mod legacy_dead_letters;
mod publisher;
pub mod settle;
mod topology;

pub use broker::Broker;
pub use consumer::run_consumer;
pub use error::QueueError;
pub use lapin::message::Delivery;
pub use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
pub use legacy_dead_letters::retire_legacy_dead_letters;
pub use publisher::{OutgoingMessage, Publisher};
pub use topology::{DeadLetterRetention, RetryTier, Topology};

mod headers;
pub use headers::{header, ATTEMPT_HEADER, REASON_HEADER};

mod worker;
pub use worker::{connected_check, consume_until_shutdown, consumer_tag, ConsumeSettings};
