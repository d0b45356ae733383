use anyhow::Context;
use pushfleet_evaluator::{run, EvaluatorConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging("evaluator");
    let cfg = EvaluatorConfig::from_env().context("reading configuration")?;
    run(cfg, shutdown_on_signals()).await
}
