use pushfleet_config::{env_duration_ms, env_or, CommonConfig, ConfigError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub common: CommonConfig,
    /// `SCHEDULER_TICK_MS`: how often due work is looked for.
    pub tick: Duration,
    /// `SCHEDULER_BATCH`: campaigns claimed, and outbox rows relayed, per round.
    pub batch: i64,
    /// `SEND_JOBS_PER_MESSAGE`: deferred send jobs of one channel carried by one broker
    /// message (1: one message per job, as before batching).
    pub send_jobs_per_message: usize,
}

impl SchedulerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        pushfleet_config::refuse_development_defaults(&CommonConfig::SERVERS[..2])?;
        Ok(Self {
            common: CommonConfig::from_env(9101)?,
            tick: env_duration_ms("SCHEDULER_TICK_MS", Duration::from_millis(250))?,
            batch: env_or("SCHEDULER_BATCH", 100)?,
            send_jobs_per_message: env_or(
                "SEND_JOBS_PER_MESSAGE",
                pushfleet_domain::DEFAULT_SEND_JOBS_PER_MESSAGE,
            )?,
        })
    }
}
