//! The decision every provider call goes through before it is accepted: outage, rejected
//! recipient, injected failure, rate limit. Refusals are counted here, once each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Response};
use chrono::Utc;
use rand::Rng;

use super::knobs::{ChannelKnobs, Knobs};
use super::latency::Latency;
use super::limits::{Demand, Limiter, LimitsReport};
use super::recorder::{Channel, Recorder, RejectKind};

/// Why a call is refused, with what the provider's answer needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Outage,
    ServerError,
    Throttle { retry_after: Duration },
    Permanent,
    RateLimited { retry_after: Duration },
}

impl Fault {
    pub fn kind(self) -> RejectKind {
        match self {
            Self::Outage => RejectKind::Outage,
            Self::ServerError => RejectKind::ServerError,
            Self::Throttle { .. } => RejectKind::Throttle,
            Self::Permanent => RejectKind::Permanent,
            Self::RateLimited { .. } => RejectKind::RateLimited,
        }
    }

    /// Whole seconds for `Retry-After`, at least 1 (0 would invite a hot retry loop).
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            Self::Throttle { retry_after } | Self::RateLimited { retry_after } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            _ => None,
        }
    }
}

/// Adds `Retry-After` when the fault has one.
pub(crate) fn with_retry_after<B>(mut resp: Response<B>, fault: Fault) -> Response<B> {
    if let Some(secs) = fault.retry_after_secs() {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    resp
}

/// One uniform draw split into the injected kinds, so each kind's rate holds exactly; when the
/// rates add up to more than 1 the later kinds get what is left.
fn roll(knobs: &ChannelKnobs) -> Option<Fault> {
    let total = knobs.server_error + knobs.throttle + knobs.permanent;
    if total <= 0.0 {
        return None;
    }
    let draw: f64 = rand::rng().random();
    if draw < knobs.server_error {
        Some(Fault::ServerError)
    } else if draw < knobs.server_error + knobs.throttle {
        Some(Fault::Throttle {
            retry_after: Duration::from_secs(knobs.retry_after_secs),
        })
    } else if draw < total {
        Some(Fault::Permanent)
    } else {
        None
    }
}

#[derive(Clone)]
pub(crate) struct Gate {
    pub recorder: Arc<Recorder>,
    pub knobs: Knobs,
    pub limiter: Arc<Limiter>,
}

impl Gate {
    pub fn latency(&self, channel: Channel) -> Latency {
        self.knobs.read(|k| k.channel(channel).latency)
    }

    fn refuse(&self, channel: Channel, fault: Fault) -> Fault {
        self.recorder.count_rejected(channel, fault.kind());
        tracing::debug!(?channel, ?fault, "provider call refused");
        fault
    }

    /// Refuses (and counts) a call made during an outage.
    pub fn check_outage(&self, channel: Channel) -> Result<(), Fault> {
        if self
            .knobs
            .read(|k| k.channel(channel).in_outage(Utc::now()))
        {
            return Err(self.refuse(channel, Fault::Outage));
        }
        Ok(())
    }

    /// Refuses (and counts) a call to a recipient configured to fail, for good or for now.
    pub fn check_recipients(&self, channel: Channel, recipients: &[&str]) -> Result<(), Fault> {
        let fault = self.knobs.read(|k| {
            let k = k.channel(channel);
            let listed = |set: &std::collections::BTreeSet<String>| {
                recipients.iter().any(|r| set.contains(*r))
            };
            if listed(&k.rejected_recipients) {
                Some(Fault::Permanent)
            } else if listed(&k.failing_recipients) {
                Some(Fault::ServerError)
            } else {
                None
            }
        });
        match fault {
            Some(fault) => Err(self.refuse(channel, fault)),
            None => Ok(()),
        }
    }

    /// The fate of a valid call: outage, rejected recipient, injected failure, then rate limits
    /// (last, so only calls that are otherwise accepted use up the window).
    pub fn judge(
        &self,
        channel: Channel,
        recipients: &[&str],
        demands: &[Demand],
    ) -> Result<(), Fault> {
        self.check_outage(channel)?;
        self.check_recipients(channel, recipients)?;
        let outcome = self.knobs.read(|k| {
            if let Some(fault) = roll(k.channel(channel)) {
                return Err(fault);
            }
            self.limiter
                .admit(&k.limits, demands, Instant::now())
                .map_err(|refusal| {
                    tracing::debug!(
                        scope = ?refusal.scope,
                        key = %refusal.key,
                        "rate limit exceeded"
                    );
                    Fault::RateLimited {
                        retry_after: refusal.retry_after,
                    }
                })
        });
        outcome.map_err(|fault| self.refuse(channel, fault))
    }

    pub fn limits(&self) -> LimitsReport {
        self.knobs.read(|k| self.limiter.report(&k.limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roll_respects_rates() {
        let mut knobs = ChannelKnobs::default();
        assert_eq!(roll(&knobs), None);
        knobs.throttle = 1.0;
        knobs.retry_after_secs = 3;
        let fault = roll(&knobs);
        assert_eq!(
            fault,
            Some(Fault::Throttle {
                retry_after: Duration::from_secs(3)
            })
        );
        assert_eq!(fault.and_then(Fault::retry_after_secs), Some(3));
        knobs.server_error = 1.0;
        assert_eq!(roll(&knobs), Some(Fault::ServerError));
        let rate_limited = Fault::RateLimited {
            retry_after: Duration::from_millis(200),
        };
        assert_eq!(rate_limited.retry_after_secs(), Some(1));
    }
}
