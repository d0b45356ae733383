//! The e-mail sender: the shared sender loop with an SMTP client (lettre, pooled).

mod config;
mod smtp_provider;
// Public so the api can verify the tokens the sender puts into the messages.
pub mod unsubscribe_token;

pub use config::EmailConfig;
pub use smtp_provider::SmtpProvider;

use pushfleet_sender::run_sender;
use tokio_util::sync::CancellationToken;

pub async fn run(cfg: EmailConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let provider = SmtpProvider::new(&cfg)?;
    run_sender(cfg.sender, provider, shutdown).await
}
