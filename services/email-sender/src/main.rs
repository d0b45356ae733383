use anyhow::Context;
use pushfleet_email_sender::{run, EmailConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging("email-sender");
    let cfg = EmailConfig::from_env().context("reading configuration")?;
    run(cfg, shutdown_on_signals()).await
}
