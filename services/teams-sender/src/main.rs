use anyhow::Context;
use pushfleet_teams_sender::{run, TeamsConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging("teams-sender");
    let cfg = TeamsConfig::from_env().context("reading configuration")?;
    run(cfg, shutdown_on_signals()).await
}
