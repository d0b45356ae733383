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
    /// `GRAPH_API_BASE`: Microsoft Graph, for presence (`https://graph.microsoft.com`).
    pub graph_base: String,
    /// `GRAPH_TOKEN_URL` (default: the bot's token URL; production needs the tenant's) and
    /// `GRAPH_TOKEN_SCOPE`.
    pub graph_token_url: String,
    pub graph_scope: String,
}

impl TeamsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let [database, amqp, redis] = pushfleet_config::CommonConfig::SERVERS;
        pushfleet_config::refuse_development_defaults(&[
            database,
            amqp,
            redis,
            ("TEAMS_APP_ID", "pushfleet-dev-app"),
            ("TEAMS_APP_PASSWORD", "dev-secret"),
            // The app password goes to this URL: never the simulator's by default.
            (
                "TEAMS_TOKEN_URL",
                "http://127.0.0.1:18080/botframework.com/oauth2/v2.0/token",
            ),
        ])?;
        let token_url = env_string(
            "TEAMS_TOKEN_URL",
            "http://127.0.0.1:18080/botframework.com/oauth2/v2.0/token",
        );
        Ok(Self {
            sender: SenderConfig::from_env(Channel::Teams, 9104)?,
            graph_base: env_string("GRAPH_API_BASE", "http://127.0.0.1:18080"),
            graph_token_url: env_string("GRAPH_TOKEN_URL", &token_url),
            graph_scope: env_string("GRAPH_TOKEN_SCOPE", "https://graph.microsoft.com/.default"),
            app_id: env_string("TEAMS_APP_ID", "pushfleet-dev-app"),
            app_password: Secret::new(env_string("TEAMS_APP_PASSWORD", "dev-secret")),
            token_url,
            scope: env_string("TEAMS_TOKEN_SCOPE", "https://api.botframework.com/.default"),
        })
    }
}
