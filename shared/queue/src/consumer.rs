use crate::QueueError;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::Consumer;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Runs `handler` on each delivery, at most `concurrency` at once, until `shutdown` fires or
/// the consumer ends. The handler owns the ack: it acks (or nacks) only when the outcome is
/// durable. On shutdown the loop stops taking messages, waits for in-flight handlers, and
/// returns; messages prefetched but not started go back to the queue when the channel closes.
///
/// Returns an error if the broker connection fails, so the caller can reconnect.
pub async fn run_consumer<H, F>(
    mut consumer: Consumer,
    concurrency: usize,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), QueueError>
where
    H: Fn(Delivery) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let result = loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break Ok(()),
            },
        };
        let next = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                let acker = delivery.acker.clone();
                let fut = handler(delivery);
                tokio::spawn(async move {
                    // A handler that panics never settles its message: it would hold a
                    // prefetch slot until the connection closes, then come back and panic
                    // again. It goes to the dead-letter queue instead.
                    if AssertUnwindSafe(fut).catch_unwind().await.is_err() {
                        tracing::error!("message handler panicked; dead-lettering the message");
                        crate::settle::reject_unsettled(&acker).await;
                    }
                    drop(permit);
                });
            }
            Some(Err(e)) => break Err(QueueError::from(e)),
            None => break Ok(()),
        }
    };
    // Wait for every in-flight handler to give its permit back.
    let _all = permits.acquire_many(concurrency.max(1) as u32).await;
    result
}
