use anyhow::Context;
use pushfleet_scheduler::{run, SchedulerConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging("scheduler");
    let cfg = SchedulerConfig::from_env().context("reading configuration")?;
    run(cfg, shutdown_on_signals()).await
}
