//! RabbitMQ: the topology (declared here and nowhere else), a publisher that pipelines
//! confirms, and the consumer loop every worker runs.

mod broker;
mod consumer;
mod error;
mod publisher;
pub mod settle;
mod topology;

pub use broker::Broker;
pub use consumer::run_consumer;
pub use error::QueueError;
pub use lapin::message::Delivery;
pub use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
pub use publisher::{OutgoingMessage, Publisher};
pub use topology::{RetryTier, Topology};

/// Header carrying the reason a message was dead-lettered by a worker.
pub const REASON_HEADER: &str = "x-pushfleet-reason";

mod worker;
pub use worker::{connected_check, consume_until_shutdown, consumer_tag, ConsumeSettings};
