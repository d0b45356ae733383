use pushfleet_config::{env_or, CommonConfig, ConfigError};

#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    pub common: CommonConfig,
    /// `EVALUATOR_CONCURRENCY`: campaigns expanded at once by one replica.
    pub concurrency: usize,
    /// `PUBLISH_BATCH`: send jobs published per transaction.
    pub publish_batch: i64,
    /// `CONFIRM_WINDOW`: publishes awaiting a broker confirm at once.
    pub confirm_window: usize,
}

impl EvaluatorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(9102)?,
            concurrency: env_or("EVALUATOR_CONCURRENCY", 2)?,
            publish_batch: env_or("PUBLISH_BATCH", 2000)?,
            confirm_window: env_or("CONFIRM_WINDOW", 256)?,
        })
    }
}
