use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error(
        "refusing to start outside development mode (PUSHFLEET_ENV={dev}): these are unset or \
         still have their development defaults, set them: {}",
        names.join(", "),
        dev = crate::DEVELOPMENT
    )]
    DevelopmentDefaults { names: Vec<String> },
}

/// A string from the environment, or the default when unset or empty.
pub fn env_string(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => default.to_owned(),
    }
}

/// A parsed value from the environment, or the default when unset or empty.
pub fn env_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
            name: name.to_owned(),
            value: v.clone(),
            reason: e.to_string(),
        }),
        _ => Ok(default),
    }
}

/// A duration given in milliseconds.
pub fn env_duration_ms(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let ms = env_or(name, default.as_millis() as u64)?;
    Ok(Duration::from_millis(ms))
}
