//! The Teams sender: the shared sender loop with a Bot Framework Connector client.

mod bot_token;
mod config;
mod connector_provider;

pub use bot_token::BotTokenSource;
pub use config::TeamsConfig;
pub use connector_provider::ConnectorProvider;

use pushfleet_sender::run_sender;
use tokio_util::sync::CancellationToken;

pub async fn run(cfg: TeamsConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let provider = ConnectorProvider::new(&cfg)?;
    run_sender(cfg.sender, provider, shutdown).await
}
