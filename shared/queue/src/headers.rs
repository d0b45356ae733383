use crate::Delivery;
use lapin::types::AMQPValue;

/// Header carrying the reason a message was dead-lettered by a worker.
pub const REASON_HEADER: &str = "x-pushfleet-reason";

/// Header carrying the attempt number of a job a worker republished to try it again (a
/// requeued message carries no count: RabbitMQ's classic queues do not keep one).
pub const ATTEMPT_HEADER: &str = "x-pushfleet-attempt";

/// A string header of a received message, if it has one.
pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}
