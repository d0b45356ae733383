//! Simulator configuration, from the environment or made up for tests.

use std::fmt;
use std::net::{AddrParseError, SocketAddr};
use std::num::ParseIntError;

use super::knobs::{KnobError, KnobSet};
use super::latency::Latency;
use super::limits::{LimitKnobs, Window};

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:18080";
pub const DEFAULT_SMTP_ADDR: &str = "127.0.0.1:12525";
pub const DEFAULT_TWILIO_ACCOUNT_SID: &str = "ACsim";
pub const DEFAULT_TWILIO_AUTH_TOKEN: &str = "sim-token";
/// Twilio segments per second per sender for the standalone simulator: the rate of a short
/// code, not of a long code (1/s), because the local demo sends every SMS from one number and
/// would otherwise crawl. `SIM_TWILIO_SEGMENTS_PER_SEC=1` gives the long-code limit.
pub const DEFAULT_TWILIO_SEGMENTS_PER_SEC: u32 = 100;

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
    #[error("{var}={value:?}: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("{var}: {source}")]
    Knobs {
        var: &'static str,
        #[source]
        source: KnobError,
    },
}

#[derive(Clone)]
pub struct SimConfig {
    pub http_addr: SocketAddr,
    pub smtp_addr: SocketAddr,
    /// Starting latency of every channel whose `knobs` latency is left at zero.
    pub latency: Latency,
    /// Starting knobs; change them at runtime through [`super::SimHandle::knobs`] or
    /// `PUT /_sim/knobs`.
    pub knobs: KnobSet,
    /// When set, the Teams token endpoint rejects any other client id.
    pub teams_client_id: Option<String>,
    /// When set, the Teams token endpoint rejects any other client secret.
    pub teams_client_secret: Option<String>,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    /// `SIM_RECORD_CONTENT=off` keeps only each message's channel, key, recipient and time
    /// (load tests); on by default.
    pub record_content: bool,
}

impl SimConfig {
    /// Reads `SIM_*` variables; unset or empty ones take their defaults:
    ///
    /// - `SIM_HTTP_ADDR`, `SIM_SMTP_ADDR`: listeners.
    /// - `SIM_LATENCY_MS` + `SIM_JITTER_MS` (fixed + uniform jitter), or `SIM_LATENCY_P50_MS` +
    ///   `SIM_LATENCY_P99_MS` (log-normal): every channel's starting latency.
    /// - `SIM_RATE_LIMITS=on|off` (default on; off still measures and reports).
    /// - `SIM_TWILIO_SEGMENTS_PER_SEC` (default [`DEFAULT_TWILIO_SEGMENTS_PER_SEC`]).
    /// - `SIM_KNOBS`: a JSON merge patch over the resulting knobs, same shape as
    ///   `PUT /_sim/knobs`, for anything else (failure rates, outages, presence, per-sender
    ///   limits, callbacks).
    /// - `SIM_RECORD_CONTENT=on|off` (default on): keep subject, body and raw request.
    /// - `SIM_TEAMS_CLIENT_ID`, `SIM_TEAMS_CLIENT_SECRET`, `SIM_TWILIO_ACCOUNT_SID`,
    ///   `SIM_TWILIO_AUTH_TOKEN`: credentials.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| match std::env::var(var) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode { var }),
        })
    }

    /// Both listeners on ephemeral loopback ports, no latency, default credentials, and rate
    /// limits measured but not enforced: fleet tests send faster than one conversation or one
    /// long code may, and are about correctness, not pacing. See [`Self::with_real_limits`].
    pub fn ephemeral() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut cfg = Self {
            http_addr: any,
            smtp_addr: any,
            ..Self::default()
        };
        cfg.knobs.limits = LimitKnobs::observe_only();
        cfg
    }

    /// Enforces the providers' documented limits (Twilio: a long code's 1 segment/s).
    pub fn with_real_limits(mut self) -> Self {
        self.knobs.limits = LimitKnobs::real();
        self
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
        let opt_millis = |var: &'static str| -> Result<Option<u64>, ConfigError> {
            get(var)?
                .map(|value| {
                    value.trim().parse().map_err(|source| ConfigError::Millis {
                        var,
                        value,
                        source,
                    })
                })
                .transpose()
        };
        let fixed = (opt_millis("SIM_LATENCY_MS")?, opt_millis("SIM_JITTER_MS")?);
        let log_normal = (
            opt_millis("SIM_LATENCY_P50_MS")?,
            opt_millis("SIM_LATENCY_P99_MS")?,
        );
        let latency = match (fixed, log_normal) {
            ((fixed, jitter), (None, None)) => {
                Latency::new(fixed.unwrap_or(0), jitter.unwrap_or(0))
            }
            ((None, None), (Some(p50), Some(p99))) => Latency::log_normal(p50, p99),
            _ => {
                return Err(ConfigError::Invalid {
                    var: "SIM_LATENCY_P50_MS",
                    value: format!("{:?}", log_normal),
                    reason: "set both SIM_LATENCY_P50_MS and SIM_LATENCY_P99_MS, and not \
                             together with SIM_LATENCY_MS/SIM_JITTER_MS"
                        .into(),
                });
            }
        };
        if let Some(problem) = latency.problem() {
            return Err(ConfigError::Invalid {
                var: "SIM_LATENCY_P99_MS",
                value: format!("{:?}", log_normal),
                reason: problem.into(),
            });
        }

        let mut knobs = KnobSet::default();
        knobs.limits.enabled = match get("SIM_RATE_LIMITS")?.as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "SIM_RATE_LIMITS",
                    value: other.to_owned(),
                    reason: "expected on or off".into(),
                })
            }
        };
        let per_sec = match get("SIM_TWILIO_SEGMENTS_PER_SEC")? {
            None => DEFAULT_TWILIO_SEGMENTS_PER_SEC,
            Some(value) => match value.trim().parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "SIM_TWILIO_SEGMENTS_PER_SEC",
                        value,
                        reason: "expected a whole number above 0".into(),
                    })
                }
            },
        };
        knobs.limits.sms_per_sender = vec![Window::new(per_sec, 1_000)];
        if let Some(json) = get("SIM_KNOBS")? {
            let var = "SIM_KNOBS";
            let patch: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| ConfigError::Knobs {
                    var,
                    source: e.into(),
                })?;
            knobs = knobs
                .patched(&patch)
                .and_then(|k| k.validate().map(|()| k))
                .map_err(|source| ConfigError::Knobs { var, source })?;
        }

        let record_content = match get("SIM_RECORD_CONTENT")?.as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "SIM_RECORD_CONTENT",
                    value: other.to_owned(),
                    reason: "expected on or off".into(),
                })
            }
        };
        Ok(Self {
            record_content,
            http_addr: addr("SIM_HTTP_ADDR", DEFAULT_HTTP_ADDR)?,
            smtp_addr: addr("SIM_SMTP_ADDR", DEFAULT_SMTP_ADDR)?,
            latency,
            knobs,
            teams_client_id: get("SIM_TEAMS_CLIENT_ID")?,
            teams_client_secret: get("SIM_TEAMS_CLIENT_SECRET")?,
            twilio_account_sid: get("SIM_TWILIO_ACCOUNT_SID")?
                .unwrap_or_else(|| DEFAULT_TWILIO_ACCOUNT_SID.to_owned()),
            twilio_auth_token: get("SIM_TWILIO_AUTH_TOKEN")?
                .unwrap_or_else(|| DEFAULT_TWILIO_AUTH_TOKEN.to_owned()),
        })
    }
}

