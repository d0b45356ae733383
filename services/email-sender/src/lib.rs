//! The e-mail sender: the shared sender loop with an SMTP client (lettre, pooled).

mod config;
mod smtp_provider;

pub use config::EmailConfig;
pub use smtp_provider::SmtpProvider;

use pushfleet_sender::run_sender;
use tokio_util::sync::CancellationToken;

pub async fn run(cfg: EmailConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let provider = SmtpProvider::new(&cfg)?;
    run_sender(cfg.sender, provider, shutdown).await
}
