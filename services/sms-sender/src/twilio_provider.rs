use crate::SmsConfig;
use pushfleet_config::Secret;
use pushfleet_domain::{sms_segments, Channel, PhoneNumber, RenderedMessage, SendJob};
use pushfleet_sender::http_errors::{classify_status, classify_transport, http_client};
use pushfleet_sender::{Provider, ProviderError, Receipt};
use reqwest::StatusCode;
use serde::Deserialize;

/// Sends through Twilio's Messages API (form-encoded POST, basic auth).
pub struct TwilioProvider {
    client: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: Secret<String>,
    from: Option<PhoneNumber>,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

impl TwilioProvider {
    pub fn new(cfg: &SmsConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: http_client()?,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                cfg.api_base.trim_end_matches('/'),
                cfg.account_sid
            ),
            account_sid: cfg.account_sid.clone(),
            auth_token: cfg.auth_token.clone(),
            from: cfg.from.clone(),
            messaging_service_sid: cfg.messaging_service_sid.clone(),
            status_callback: cfg.status_callback.clone(),
        })
    }
}

impl Provider for TwilioProvider {
    const CHANNEL: Channel = Channel::Sms;

    /// Twilio meters a sender by segments, not messages.
    fn cost(&self, _job: &SendJob, message: &RenderedMessage) -> u32 {
        sms_segments(&message.text)
    }

    /// Counted here with Twilio's GSM-7 / UCS-2 rules, the same count the quota was
    /// charged.
    fn segments(&self, message: &RenderedMessage) -> Option<u32> {
        Some(sms_segments(&message.text))
    }

    async fn send(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<Receipt, ProviderError> {
        let to = job
            .recipient
            .phone
            .as_ref()
            .ok_or_else(|| ProviderError::permanent("recipient has no phone number"))?;
        let mut form: Vec<(&str, &str)> =
            vec![("To", to.as_str()), ("Body", message.text.as_str())];
        match (&self.messaging_service_sid, &self.from) {
            (Some(sid), _) => form.push(("MessagingServiceSid", sid.as_str())),
            (None, Some(from)) => form.push(("From", from.as_str())),
            (None, None) => return Err(ProviderError::permanent("no sender number configured")),
        }
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let response = self
            .client
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .header("Idempotency-Key", job.idempotency_key())
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status();
        if status.is_success() {
            let body: MessageResource = response
                .json()
                .await
                .map_err(|e| ProviderError::transient(format!("unreadable Twilio answer: {e}")))?;
            return Ok(Receipt {
                provider_message_id: Some(body.sid),
                ..Default::default()
            });
        }
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let detail = match serde_json::from_str::<TwilioError>(&text) {
            Ok(TwilioError { code, message }) => format!(
                "Twilio error {}: {}",
                code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                message.unwrap_or_default()
            ),
            Err(_) => text,
        };
        // 401 means our credentials are wrong: retrying will not help, but a fixed config
        // should pick the job up again, so let the attempts budget end it.
        if status == StatusCode::UNAUTHORIZED {
            return Err(ProviderError::transient(detail));
        }
        Err(classify_status(status, &headers, detail))
    }
}
