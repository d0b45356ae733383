use pushfleet_config::{env_or, env_string, ConfigError, Secret};
use pushfleet_domain::Channel;
use pushfleet_sender::SenderConfig;

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub sender: SenderConfig,
    /// `SMTP_HOST` / `SMTP_PORT`: the relay (default: the local provider simulator).
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `SMTP_USERNAME` / `SMTP_PASSWORD`: AUTH credentials, when the relay wants them.
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret<String>>,
    /// `SMTP_POOL_SIZE`: connections kept open to the relay.
    pub smtp_pool_size: u32,
    /// `EMAIL_FROM`: the From mailbox, e.g. `Pushfleet <noreply@example.org>`.
    pub from: String,
}

impl EmailConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let username = env_string("SMTP_USERNAME", "");
        let password = env_string("SMTP_PASSWORD", "");
        Ok(Self {
            sender: SenderConfig::from_env(Channel::Email, 9103)?,
            smtp_host: env_string("SMTP_HOST", "127.0.0.1"),
            smtp_port: env_or("SMTP_PORT", 12525)?,
            smtp_username: (!username.is_empty()).then_some(username),
            smtp_password: (!password.is_empty()).then(|| Secret::new(password)),
            smtp_pool_size: env_or("SMTP_POOL_SIZE", 16)?,
            from: env_string("EMAIL_FROM", "Pushfleet <noreply@pushfleet.local>"),
        })
    }
}
