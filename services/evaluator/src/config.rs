use pushfleet_config::{env_duration_ms, env_or, CommonConfig, ConfigError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    pub common: CommonConfig,
    /// `EVALUATOR_CONCURRENCY`: campaigns expanded at once by one replica.
    pub concurrency: usize,
    /// `PUBLISH_BATCH`: send jobs published per transaction.
    pub publish_batch: i64,
    /// `CONFIRM_WINDOW`: publishes awaiting a broker confirm at once.
    pub confirm_window: usize,
    /// `SEND_JOBS_PER_MESSAGE`: send jobs of one channel carried by one broker message
    /// (1: one message per job, as before batching).
    pub send_jobs_per_message: usize,
    /// `EVALUATOR_MAX_ATTEMPTS`: tries of an evaluate job that fails the same way each time
    /// (not a dependency outage) before it is dead-lettered and the campaign marked.
    pub max_attempts: u32,
    /// `EVALUATOR_RETRY_MS`: pause before such a job is tried again, times its attempt
    /// number (at most ten times).
    pub retry_pause: Duration,
}

impl EvaluatorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        pushfleet_config::refuse_development_defaults(&CommonConfig::SERVERS[..2])?;
        Ok(Self {
            common: CommonConfig::from_env(9102)?,
            concurrency: env_or("EVALUATOR_CONCURRENCY", 2)?,
            publish_batch: env_or("PUBLISH_BATCH", 2000)?,
            confirm_window: env_or("CONFIRM_WINDOW", 256)?,
            send_jobs_per_message: env_or(
                "SEND_JOBS_PER_MESSAGE",
                pushfleet_domain::DEFAULT_SEND_JOBS_PER_MESSAGE,
            )?,
            max_attempts: env_or("EVALUATOR_MAX_ATTEMPTS", 5)?,
            retry_pause: env_duration_ms("EVALUATOR_RETRY_MS", Duration::from_secs(1))?,
        })
    }
}
