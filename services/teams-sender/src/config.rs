use pushfleet_config::{env_string, ConfigError, Secret};
use pushfleet_domain::Channel;
use pushfleet_sender::SenderConfig;

#[derive(Debug, Clone)]
pub struct TeamsConfig {
    pub sender: SenderConfig,
    /// `TEAMS_APP_ID` / `TEAMS_APP_PASSWORD`: the bot's Azure AD app credentials.
    pub app_id: String,
    pub app_password: Secret<String>,
    /// `TEAMS_TOKEN_URL`: the OAuth client-credentials endpoint.
    pub token_url: String,
    /// `TEAMS_TOKEN_SCOPE`.
    pub scope: String,
}

impl TeamsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            sender: SenderConfig::from_env(Channel::Teams, 9104)?,
            app_id: env_string("TEAMS_APP_ID", "pushfleet-dev-app"),
            app_password: Secret::new(env_string("TEAMS_APP_PASSWORD", "dev-secret")),
            token_url: env_string(
                "TEAMS_TOKEN_URL",
                "http://127.0.0.1:18080/botframework.com/oauth2/v2.0/token",
            ),
            scope: env_string("TEAMS_TOKEN_SCOPE", "https://api.botframework.com/.default"),
        })
    }
}
