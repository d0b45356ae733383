//! `provider-sim`: the provider simulator as a standalone process for demos and load tests.

use std::time::Duration;

use anyhow::Context as _;
use pushfleet_loadtest::simulator::{self, SimConfig};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Long enough for in-flight requests to finish, short enough not to stall a `docker stop`.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let cfg = SimConfig::from_env().context("reading SIM_* configuration")?;
    tracing::info!(config = ?cfg, "starting provider simulator");
    let shutdown = CancellationToken::new();
    let handle = simulator::start(cfg, shutdown.clone()).await?;
    tracing::info!(
        http_addr = %handle.http_addr,
        smtp_addr = %handle.smtp_addr,
        base_url = %handle.base_url(),
        "provider simulator listening"
    );

    wait_for_signal().await?;
    tracing::info!("shutting down");
    shutdown.cancel();
    match tokio::time::timeout(DRAIN_TIMEOUT, handle.join()).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("connections still open after drain timeout; exiting anyway"),
    }
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
}
