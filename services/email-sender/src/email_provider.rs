use crate::{EmailConfig, EmailTransport, SendGridProvider, SmtpProvider};
use pushfleet_domain::{Channel, RenderedMessage, SendJob};
use pushfleet_sender::{Provider, ProviderError, Receipt};

/// The transport `EMAIL_TRANSPORT` chose. One type, so the shared sender loop (generic over
/// one provider) runs either.
// One per process: the variants' size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum EmailProvider {
    Smtp(SmtpProvider),
    SendGrid(SendGridProvider),
}

impl EmailProvider {
    pub fn new(cfg: &EmailConfig) -> anyhow::Result<Self> {
        Ok(match &cfg.transport {
            EmailTransport::Smtp => EmailProvider::Smtp(SmtpProvider::new(cfg)?),
            EmailTransport::SendGrid(sg) => {
                EmailProvider::SendGrid(SendGridProvider::new(cfg, sg)?)
            }
        })
    }
}

impl Provider for EmailProvider {
    const CHANNEL: Channel = Channel::Email;

    async fn send(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<Receipt, ProviderError> {
        match self {
            EmailProvider::Smtp(p) => p.send(job, message).await,
            EmailProvider::SendGrid(p) => p.send(job, message).await,
        }
    }

    fn call_timeout(&self) -> std::time::Duration {
        match self {
            EmailProvider::Smtp(p) => p.call_timeout(),
            EmailProvider::SendGrid(p) => p.call_timeout(),
        }
    }
}
