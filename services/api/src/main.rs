use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use pushfleet_api::identity::Role;
use pushfleet_api::{create_api_key, migrate, openapi_document, serve, ApiConfig};
use pushfleet_telemetry::{init_logging, shutdown_on_signals};
use std::io::Write;

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
    /// Manage API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print it (the last line of standard output, alone): it is shown
    /// this once. Use it as `Authorization: Bearer <key>`.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        name: String,
        /// Days until it stops working; never when absent.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// A permission label the key is limited to (repeat for several); none: not limited.
        #[arg(long = "label")]
        labels: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Organizer,
    Viewer,
    Operator,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Organizer => Role::Organizer,
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // These print their result on standard output: it is the command's output, not a log.
    if let Some(Command::Openapi) = cli.command {
        let doc = serde_json::to_string_pretty(&openapi_document())?;
        writeln!(std::io::stdout(), "{doc}")?;
        return Ok(());
    }
    init_logging("api");
    match cli.command {
        None | Some(Command::Serve) => ApiConfig::refuse_development_defaults_for_serving()?,
        _ => ApiConfig::refuse_development_database()?,
    }
    let cfg = ApiConfig::from_env().context("reading configuration")?;
    match cli.command {
        Some(Command::Migrate) => migrate(cfg.common.database_url.expose()).await,
        Some(Command::ApiKey(ApiKeyCommand::Create {
            role,
            name,
            expires_in_days,
            labels,
        })) => {
            let secret = create_api_key(
                cfg.common.database_url.expose(),
                &name,
                role.into(),
                expires_in_days,
                labels,
            )
            .await?;
            writeln!(std::io::stdout(), "{secret}")?;
            Ok(())
        }
        _ => {
            let running = serve(cfg, shutdown_on_signals()).await?;
            running.task.await.context("api task")?;
            Ok(())
        }
    }
}
