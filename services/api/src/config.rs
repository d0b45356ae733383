use pushfleet_config::{env_or, CommonConfig, ConfigError};
use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub common: CommonConfig,
    /// `API_ADDR`: where admins reach the API.
    pub http_addr: SocketAddr,
    /// `API_MAX_BODY_BYTES`: larger request bodies are refused with 413.
    pub max_body_bytes: usize,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(9100)?,
            http_addr: env_or("API_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            max_body_bytes: env_or("API_MAX_BODY_BYTES", 16 * 1024 * 1024)?,
        })
    }
}
