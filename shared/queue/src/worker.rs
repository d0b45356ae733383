use crate::{run_consumer, Broker, Delivery, Publisher, Topology};
use pushfleet_telemetry::supervise;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Where and how a worker consumes.
#[derive(Debug, Clone)]
pub struct ConsumeSettings {
    pub amqp_url: String,
    pub topology: Topology,
    pub queue: String,
    pub consumer_tag: String,
    pub prefetch: u16,
    pub concurrency: usize,
    pub confirm_window: usize,
}

/// The worker side of every service: connect, declare the topology, consume `queue` with
/// handlers built by `make_handler` (given a confirm-mode publisher on the same connection),
/// and after a broker failure reconnect with backoff. Returns when `shutdown` fires and
/// in-flight handlers are done. `connected` feeds `/readyz`.
pub async fn consume_until_shutdown<M, H, Fut>(
    settings: ConsumeSettings,
    shutdown: CancellationToken,
    connected: Arc<AtomicBool>,
    make_handler: M,
) where
    M: Fn(Publisher) -> H,
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let what = "queue consumer";
    supervise(what, shutdown.clone(), || {
        let (settings, shutdown, connected) =
            (settings.clone(), shutdown.clone(), connected.clone());
        let make_handler = &make_handler;
        async move {
            let broker = Broker::connect(&settings.amqp_url, settings.topology.clone()).await?;
            let publisher = broker.publisher(settings.confirm_window).await?;
            let consumer = broker
                .consumer(&settings.queue, &settings.consumer_tag, settings.prefetch)
                .await?;
            connected.store(true, Ordering::Relaxed);
            tracing::info!(queue = %settings.queue, prefetch = settings.prefetch, "consuming");
            let result = run_consumer(
                consumer,
                settings.concurrency,
                shutdown,
                make_handler(publisher),
            )
            .await;
            connected.store(false, Ordering::Relaxed);
            broker.close().await;
            result
        }
    })
    .await;
}

/// A consumer tag that tells an operator which process holds which messages.
pub fn consumer_tag(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    format!("{role}@{host}-{}", std::process::id())
}

/// A `/readyz` check reading the flag `consume_until_shutdown` keeps.
pub fn connected_check(
    connected: Arc<AtomicBool>,
) -> impl Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
    move || {
        let up = connected.load(Ordering::Relaxed);
        Box::pin(async move {
            up.then_some(())
                .ok_or_else(|| "not connected to RabbitMQ".to_owned())
        })
    }
}
