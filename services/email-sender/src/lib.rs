//! The e-mail sender: the shared sender loop with either an SMTP client (lettre's connection in our
//! own pool, pipelined when the relay allows,
//! STARTTLS or implicit TLS over rustls) or an HTTP mail API in the SendGrid v3 shape.
//! Every message carries RFC 8058 one-click unsubscribe headers.

mod config;
mod email_provider;
mod list_unsubscribe;
mod mailboxes;
mod sendgrid_mail;
mod sendgrid_provider;
mod smtp_pool;
mod smtp_provider;
mod smtp_tls;
// The tokens live in pushfleet-domain, so the api verifies what the sender signs.
pub use pushfleet_domain::unsubscribe_token;

pub use config::{EmailConfig, EmailTransport, SendGridConfig};
pub use email_provider::EmailProvider;
pub use sendgrid_provider::SendGridProvider;
pub use smtp_provider::SmtpProvider;
pub use smtp_tls::SmtpTls;

use pushfleet_sender::run_sender;
use tokio_util::sync::CancellationToken;

pub async fn run(cfg: EmailConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let provider = EmailProvider::new(&cfg)?;
    run_sender(cfg.sender, provider, shutdown).await
}
