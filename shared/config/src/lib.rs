//! Configuration from the environment (12-factor), with local defaults that match the
//! servers started by `infra/up.sh`. Secrets are wrapped so they never reach a log line.

mod common;
mod development;
mod env;
mod secret;

pub use common::CommonConfig;
pub use development::{development_mode, refuse_development_defaults, DEVELOPMENT};
pub use env::{env_duration_ms, env_or, env_string, ConfigError};
pub use secret::Secret;
