use crate::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use std::future::Future;
use std::time::Duration;

/// An ack is a buffered write on a live connection; anything slower means the connection
/// is gone.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Acks, nacks and rejects that always return. With lapin 4.12, an ack sent in the instant
/// the broker connection dies can wait forever (seen with RabbitMQ killed mid-campaign), and
/// the consume loop, which waits for every handler before reconnecting, then never
/// reconnects. An unsettled message is safe to give up on: the broker redelivers it once the
/// channel is gone, and the redelivered copy finds its recorded outcome. Each returns whether
/// the broker took the answer.
pub async fn ack(delivery: &Delivery) -> bool {
    bounded("ack", delivery.acker.ack(BasicAckOptions::default())).await
}

/// Puts the message back on its queue.
pub async fn requeue(delivery: &Delivery) -> bool {
    let options = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    bounded("nack", delivery.acker.nack(options)).await
}

/// Refuses the message for good: it goes to the dead-letter exchange.
pub async fn reject(delivery: &Delivery) -> bool {
    let options = BasicRejectOptions { requeue: false };
    bounded("reject", delivery.acker.reject(options)).await
}

/// Rejects a message whose handler died without settling it (a no-op if it did settle).
pub(crate) async fn reject_unsettled(acker: &lapin::Acker) -> bool {
    let options = BasicRejectOptions { requeue: false };
    bounded("reject", acker.reject(options)).await
}

async fn bounded(what: &str, settle: impl Future<Output = lapin::Result<bool>>) -> bool {
    match tokio::time::timeout(SETTLE_TIMEOUT, settle).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            tracing::warn!(what, error = %e, "not settled; the broker will redeliver");
            false
        }
        Err(_) => {
            tracing::warn!(
                what,
                timeout_ms = SETTLE_TIMEOUT.as_millis() as u64,
                "not settled in time (connection lost?); the broker will redeliver"
            );
            false
        }
    }
}
