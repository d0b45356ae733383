use pushfleet_config::{env_string, ConfigError, Secret};
use pushfleet_domain::{Channel, PhoneNumber};
use pushfleet_sender::SenderConfig;

#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub sender: SenderConfig,
    /// `TWILIO_API_BASE`: `https://api.twilio.com` in production.
    pub api_base: String,
    /// `TWILIO_ACCOUNT_SID` / `TWILIO_AUTH_TOKEN`: basic-auth credentials.
    pub account_sid: String,
    pub auth_token: Secret<String>,
    /// `TWILIO_FROM`: the sending number, unless `TWILIO_MESSAGING_SERVICE_SID` is set.
    pub from: Option<PhoneNumber>,
    pub messaging_service_sid: Option<String>,
    /// `TWILIO_STATUS_CALLBACK`: where Twilio posts delivery status updates, normally
    /// `{API_PUBLIC_URL}/v1/webhooks/twilio/status`. One fixed URL for every message: the
    /// api finds the delivery by `MessageSid` and trusts the request by its signature.
    pub status_callback: Option<String>,
}

impl SmsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let [database, amqp, redis] = pushfleet_config::CommonConfig::SERVERS;
        pushfleet_config::refuse_development_defaults(&[
            database,
            amqp,
            redis,
            ("TWILIO_AUTH_TOKEN", "sim-token"),
            ("TWILIO_API_BASE", "http://127.0.0.1:18080"),
            ("TWILIO_ACCOUNT_SID", "ACsim"),
        ])?;
        let from_raw = env_string("TWILIO_FROM", "+15005550006");
        let from = PhoneNumber::parse(&from_raw).map_err(|e| ConfigError::Invalid {
            name: "TWILIO_FROM".into(),
            value: from_raw.clone(),
            reason: e.to_string(),
        })?;
        let service = env_string("TWILIO_MESSAGING_SERVICE_SID", "");
        let callback = status_callback(&env_string("TWILIO_STATUS_CALLBACK", ""))?;
        let mut sender = SenderConfig::from_env(Channel::Sms, 9105)?;
        // Twilio's limit belongs to the sending number (or messaging service): replicas that
        // send from the same one share its quota unless RATE_LIMIT_KEY says otherwise.
        if std::env::var("RATE_LIMIT_KEY").is_err() {
            sender.rate_limit_key = format!(
                "sms:{}",
                if service.is_empty() {
                    from.as_str()
                } else {
                    service.as_str()
                }
            );
        }
        Ok(Self {
            sender,
            api_base: env_string("TWILIO_API_BASE", "http://127.0.0.1:18080"),
            account_sid: env_string("TWILIO_ACCOUNT_SID", "ACsim"),
            auth_token: Secret::new(env_string("TWILIO_AUTH_TOKEN", "sim-token")),
            from: service.is_empty().then_some(from),
            messaging_service_sid: (!service.is_empty()).then_some(service),
            status_callback: callback,
        })
    }
}

/// An absolute http(s) URL without credentials, or none when empty. The URL is sent with
/// every message and shows in Twilio's logs: the signature authenticates callbacks, so a
/// password in it would protect nothing and leak everywhere.
fn status_callback(raw: &str) -> Result<Option<String>, ConfigError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "TWILIO_STATUS_CALLBACK".into(),
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = reqwest::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "must not carry credentials: callbacks are authenticated by their signature",
        ));
    }
    Ok(Some(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::status_callback;

    #[test]
    fn status_callback_is_a_plain_http_url_or_nothing() {
        assert_eq!(status_callback("").ok(), Some(None));
        let url = "https://api.example.org/v1/webhooks/twilio/status";
        assert_eq!(status_callback(url).ok(), Some(Some(url.to_owned())));
        assert!(status_callback("ftp://example.org/cb").is_err());
        assert!(status_callback("/v1/webhooks/twilio/status").is_err());
        assert!(status_callback("https://user:pw@api.example.org/cb").is_err());
    }
}
