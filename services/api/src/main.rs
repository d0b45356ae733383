use anyhow::Context;
use clap::{Parser, Subcommand};
use pushfleet_api::{migrate, openapi_document, serve, ApiConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};

/// The pushfleet API: admins' operations and the providers' webhooks.
#[derive(Parser)]
#[command(name = "pushfleet-api", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply the schema migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) and exit; needs no configuration or server.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        let doc = serde_json::to_string_pretty(&openapi_document())?;
        // The document is this command's output, not a log line.
        use std::io::Write;
        writeln!(std::io::stdout(), "{doc}")?;
        return Ok(());
    }
    init_logging("api");
    let cfg = ApiConfig::from_env().context("reading configuration")?;
    match cli.command {
        Some(Command::Migrate) => migrate(cfg.common.database_url.expose()).await,
        _ => {
            let running = serve(cfg, shutdown_on_signals()).await?;
            running.task.await.context("api task")?;
            Ok(())
        }
    }
}
