//! Configuration from the environment (12-factor), with local defaults that match the
//! servers started by `infra/up.sh`. Secrets are wrapped so they never reach a log line.

mod common;
mod env;
mod secret;

pub use common::CommonConfig;
pub use env::{env_duration_ms, env_or, env_string, ConfigError};
pub use secret::Secret;