/// What [`SimConfig::from_env`] gives with nothing set.
impl Default for SimConfig {
    fn default() -> Self {
        let mut knobs = KnobSet::default();
        knobs.limits.sms_per_sender = vec![Window::new(DEFAULT_TWILIO_SEGMENTS_PER_SEC, 1_000)];
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 18080)),
            smtp_addr: SocketAddr::from(([127, 0, 0, 1], 12525)),
            latency: Latency::default(),
            knobs,
            teams_client_id: None,
            teams_client_secret: None,
            twilio_account_sid: DEFAULT_TWILIO_ACCOUNT_SID.to_owned(),
            twilio_auth_token: DEFAULT_TWILIO_AUTH_TOKEN.to_owned(),
            record_content: true,
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
            .field("knobs", &self.knobs)
            .field("teams_client_id", &self.teams_client_id)
            .field(
                "teams_client_secret",
                &self.teams_client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &"<redacted>")
            .field("record_content", &self.record_content)
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
        assert!(cfg.knobs.limits.enabled);
        assert_eq!(
            cfg.knobs.limits.sms_per_sender,
            vec![Window::new(DEFAULT_TWILIO_SEGMENTS_PER_SEC, 1000)]
        );
        assert_eq!(
            cfg.knobs.limits.teams_per_conversation,
            LimitKnobs::real().teams_per_conversation
        );
        assert_eq!(cfg.knobs, SimConfig::default().knobs);
        assert!(!SimConfig::ephemeral().knobs.limits.enabled);
        assert_eq!(
            SimConfig::ephemeral().with_real_limits().knobs.limits,
            LimitKnobs::real()
        );
        Ok(())
    }

    #[test]
    fn knob_variables() -> anyhow::Result<()> {
        let cfg = from_map(&[
            ("SIM_LATENCY_P50_MS", "20"),
            ("SIM_LATENCY_P99_MS", "300"),
            ("SIM_RATE_LIMITS", "off"),
            ("SIM_TWILIO_SEGMENTS_PER_SEC", "1"),
            (
                "SIM_KNOBS",
                r#"{"teams":{"throttle":0.1},"presence":{"users":{"u1":"Busy"}}}"#,
            ),
        ])?;
        assert_eq!(cfg.latency, Latency::log_normal(20, 300));
        assert!(!cfg.knobs.limits.enabled);
        assert_eq!(cfg.knobs.limits.sms_per_sender, vec![Window::new(1, 1000)]);
        assert_eq!(cfg.knobs.teams.throttle, 0.1);
        assert_eq!(
            cfg.knobs.presence.of("u1"),
            super::super::knobs::Availability::Busy
        );

        for bad in [
            vec![("SIM_LATENCY_P50_MS", "20")],
            vec![("SIM_LATENCY_P50_MS", "20"), ("SIM_LATENCY_P99_MS", "10")],
            vec![
                ("SIM_LATENCY_MS", "5"),
                ("SIM_LATENCY_P50_MS", "20"),
                ("SIM_LATENCY_P99_MS", "30"),
            ],
            vec![("SIM_RATE_LIMITS", "maybe")],
            vec![("SIM_TWILIO_SEGMENTS_PER_SEC", "0")],
        ] {
            assert!(
                matches!(from_map(&bad), Err(ConfigError::Invalid { .. })),
                "{bad:?}"
            );
        }
        for bad in [r#"{"teams":{"throttle":2}}"#, "{", r#"{"nope":1}"#] {
            assert!(
                matches!(
                    from_map(&[("SIM_KNOBS", bad)]),
                    Err(ConfigError::Knobs { .. })
                ),
                "{bad}"
            );
        }
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
