//! Simulator configuration, from the environment or made up for tests.

use std::fmt;
use std::net::{AddrParseError, SocketAddr};
use std::num::ParseIntError;

use super::knobs::Latency;

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:18080";
pub const DEFAULT_SMTP_ADDR: &str = "127.0.0.1:12525";
pub const DEFAULT_TWILIO_ACCOUNT_SID: &str = "ACsim";
pub const DEFAULT_TWILIO_AUTH_TOKEN: &str = "sim-token";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}={value:?} is not a socket address: {source}")]
    Addr {
        var: &'static str,
        value: String,
        #[source]
        source: AddrParseError,
    },
    #[error("{var}={value:?} is not a whole number of milliseconds: {source}")]
    Millis {
        var: &'static str,
        value: String,
        #[source]
        source: ParseIntError,
    },
    #[error("{var} is not valid unicode")]
    NotUnicode { var: &'static str },
}

#[derive(Clone)]
pub struct SimConfig {
    pub http_addr: SocketAddr,
    pub smtp_addr: SocketAddr,
    pub latency: Latency,
    /// When set, the Teams token endpoint rejects any other client id.
    pub teams_client_id: Option<String>,
    /// When set, the Teams token endpoint rejects any other client secret.
    pub teams_client_secret: Option<String>,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
}

impl SimConfig {
    /// Reads `SIM_*` variables; unset or empty ones take their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| match std::env::var(var) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode { var }),
        })
    }

    /// Both listeners on ephemeral loopback ports, no latency, default credentials.
    pub fn ephemeral() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            http_addr: any,
            smtp_addr: any,
            ..Self::default()
        }
    }

    // Separate from `from_env` so tests need not mutate the process environment.
    fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let get = |var: &'static str| -> Result<Option<String>, ConfigError> {
            Ok(lookup(var)?.filter(|v| !v.trim().is_empty()))
        };
        let addr = |var: &'static str, default: &str| -> Result<SocketAddr, ConfigError> {
            let value = get(var)?.unwrap_or_else(|| default.to_owned());
            value
                .trim()
                .parse()
                .map_err(|source| ConfigError::Addr { var, value, source })
        };
        let millis = |var: &'static str| -> Result<u64, ConfigError> {
            match get(var)? {
                None => Ok(0),
                Some(value) => value.trim().parse().map_err(|source| ConfigError::Millis {
                    var,
                    value,
                    source,
                }),
            }
        };
        Ok(Self {
            http_addr: addr("SIM_HTTP_ADDR", DEFAULT_HTTP_ADDR)?,
            smtp_addr: addr("SIM_SMTP_ADDR", DEFAULT_SMTP_ADDR)?,
            latency: Latency::new(millis("SIM_LATENCY_MS")?, millis("SIM_JITTER_MS")?),
            teams_client_id: get("SIM_TEAMS_CLIENT_ID")?,
            teams_client_secret: get("SIM_TEAMS_CLIENT_SECRET")?,
            twilio_account_sid: get("SIM_TWILIO_ACCOUNT_SID")?
                .unwrap_or_else(|| DEFAULT_TWILIO_ACCOUNT_SID.to_owned()),
            twilio_auth_token: get("SIM_TWILIO_AUTH_TOKEN")?
                .unwrap_or_else(|| DEFAULT_TWILIO_AUTH_TOKEN.to_owned()),
        })
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 18080)),
            smtp_addr: SocketAddr::from(([127, 0, 0, 1], 12525)),
            latency: Latency::default(),
            teams_client_id: None,
            teams_client_secret: None,
            twilio_account_sid: DEFAULT_TWILIO_ACCOUNT_SID.to_owned(),
            twilio_auth_token: DEFAULT_TWILIO_AUTH_TOKEN.to_owned(),
        }
    }
}

// Hand-written so secrets never reach logs.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("http_addr", &self.http_addr)
            .field("smtp_addr", &self.smtp_addr)
            .field("latency", &self.latency)
            .field("teams_client_id", &self.teams_client_id)
            .field(
                "teams_client_secret",
                &self.teams_client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from_map(pairs: &[(&'static str, &str)]) -> Result<SimConfig, ConfigError> {
        let map: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        SimConfig::from_lookup(|var| Ok(map.get(var).cloned()))
    }

    #[test]
    fn defaults_when_unset() -> anyhow::Result<()> {
        let cfg = from_map(&[])?;
        assert_eq!(cfg.http_addr.to_string(), DEFAULT_HTTP_ADDR);
        assert_eq!(cfg.smtp_addr.to_string(), DEFAULT_SMTP_ADDR);
        assert_eq!(cfg.latency, Latency::default());
        assert_eq!(cfg.twilio_account_sid, "ACsim");
        assert_eq!(cfg.twilio_auth_token, "sim-token");
        assert!(cfg.teams_client_id.is_none());
        Ok(())
    }

    #[test]
    fn reads_values_and_rejects_garbage() -> anyhow::Result<()> {
        let cfg = from_map(&[
            ("SIM_HTTP_ADDR", "0.0.0.0:8080"),
            ("SIM_LATENCY_MS", "25"),
            ("SIM_JITTER_MS", "5"),
            ("SIM_TEAMS_CLIENT_ID", "app"),
        ])?;
        assert_eq!(cfg.http_addr.port(), 8080);
        assert_eq!(cfg.latency, Latency::new(25, 5));
        assert_eq!(cfg.teams_client_id.as_deref(), Some("app"));
        assert!(!format!("{cfg:?}").contains("sim-token"));

        assert!(matches!(
            from_map(&[("SIM_SMTP_ADDR", "nope")]),
            Err(ConfigError::Addr { .. })
        ));
        assert!(matches!(
            from_map(&[("SIM_JITTER_MS", "-1")]),
            Err(ConfigError::Millis { .. })
        ));
        Ok(())
    }
}
