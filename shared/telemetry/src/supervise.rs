use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs `attempt` until it returns `Ok` (a clean stop) or `shutdown` fires. After an error
/// (a lost broker connection, a database restart) it waits with capped exponential backoff
/// and runs it again, so a service rides out a dependency's restart instead of exiting.
pub async fn supervise<F, Fut, E>(what: &'static str, shutdown: CancellationToken, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(()) => return,
            Err(e) => {
                if shutdown.is_cancelled() {
                    tracing::warn!(what, error = %e, "stopped with an error during shutdown");
                    return;
                }
                tracing::error!(what, error = %e, retry_in_ms = backoff.as_millis() as u64, "failed; restarting");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
