use crate::EmailConfig;
use anyhow::Context;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pushfleet_domain::{Channel, RenderedMessage, SendJob};
use pushfleet_sender::{Provider, ProviderError, Receipt};
use std::time::Duration;

/// Sends over SMTP through a pool of connections to one relay.
pub struct SmtpProvider {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Right-hand side of our Message-IDs.
    id_domain: String,
}

impl SmtpProvider {
    pub fn new(cfg: &EmailConfig) -> anyhow::Result<Self> {
        let from: Mailbox = cfg
            .from
            .parse()
            .with_context(|| format!("EMAIL_FROM {:?} is not a mailbox", cfg.from))?;
        let id_domain = from.email.domain().to_owned();
        // TLS to the relay is not wired yet: this speaks plain SMTP (a local relay or the
        // simulator); STARTTLS comes with the delivery-engine work.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host)
            .port(cfg.smtp_port)
            .timeout(Some(Duration::from_secs(20)))
            .pool_config(PoolConfig::new().max_size(cfg.smtp_pool_size));
        if let (Some(user), Some(pass)) = (&cfg.smtp_username, &cfg.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose().clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            id_domain,
        })
    }

    fn build(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<(Message, String), ProviderError> {
        let to_addr = job
            .recipient
            .email
            .as_ref()
            .ok_or_else(|| ProviderError::permanent("recipient has no e-mail address"))?;
        let to = Mailbox::new(
            Some(
                format!("{} {}", job.recipient.first_name, job.recipient.last_name)
                    .trim()
                    .to_owned(),
            ),
            to_addr
                .as_str()
                .parse()
                .map_err(|e| ProviderError::permanent(format!("invalid recipient address: {e}")))?,
        );
        // The idempotency key doubles as the Message-ID: the same for every attempt.
        let message_id = format!("<{}@{}>", job.idempotency_key(), self.id_domain);
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(message_id.clone()))
            .date_now();
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
        match self.transport.send(email).await {
            Ok(_) => Ok(Receipt {
                provider_message_id: Some(message_id),
            }),
            Err(e) if e.is_permanent() => Err(ProviderError::permanent(format!("SMTP: {e}"))),
            Err(e) => Err(ProviderError::transient(format!("SMTP: {e}"))),
        }
    }
}
