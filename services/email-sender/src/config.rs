use crate::SmtpTls;
use pushfleet_config::{env_duration_ms, env_or, env_string, ConfigError, Secret};
use pushfleet_domain::Channel;
use pushfleet_sender::SenderConfig;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub sender: SenderConfig,
    /// `EMAIL_TRANSPORT`: `smtp` (default) or `sendgrid`, with the latter's settings.
    pub transport: EmailTransport,
    /// `SMTP_HOST` / `SMTP_PORT`: the relay (default: the local provider simulator). The
    /// port defaults to 587 with STARTTLS and 465 with implicit TLS.
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `SMTP_TLS`: `none` (default; the simulator speaks plain SMTP), `starttls` or `tls`.
    pub smtp_tls: SmtpTls,
    /// `SMTP_TLS_CA_FILE`: a PEM certificate to trust besides the public roots (a private
    /// relay, tests).
    pub smtp_tls_ca_file: Option<PathBuf>,
    /// `SMTP_TLS_ACCEPT_INVALID_CERTS`: test-only escape hatch, never for production.
    pub smtp_tls_accept_invalid_certs: bool,
    /// `SMTP_USERNAME` / `SMTP_PASSWORD`: AUTH credentials, when the relay wants them.
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret<String>>,
    /// `SMTP_POOL_SIZE`: the most connections open to the relay at once; a send waits for
    /// a free one (see `smtp_pool.rs`).
    pub smtp_pool_size: u32,
    /// `SMTP_TIMEOUT_MS`: the longest one message may take, connecting included.
    pub smtp_timeout: Duration,
    /// `EMAIL_FROM`: the From mailbox, e.g. `Pushfleet <noreply@example.org>`.
    pub from: String,
    /// `UNSUBSCRIBE_BASE_URL`: where the api serves `/u/{token}` (RFC 8058 one-click).
    pub unsubscribe_base_url: String,
    /// `UNSUBSCRIBE_MAILTO`: the mailto unsubscribe address; unset means
    /// `unsubscribe@{domain of EMAIL_FROM}`.
    pub unsubscribe_mailto: Option<String>,
    /// `UNSUBSCRIBE_SECRET`: signs unsubscribe tokens; unset means a well-known dev value
    /// (warned about at start).
    pub unsubscribe_secret: Option<Secret<String>>,
}

/// Which way messages leave the fleet.
#[derive(Debug, Clone)]
pub enum EmailTransport {
    Smtp,
    SendGrid(SendGridConfig),
}

#[derive(Debug, Clone)]
pub struct SendGridConfig {
    /// `SENDGRID_API_BASE`: `https://api.sendgrid.com` in production.
    pub api_base: String,
    /// `SENDGRID_API_KEY`: required with `EMAIL_TRANSPORT=sendgrid`.
    pub api_key: Secret<String>,
}

impl EmailConfig {
    /// The documented defaults, without reading the environment: plain SMTP to the local
    /// simulator. Tests start from this and change what they need.
    pub fn defaults(sender: SenderConfig) -> Self {
        Self {
            sender,
            transport: EmailTransport::Smtp,
            smtp_host: "127.0.0.1".into(),
            smtp_port: SmtpTls::None.default_port(),
            smtp_tls: SmtpTls::None,
            smtp_tls_ca_file: None,
            smtp_tls_accept_invalid_certs: false,
            smtp_username: None,
            smtp_password: None,
            smtp_pool_size: 16,
            smtp_timeout: Duration::from_secs(60),
            from: "Pushfleet <noreply@pushfleet.local>".into(),
            unsubscribe_base_url: "http://127.0.0.1:8080".into(),
            unsubscribe_mailto: None,
            unsubscribe_secret: None,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let [database, amqp, redis] = pushfleet_config::CommonConfig::SERVERS;
        pushfleet_config::refuse_development_defaults(&[
            database,
            amqp,
            redis,
            (
                "UNSUBSCRIBE_SECRET",
                pushfleet_domain::unsubscribe_token::DEV_SECRET,
            ),
            // Every e-mail carries this link: not a localhost one.
            ("UNSUBSCRIBE_BASE_URL", "http://127.0.0.1:8080"),
        ])?;
        let d = Self::defaults(SenderConfig::from_env(Channel::Email, 9103)?);
        let smtp_tls: SmtpTls = env_or("SMTP_TLS", d.smtp_tls)?;
        Ok(Self {
            transport: transport_from_env()?,
            smtp_host: env_string("SMTP_HOST", &d.smtp_host),
            smtp_port: env_or("SMTP_PORT", smtp_tls.default_port())?,
            smtp_tls,
            smtp_tls_ca_file: optional("SMTP_TLS_CA_FILE").map(PathBuf::from),
            smtp_tls_accept_invalid_certs: env_or(
                "SMTP_TLS_ACCEPT_INVALID_CERTS",
                d.smtp_tls_accept_invalid_certs,
            )?,
            smtp_username: optional("SMTP_USERNAME"),
            smtp_password: optional("SMTP_PASSWORD").map(Secret::new),
            smtp_pool_size: env_or("SMTP_POOL_SIZE", d.smtp_pool_size)?,
            smtp_timeout: env_duration_ms("SMTP_TIMEOUT_MS", d.smtp_timeout)?,
            from: env_string("EMAIL_FROM", &d.from),
            unsubscribe_base_url: env_string("UNSUBSCRIBE_BASE_URL", &d.unsubscribe_base_url),
            unsubscribe_mailto: optional("UNSUBSCRIBE_MAILTO"),
            unsubscribe_secret: optional("UNSUBSCRIBE_SECRET").map(Secret::new),
            ..d
        })
    }
}

fn transport_from_env() -> Result<EmailTransport, ConfigError> {
    match env_string("EMAIL_TRANSPORT", "smtp").trim() {
        "smtp" => Ok(EmailTransport::Smtp),
        "sendgrid" => {
            let api_key = optional("SENDGRID_API_KEY").ok_or_else(|| ConfigError::Invalid {
                name: "SENDGRID_API_KEY".into(),
                value: String::new(),
                reason: "required with EMAIL_TRANSPORT=sendgrid".into(),
            })?;
            Ok(EmailTransport::SendGrid(SendGridConfig {
                api_base: env_string("SENDGRID_API_BASE", "https://api.sendgrid.com"),
                api_key: Secret::new(api_key),
            }))
        }
        other => Err(ConfigError::Invalid {
            name: "EMAIL_TRANSPORT".into(),
            value: other.into(),
            reason: "expected smtp or sendgrid".into(),
        }),
    }
}

/// A variable that is either set to something or absent (empty counts as absent).
fn optional(name: &str) -> Option<String> {
    Some(env_string(name, "")).filter(|v| !v.is_empty())
}
