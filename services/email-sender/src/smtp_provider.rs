use crate::list_unsubscribe::{
    ListUnsubscribe, LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, ONE_CLICK,
};
use crate::mailboxes::{recipient_mailbox, sender_mailbox};
use crate::smtp_pool::{SendFailure, SmtpConnector, SmtpPool};
use crate::smtp_tls::lettre_tls;
use crate::{EmailConfig, SmtpTls};
use anyhow::bail;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use pushfleet_domain::{Channel, RenderedMessage, SendJob};
use pushfleet_sender::{Provider, ProviderError, Receipt};
use std::time::Duration;
use tracing::Instrument;

/// Sends over SMTP through a pool of connections to one relay (see `smtp_pool.rs`).
pub struct SmtpProvider {
    pool: SmtpPool,
    /// `SMTP_TIMEOUT_MS`: one conversation with the relay, connecting included.
    timeout: Duration,
    /// The longest a send may take, its wait for a free connection included.
    call_timeout: Duration,
    from: Mailbox,
    /// Right-hand side of our Message-IDs.
    id_domain: String,
    unsubscribe: ListUnsubscribe,
}

impl SmtpProvider {
    pub fn new(cfg: &EmailConfig) -> anyhow::Result<Self> {
        let from = sender_mailbox(&cfg.from)?;
        let id_domain = from.email.domain().to_owned();
        let unsubscribe = ListUnsubscribe::new(cfg, &from)?;
        let credentials = match (&cfg.smtp_username, &cfg.smtp_password) {
            (Some(user), Some(pass)) => {
                if cfg.smtp_tls == SmtpTls::None {
                    tracing::warn!(
                        "SMTP credentials with SMTP_TLS=none: the password may cross the \
                         network in clear"
                    );
                }
                Some(Credentials::new(user.clone(), pass.expose().clone()))
            }
            (None, None) => None,
            // Half a credential would silently send without AUTH.
            _ => bail!("SMTP_USERNAME and SMTP_PASSWORD must be set together"),
        };
        let connector = SmtpConnector {
            host: cfg.smtp_host.clone(),
            port: cfg.smtp_port,
            tls: lettre_tls(cfg)?,
            credentials,
            hello: ClientId::default(),
            connect_timeout: cfg.smtp_timeout,
        };
        tracing::info!(
            host = %cfg.smtp_host,
            port = cfg.smtp_port,
            tls = %cfg.smtp_tls,
            auth = cfg.smtp_username.is_some(),
            "SMTP relay configured"
        );
        Ok(Self {
            pool: SmtpPool::new(connector, cfg.smtp_pool_size),
            call_timeout: call_timeout(cfg),
            timeout: cfg.smtp_timeout,
            from,
            id_domain,
            unsubscribe,
        })
    }

    fn build(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<(Message, String), ProviderError> {
        let to = recipient_mailbox(job)?;
        // The idempotency key doubles as the Message-ID: the same for every attempt.
        let message_id = format!("<{}@{}>", job.idempotency_key(), self.id_domain);
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(message_id.clone()))
            .date_now()
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(LIST_UNSUBSCRIBE),
                self.unsubscribe.header_value(job.delivery_id),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(LIST_UNSUBSCRIBE_POST),
                ONE_CLICK.to_owned(),
            ));
        let built = match &message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(message.text.clone()),
            ),
        }
        .map_err(|e| ProviderError::permanent(format!("cannot build the message: {e}")))?;
        Ok((built, message_id))
    }
}

impl Provider for SmtpProvider {
    const CHANNEL: Channel = Channel::Email;

    fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    async fn send(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<Receipt, ProviderError> {
        let (email, message_id) = self.build(job, message)?;
        let span = tracing::info_span!("smtp_send", delivery_id = job.delivery_id, %message_id);
        let body = email.formatted();
        let sent = self
            .pool
            .send(email.envelope(), &body, self.timeout)
            .instrument(span)
            .await;
        match sent {
            Ok(_) => Ok(Receipt {
                provider_message_id: Some(message_id),
                ..Default::default()
            }),
            Err(SendFailure::Smtp(e)) => Err(classify(&e)),
            // A relay that stops answering would otherwise hold this send forever.
            Err(SendFailure::TimedOut) => Err(ProviderError::transient(format!(
                "SMTP: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// With more jobs in flight than connections, a send may wait for the conversations ahead
/// of it, each bounded by `SMTP_TIMEOUT_MS`. Waiting is not trying: the sender's deadline
/// covers the longest such queue plus this send's own conversation, so a slow relay holds
/// messages back instead of spending their attempts.
fn call_timeout(cfg: &EmailConfig) -> Duration {
    let pool = cfg.smtp_pool_size.max(1) as usize;
    let calls = cfg.sender.provider_concurrency.min(cfg.sender.concurrency);
    let ahead = calls.div_ceil(pool).max(1) as u32;
    cfg.smtp_timeout.saturating_mul(ahead + 1)
}

/// A 5xx is the relay's final word on this message (unknown mailbox, policy), except the
/// replies about our session rather than the message (RFC 4954, RFC 3207: 530 AUTH or TLS
/// required, 534/535 credentials, 538 encryption required). Those fail every message alike
/// until the configuration is fixed, so the attempts budget ends them, as it does HTTP 401
/// for the API providers. 4xx, network and TLS handshake failures may pass later.
fn classify(e: &lettre::transport::smtp::Error) -> ProviderError {
    let about_the_session = e
        .status()
        .map(u16::from)
        .is_some_and(|code| matches!(code, 530 | 534 | 535 | 538));
    if e.is_permanent() && !about_the_session {
        ProviderError::permanent(format!("SMTP: {e}"))
    } else {
        ProviderError::transient(format!("SMTP: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushfleet_config::Secret;
    use pushfleet_sender::SenderConfig;

    fn config() -> EmailConfig {
        let sender = SenderConfig::from_env(Channel::Email, 0).expect("sender defaults");
        EmailConfig::defaults(sender)
    }

    // Retiring connections spawns tasks, hence a runtime.
    #[tokio::test]
    async fn half_a_credential_is_a_startup_error() {
        let user_only = EmailConfig {
            smtp_username: Some("user".into()),
            ..config()
        };
        assert!(SmtpProvider::new(&user_only).is_err());
        let password_only = EmailConfig {
            smtp_password: Some(Secret::new("pass".into())),
            ..config()
        };
        assert!(SmtpProvider::new(&password_only).is_err());
        assert!(SmtpProvider::new(&config()).is_ok());
    }

    #[test]
    fn the_call_timeout_allows_for_the_wait_for_a_connection() {
        let cfg = EmailConfig {
            smtp_pool_size: 16,
            smtp_timeout: Duration::from_secs(10),
            ..config()
        };
        let calls = cfg.sender.provider_concurrency.min(cfg.sender.concurrency);
        let expected = Duration::from_secs(10) * (calls.div_ceil(16) as u32 + 1);
        assert_eq!(call_timeout(&cfg), expected);
        assert!(call_timeout(&cfg) > cfg.smtp_timeout);
    }

    #[tokio::test]
    async fn an_unreadable_ca_file_is_a_startup_error() {
        let cfg = EmailConfig {
            smtp_tls: SmtpTls::StartTls,
            smtp_tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..config()
        };
        let err = SmtpProvider::new(&cfg).err().expect("refused");
        assert!(format!("{err:#}").contains("SMTP_TLS_CA_FILE"), "{err:#}");
    }
}
