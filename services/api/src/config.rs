use axum::http::Uri;
use pushfleet_config::{env_or, env_string, CommonConfig, ConfigError, Secret};
use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub common: CommonConfig,
    /// `API_ADDR`: where admins reach the API.
    pub http_addr: SocketAddr,
    /// `PUBLIC_ADDR` (default `127.0.0.1:8081`): the listener with the providers' webhooks
    /// and the unsubscribe link alone, for an Ingress to expose.
    pub public_http_addr: SocketAddr,
    /// `API_MAX_BODY_BYTES`: larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// `API_PUBLIC_URL`: the API's base URL as providers call it (scheme, host, port and any
    /// path prefix a proxy strips), without a trailing slash. Twilio signs the full URL it
    /// called, so webhook signatures are checked against `{public_url}{path}`.
    pub public_url: String,
    /// `TWILIO_AUTH_TOKEN`: the key of Twilio's webhook signatures (the sms-sender's token).
    pub twilio_auth_token: Secret<String>,
    /// `SEGMENT_UPLOAD_MAX_BYTES`: larger segment CSV uploads are refused with 413.
    pub segment_upload_max_bytes: usize,
    /// `UNSUBSCRIBE_SECRET`: verifies the e-mail unsubscribe tokens (the email-sender's
    /// secret); unset means the public development key.
    pub unsubscribe_secret: Secret<String>,
    /// `TRACKING_SECRET`: opens the tokens of tracked links and open pixels (the senders'
    /// secret); unset means the public development key.
    pub tracking_secret: Secret<String>,
    /// How the bot's messaging endpoint checks the Bot Framework's tokens.
    pub bot_auth: BotAuthConfig,
    /// How operators' OIDC tokens are checked (`OIDC_*`); `None`: API keys only.
    pub oidc: Option<crate::identity::OidcConfig>,
    /// `PEOPLE_IMPORT_MAX_BYTES`: the largest streamed people import (CSV, NDJSON).
    pub import_max_bytes: u64,
    /// `IMPORT_CONCURRENCY` (default 2): people imports running at once on this replica;
    /// each holds two database connections while it writes. One more gets 503.
    pub import_concurrency: usize,
    /// `API_BODY_READ_TIMEOUT_MS` (default 30,000): the longest a request's head may take to
    /// arrive, and its body may go without sending a byte, before the request is cut off.
    pub body_read_timeout: std::time::Duration,
}

/// The Bot Framework's JWTs on incoming activities.
#[derive(Debug, Clone)]
pub struct BotAuthConfig {
    /// `TEAMS_APP_ID`: the bot's Microsoft app id, the tokens' audience.
    pub app_id: String,
    /// `BOT_OPENID_METADATA_URL`: the OpenID metadata document naming the signing keys.
    pub openid_metadata_url: String,
    /// `BOT_TOKEN_ISSUER`: the issuer the tokens must name.
    pub issuer: String,
}

impl BotAuthConfig {
    pub const DEFAULT_METADATA_URL: &'static str =
        "https://login.botframework.com/v1/.well-known/openidconfiguration";
    pub const DEFAULT_ISSUER: &'static str = "https://api.botframework.com";

    pub fn from_env() -> Self {
        Self {
            app_id: env_string("TEAMS_APP_ID", "pushfleet-dev-app"),
            openid_metadata_url: env_string("BOT_OPENID_METADATA_URL", Self::DEFAULT_METADATA_URL),
            issuer: env_string("BOT_TOKEN_ISSUER", Self::DEFAULT_ISSUER),
        }
    }
}

impl ApiConfig {
    pub const DEFAULT_PUBLIC_URL: &'static str = "http://127.0.0.1:8080";

    /// Before serving, outside development mode: the database and every secret the api
    /// checks webhooks and links with must be set, to values that are not the public
    /// development ones. (`migrate` and `api-key create` need only `DATABASE_URL`.)
    pub fn refuse_development_defaults_for_serving() -> Result<(), ConfigError> {
        pushfleet_config::refuse_development_defaults(&[
            CommonConfig::SERVERS[0],
            ("TWILIO_AUTH_TOKEN", "sim-token"),
            (
                "UNSUBSCRIBE_SECRET",
                pushfleet_domain::unsubscribe_token::DEV_SECRET,
            ),
            (
                "TRACKING_SECRET",
                pushfleet_domain::tracking_token::DEV_SECRET,
            ),
            ("TEAMS_APP_ID", "pushfleet-dev-app"),
            // What webhook signatures cover: a localhost default fails every Twilio check.
            ("API_PUBLIC_URL", Self::DEFAULT_PUBLIC_URL),
        ])
    }

    /// For the commands that only touch the database.
    pub fn refuse_development_database() -> Result<(), ConfigError> {
        pushfleet_config::refuse_development_defaults(&[CommonConfig::SERVERS[0]])
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(9100)?,
            http_addr: env_or("API_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            public_http_addr: env_or("PUBLIC_ADDR", SocketAddr::from(([127, 0, 0, 1], 8081)))?,
            max_body_bytes: env_or("API_MAX_BODY_BYTES", 16 * 1024 * 1024)?,
            public_url: public_url(&env_string("API_PUBLIC_URL", Self::DEFAULT_PUBLIC_URL))?,
            twilio_auth_token: Secret::new(env_string("TWILIO_AUTH_TOKEN", "sim-token")),
            segment_upload_max_bytes: env_or("SEGMENT_UPLOAD_MAX_BYTES", 20 * 1024 * 1024)?,
            unsubscribe_secret: unsubscribe_secret(),
            tracking_secret: Secret::new(env_string(
                "TRACKING_SECRET",
                pushfleet_domain::tracking_token::DEV_SECRET,
            )),
            bot_auth: BotAuthConfig::from_env(),
            oidc: crate::identity::OidcConfig::from_env()?,
            import_max_bytes: env_or("PEOPLE_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)?,
            import_concurrency: env_or("IMPORT_CONCURRENCY", 2)?,
            body_read_timeout: pushfleet_config::env_duration_ms(
                "API_BODY_READ_TIMEOUT_MS",
                std::time::Duration::from_secs(30),
            )?,
        })
    }
}

fn unsubscribe_secret() -> Secret<String> {
    match std::env::var("UNSUBSCRIBE_SECRET") {
        Ok(s) if !s.is_empty() => Secret::new(s),
        _ => {
            tracing::warn!(
                "UNSUBSCRIBE_SECRET is not set: unsubscribe links are checked against the public \
                 development key; set it (as for the email-sender) outside development"
            );
            Secret::new(pushfleet_domain::unsubscribe_token::DEV_SECRET.to_owned())
        }
    }
}

/// An absolute http(s) URL, trailing slashes removed so that `{url}{path}` has one slash.
pub fn public_url(raw: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "API_PUBLIC_URL".into(),
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = raw.trim().trim_end_matches('/');
    let uri: Uri = trimmed.parse().map_err(|e| invalid(&format!("{e}")))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none() {
        return Err(invalid("must be an absolute http or https URL"));
    }
    if uri.query().is_some() {
        return Err(invalid("must not have a query"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn public_url_is_absolute_without_a_trailing_slash() {
        assert_eq!(
            public_url("https://api.example.org/").ok().as_deref(),
            Some("https://api.example.org")
        );
        assert_eq!(
            public_url("https://example.org/pushfleet").ok().as_deref(),
            Some("https://example.org/pushfleet")
        );
        assert!(public_url("/v1").is_err());
        assert!(public_url("ftp://example.org").is_err());
        assert!(public_url("https://example.org/?a=1").is_err());
    }
}
