use crate::list_unsubscribe::{
    ListUnsubscribe, LIST_UNSUBSCRIBE, LIST_UNSUBSCRIBE_POST, ONE_CLICK,
};
use crate::mailboxes::{recipient_mailbox, sender_mailbox};
use crate::sendgrid_mail::{Content, EmailAddress, ErrorBody, MailSend, Personalization};
use crate::{EmailConfig, SendGridConfig};
use lettre::message::Mailbox;
use pushfleet_config::Secret;
use pushfleet_domain::{Channel, RenderedMessage, SendJob};
use pushfleet_sender::http_errors::{classify_status, classify_transport, http_client};
use pushfleet_sender::{Provider, ProviderError, Receipt};
use reqwest::StatusCode;
use std::collections::BTreeMap;
use tracing::Instrument;

/// Names the delivery in the message itself, for support and bounce tracing.
const DELIVERY_HEADER: &str = "X-Pushfleet-Delivery";

/// Sends through an HTTP mail API in the SendGrid v3 shape (`POST /v3/mail/send`).
pub struct SendGridProvider {
    client: reqwest::Client,
    send_url: String,
    api_key: Secret<String>,
    from: Mailbox,
    unsubscribe: ListUnsubscribe,
}

impl SendGridProvider {
    pub fn new(cfg: &EmailConfig, sendgrid: &SendGridConfig) -> anyhow::Result<Self> {
        let from = sender_mailbox(&cfg.from)?;
        let unsubscribe = ListUnsubscribe::new(cfg, &from)?;
        let send_url = format!("{}/v3/mail/send", sendgrid.api_base.trim_end_matches('/'));
        tracing::info!(%send_url, "SendGrid mail API configured");
        Ok(Self {
            client: http_client()?,
            send_url,
            api_key: sendgrid.api_key.clone(),
            from,
            unsubscribe,
        })
    }

    fn body<'a>(
        &'a self,
        job: &SendJob,
        to: &'a Mailbox,
        message: &'a RenderedMessage,
    ) -> MailSend<'a> {
        let mut content = vec![Content {
            kind: "text/plain",
            value: &message.text,
        }];
        if let Some(html) = &message.html {
            content.push(Content {
                kind: "text/html",
                value: html,
            });
        }
        let headers = BTreeMap::from([
            (
                LIST_UNSUBSCRIBE,
                self.unsubscribe.header_value(job.delivery_id),
            ),
            (LIST_UNSUBSCRIBE_POST, ONE_CLICK.to_owned()),
            (DELIVERY_HEADER, job.delivery_id.to_string()),
        ]);
        MailSend {
            personalizations: [Personalization { to: [address(to)] }],
            from: address(&self.from),
            subject: &message.subject,
            content,
            headers,
            custom_args: BTreeMap::from([("pushfleet_delivery_id", job.delivery_id.to_string())]),
        }
    }
}

fn address(mailbox: &Mailbox) -> EmailAddress<'_> {
    EmailAddress {
        email: mailbox.email.to_string(),
        name: mailbox.name.as_deref(),
    }
}

impl Provider for SendGridProvider {
    const CHANNEL: Channel = Channel::Email;

    async fn send(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<Receipt, ProviderError> {
        let to = recipient_mailbox(job)?;
        let body = self.body(job, &to, message);
        let span = tracing::info_span!("sendgrid_send", delivery_id = job.delivery_id);
        let response = self
            .client
            .post(&self.send_url)
            .bearer_auth(self.api_key.expose())
            .header("Idempotency-Key", job.idempotency_key())
            .json(&body)
            .send()
            .instrument(span)
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status();
        if status.is_success() {
            let provider_message_id = response
                .headers()
                .get("x-message-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Ok(Receipt {
                provider_message_id,
                ..Default::default()
            });
        }
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let detail = ErrorBody::summary(&text).unwrap_or(text);
        // 401 means our API key is wrong: retrying will not help, but a fixed config should
        // pick the job up again, so let the attempts budget end it (as the SMS sender does).
        if status == StatusCode::UNAUTHORIZED {
            return Err(ProviderError::transient(format!("HTTP 401: {detail}")));
        }
        Err(classify_status(status, &headers, detail))
    }
}
