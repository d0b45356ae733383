use anyhow::Context;
use pushfleet_sms_sender::{run, SmsConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging("sms-sender");
    let cfg = SmsConfig::from_env().context("reading configuration")?;
    run(cfg, shutdown_on_signals()).await
}
