use anyhow::Context;
use pushfleet_api::{migrate, serve, ApiConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};

/// `api` serves; `api migrate` applies the schema migrations and exits.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging("api");
    let cfg = ApiConfig::from_env().context("reading configuration")?;
    match std::env::args().nth(1).as_deref() {
        Some("migrate") => migrate(cfg.common.database_url.expose()).await,
        None | Some("serve") => {
            let running = serve(cfg, shutdown_on_signals()).await?;
            running.task.await.context("api task")?;
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; use `serve` or `migrate`"),
    }
}
