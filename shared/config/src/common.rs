use crate::{env_or, env_string, ConfigError, Secret};
use std::net::SocketAddr;
use std::time::Duration;

/// What every service needs: where the three servers are, the queue-name prefix (lets tests
/// and several fleets share one broker), and the admin port for health and metrics.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub database_url: Secret<String>,
    pub amqp_url: Secret<String>,
    pub redis_url: Secret<String>,
    /// Prefix of every exchange and queue name, and of every Redis key.
    pub namespace: String,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    /// Postgres connections per process.
    pub db_pool_size: u32,
    /// `DEAD_LETTER_TTL_HOURS` (default 336, two weeks): how long the RabbitMQ dead-letter
    /// queue keeps a message. The record of a dead delivery is in Postgres either way.
    pub dead_letter_ttl: Duration,
    /// `DEAD_LETTER_MAX_LENGTH` (default 100000): messages the dead-letter queue keeps; the
    /// oldest are dropped first.
    pub dead_letter_max_length: u32,
}

impl CommonConfig {
    /// The servers' variables with their development defaults, for
    /// `refuse_development_defaults`.
    pub const SERVERS: [(&'static str, &'static str); 3] = [
        ("DATABASE_URL", Self::DEFAULT_DATABASE_URL),
        ("AMQP_URL", Self::DEFAULT_AMQP_URL),
        ("REDIS_URL", Self::DEFAULT_REDIS_URL),
    ];

    pub const DEFAULT_DATABASE_URL: &'static str =
        "postgres://pushfleet:pushfleet@127.0.0.1:55432/pushfleet";
    pub const DEFAULT_AMQP_URL: &'static str = "amqp://guest:guest@127.0.0.1:55672/%2f";
    pub const DEFAULT_REDIS_URL: &'static str = "redis://127.0.0.1:56379/";

    /// Reads `DATABASE_URL`, `AMQP_URL`, `REDIS_URL`, `PUSHFLEET_NAMESPACE`, `ADMIN_ADDR`
    /// (default `127.0.0.1:<default_admin_port>`) and `DB_POOL_SIZE`.
    pub fn from_env(default_admin_port: u16) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: Secret::new(env_string("DATABASE_URL", Self::DEFAULT_DATABASE_URL)),
            amqp_url: Secret::new(env_string("AMQP_URL", Self::DEFAULT_AMQP_URL)),
            redis_url: Secret::new(env_string("REDIS_URL", Self::DEFAULT_REDIS_URL)),
            namespace: env_string("PUSHFLEET_NAMESPACE", "pf"),
            admin_addr: env_or(
                "ADMIN_ADDR",
                SocketAddr::from(([127, 0, 0, 1], default_admin_port)),
            )?,
            db_pool_size: env_or("DB_POOL_SIZE", 10)?,
            dead_letter_ttl: Duration::from_secs(
                3600 * env_or::<u64>("DEAD_LETTER_TTL_HOURS", 336)?,
            ),
            dead_letter_max_length: env_or("DEAD_LETTER_MAX_LENGTH", 100_000)?,
        })
    }
}
