//! The SMS sender: the shared sender loop with a Twilio Messages API client.

mod config;
mod twilio_provider;

pub use config::SmsConfig;
pub use twilio_provider::TwilioProvider;

use pushfleet_sender::run_sender;
use tokio_util::sync::CancellationToken;

pub async fn run(cfg: SmsConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let provider = TwilioProvider::new(&cfg)?;
    run_sender(cfg.sender, provider, shutdown).await
}
