use crate::list_unsubscribe::{
    ListUnsubscribe, LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, ONE_CLICK,
};
use crate::mailboxes::{recipient_mailbox, sender_mailbox};
use crate::smtp_tls::lettre_tls;
use crate::EmailConfig;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pushfleet_domain::{Channel, RenderedMessage, SendJob};
use pushfleet_sender::{Provider, ProviderError, Receipt};
use std::time::Duration;
use tracing::Instrument;

/// Sends over SMTP through a pool of connections to one relay.
pub struct SmtpProvider {
    transport: AsyncSmtpTransport<Tokio1Executor>,
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
        // `builder_dangerous` only means "no TLS preset": the TLS mode is set right after.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host)
            .port(cfg.smtp_port)
            .tls(lettre_tls(cfg)?)
            .timeout(Some(Duration::from_secs(20)))
            .pool_config(PoolConfig::new().max_size(cfg.smtp_pool_size));
        if let (Some(user), Some(pass)) = (&cfg.smtp_username, &cfg.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose().clone()));
        }
        tracing::info!(
            host = %cfg.smtp_host,
            port = cfg.smtp_port,
            tls = %cfg.smtp_tls,
            auth = cfg.smtp_username.is_some(),
            "SMTP relay configured"
        );
        Ok(Self {
            transport: builder.build(),
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

    async fn send(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<Receipt, ProviderError> {
        let (email, message_id) = self.build(job, message)?;
        let span = tracing::info_span!("smtp_send", delivery_id = job.delivery_id, %message_id);
        match self.transport.send(email).instrument(span).await {
            Ok(_) => Ok(Receipt {
                provider_message_id: Some(message_id),
            }),
            // 5xx: the relay refused for good (unknown mailbox, policy, no TLS where required).
            Err(e) if e.is_permanent() => Err(ProviderError::permanent(format!("SMTP: {e}"))),
            // Everything else (4xx, network, TLS handshake) may pass on a later attempt.
            Err(e) => Err(ProviderError::transient(format!("SMTP: {e}"))),
        }
    }
}
