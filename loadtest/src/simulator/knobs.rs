//! Runtime-adjustable provider behaviour: latency, injected failures, outages, presence, rate
//! limits and Twilio status callbacks. Read on every provider call, so a change applies to the
//! next call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::latency::Latency;
use super::limits::LimitKnobs;
use super::recorder::Channel;

#[derive(Debug, thiserror::Error)]
pub enum KnobError {
    #[error("{field} must be between 0.0 and 1.0, got {value}")]
    Rate { field: String, value: f64 },
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("knobs do not fit the expected shape: {0}")]
    Shape(#[from] serde_json::Error),
}

/// Everything a test can turn. JSON shape of `GET`/`PUT /_sim/knobs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KnobSet {
    /// SMTP and SendGrid.
    pub email: ChannelKnobs,
    /// Bot Framework Connector (conversations and activities).
    pub teams: ChannelKnobs,
    /// Twilio Messages.
    pub sms: ChannelKnobs,
    pub presence: PresenceKnobs,
    pub limits: LimitKnobs,
    pub status_callbacks: CallbackKnobs,
}

/// Behaviour of one channel's provider calls.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelKnobs {
    pub latency: Latency,
    /// Share of calls answered with a transient server error (HTTP 500, SMTP 451).
    pub server_error: f64,
    /// Share of calls answered with a throttle (HTTP 429 + `Retry-After`, SMTP 421).
    pub throttle: f64,
    /// Share of calls answered with a permanent failure (Teams 403, Twilio 21211, SMTP 550,
    /// SendGrid 400).
    pub permanent: f64,
    /// `Retry-After` of an injected throttle.
    pub retry_after_secs: u64,
    /// Recipients that always fail permanently: removed Teams conversation ids, unknown phone
    /// numbers (`To`), rejected e-mail addresses.
    pub rejected_recipients: BTreeSet<String>,
    /// Recipients whose calls fail transiently (HTTP 500, SMTP 451) for as long as they are
    /// listed: one job of a batch failing while the others go through.
    pub failing_recipients: BTreeSet<String>,
    /// While one of these is in progress every call on the channel fails transiently.
    pub outages: Vec<Outage>,
    /// Input only: "an outage starting now for this many ms", turned into an `outages` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage_for_ms: Option<u64>,
}

impl Default for ChannelKnobs {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            server_error: 0.0,
            throttle: 0.0,
            permanent: 0.0,
            retry_after_secs: 1,
            rejected_recipients: BTreeSet::new(),
            failing_recipients: BTreeSet::new(),
            outages: Vec::new(),
            outage_for_ms: None,
        }
    }
}

impl ChannelKnobs {
    pub fn in_outage(&self, now: DateTime<Utc>) -> bool {
        self.outages.iter().any(|o| o.contains(now))
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// RFC 3339.
    pub start: DateTime<Utc>,
    pub duration_ms: u64,
}

impl Outage {
    pub fn starting_now(duration: Duration) -> Self {
        Self {
            start: Utc::now(),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn end(&self) -> DateTime<Utc> {
        let duration = i64::try_from(self.duration_ms)
            .map(chrono::Duration::milliseconds)
            .unwrap_or(chrono::Duration::MAX);
        self.start
            .checked_add_signed(duration)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end()
    }
}

/// Microsoft Graph presence availability values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Availability {
    #[default]
    Available,
    AvailableIdle,
    Away,
    BeRightBack,
    Busy,
    BusyIdle,
    DoNotDisturb,
    Offline,
    PresenceUnknown,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "Available",
            Self::AvailableIdle => "AvailableIdle",
            Self::Away => "Away",
            Self::BeRightBack => "BeRightBack",
            Self::Busy => "Busy",
            Self::BusyIdle => "BusyIdle",
            Self::DoNotDisturb => "DoNotDisturb",
            Self::Offline => "Offline",
            Self::PresenceUnknown => "PresenceUnknown",
        }
    }

    /// The Graph `activity` that usually goes with this availability.
    pub fn activity(self) -> &'static str {
        match self {
            Self::AvailableIdle | Self::BusyIdle => "Inactive",
            other => other.as_str(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceKnobs {
    /// Availability of every user not in `users`.
    pub default: Availability,
    /// Per Graph user id.
    pub users: BTreeMap<String, Availability>,
}

impl PresenceKnobs {
    pub fn of(&self, user_id: &str) -> Availability {
        self.users.get(user_id).copied().unwrap_or(self.default)
    }
}

/// Twilio status callbacks: after `sent`, the final status is `failed` (30008) with
/// `failed_rate`, `undelivered` (30003) with `undelivered_rate`, otherwise `delivered`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackKnobs {
    pub undelivered_rate: f64,
    pub failed_rate: f64,
    /// Pause between the `sent` and the final callback.
    pub delay_ms: u64,
}

impl KnobSet {
    pub fn channel(&self, channel: Channel) -> &ChannelKnobs {
        match channel {
            Channel::Email => &self.email,
            Channel::Teams => &self.teams,
            Channel::Sms => &self.sms,
        }
    }

    pub fn channel_mut(&mut self, channel: Channel) -> &mut ChannelKnobs {
        match channel {
            Channel::Email => &mut self.email,
            Channel::Teams => &mut self.teams,
            Channel::Sms => &mut self.sms,
        }
    }

    /// Checks ranges; rates are probabilities.
    pub fn validate(&self) -> Result<(), KnobError> {
        let rate = |field: String, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(KnobError::Rate { field, value })
            }
        };
        for channel in [Channel::Email, Channel::Teams, Channel::Sms] {
            let name = channel_name(channel);
            let k = self.channel(channel);
            rate(format!("{name}.server_error"), k.server_error)?;
            rate(format!("{name}.throttle"), k.throttle)?;
            rate(format!("{name}.permanent"), k.permanent)?;
            if let Some(problem) = k.latency.problem() {
                return Err(KnobError::Invalid {
                    field: format!("{name}.latency"),
                    problem: problem.to_owned(),
                });
            }
        }
        rate(
            "status_callbacks.undelivered_rate".into(),
            self.status_callbacks.undelivered_rate,
        )?;
        rate(
            "status_callbacks.failed_rate".into(),
            self.status_callbacks.failed_rate,
        )?;
        if let Some(problem) = self.limits.problem() {
            return Err(KnobError::Invalid {
                field: "limits".into(),
                problem,
            });
        }
        Ok(())
    }

    /// Turns `outage_for_ms` into an outage starting now and forgets outages that are over,
    /// so the list does not grow without bound.
    fn normalize(&mut self, now: DateTime<Utc>) {
        for channel in [Channel::Email, Channel::Teams, Channel::Sms] {
            let k = self.channel_mut(channel);
            if let Some(ms) = k.outage_for_ms.take() {
                k.outages.push(Outage {
                    start: now,
                    duration_ms: ms,
                });
            }
            k.outages.retain(|o| o.end() > now);
        }
    }

    /// This set with a JSON merge patch (RFC 7396) applied: objects merge field by field,
    /// `null` resets a field to its default, anything else (arrays, and `latency`, whose
    /// `kind` decides its fields) is replaced whole.
    pub fn patched(&self, patch: &Value) -> Result<Self, KnobError> {
        let mut doc = serde_json::to_value(self)?;
        merge_patch(&mut doc, patch);
        Ok(serde_json::from_value(doc)?)
    }
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Teams => "teams",
        Channel::Sms => "sms",
    }
}

fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if fields.contains_key("kind") {
        *target = patch.clone();
        return;
    }
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(existing) = target {
        for (name, value) in fields {
            if value.is_null() {
                existing.remove(name);
            } else {
                merge_patch(existing.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Shared, cheaply cloned handle on the knobs of a running simulator.
#[derive(Clone)]
pub struct Knobs {
    current: Arc<RwLock<KnobSet>>,
    initial: Arc<KnobSet>,
}

impl Knobs {
    pub(crate) fn new(mut initial: KnobSet) -> Result<Self, KnobError> {
        initial.validate()?;
        initial.normalize(Utc::now());
        Ok(Self {
            current: Arc::new(RwLock::new(initial.clone())),
            initial: Arc::new(initial),
        })
    }

    /// A copy of the current knobs.
    pub fn get(&self) -> KnobSet {
        self.read(Clone::clone)
    }

    /// Replaces every knob; returns the set now in force.
    pub fn set(&self, knobs: KnobSet) -> Result<KnobSet, KnobError> {
        self.update(|k| *k = knobs)
    }

    /// Changes knobs in place, atomically; nothing changes when the result is invalid.
    pub fn update(&self, change: impl FnOnce(&mut KnobSet)) -> Result<KnobSet, KnobError> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = current.clone();
        change(&mut next);
        next.validate()?;
        next.normalize(Utc::now());
        *current = next.clone();
        Ok(next)
    }

    /// Applies a JSON merge patch, as `PUT /_sim/knobs` does.
    pub fn patch(&self, patch: &Value) -> Result<KnobSet, KnobError> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = current.patched(patch)?;
        next.validate()?;
        next.normalize(Utc::now());
        *current = next.clone();
        Ok(next)
    }

    /// Back to the knobs the simulator started with.
    pub fn reset(&self) -> KnobSet {
        let initial = (*self.initial).clone();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = initial.clone();
        initial
    }

    /// Reads without copying; provider calls use this on every request.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&KnobSet) -> R) -> R {
        f(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_merges_resets_and_validates() -> anyhow::Result<()> {
        let knobs = Knobs::new(KnobSet::default())?;
        let after = knobs.patch(&json!({
            "teams": { "throttle": 0.5, "latency": { "kind": "log_normal", "p50_ms": 5, "p99_ms": 50 } },
            "presence": { "users": { "u1": "Away" } },
        }))?;
        assert_eq!(after.teams.throttle, 0.5);
        assert_eq!(after.teams.latency, Latency::log_normal(5, 50));
        assert_eq!(after.presence.of("u1"), Availability::Away);
        assert_eq!(after.presence.of("u2"), Availability::Available);

        // Merge keeps the other fields; null resets one to its default.
        let after = knobs.patch(&json!({ "teams": { "server_error": 0.1, "throttle": null } }))?;
        assert_eq!((after.teams.server_error, after.teams.throttle), (0.1, 0.0));
        assert_eq!(after.teams.latency, Latency::log_normal(5, 50));

        assert!(matches!(
            knobs.patch(&json!({ "sms": { "permanent": 1.5 } })),
            Err(KnobError::Rate { .. })
        ));
        assert!(matches!(
            knobs.patch(&json!({ "sms": { "permanant": 1.0 } })),
            Err(KnobError::Shape(_))
        ));
        assert_eq!(knobs.get().sms.permanent, 0.0);
        assert_eq!(knobs.reset(), KnobSet::default());
        Ok(())
    }

    #[test]
    fn outage_for_ms_becomes_a_window_and_old_windows_go() -> anyhow::Result<()> {
        let knobs = Knobs::new(KnobSet::default())?;
        let after = knobs.update(|k| {
            k.sms.outage_for_ms = Some(60_000);
            k.sms.outages.push(Outage {
                start: Utc::now() - chrono::Duration::hours(1),
                duration_ms: 1000,
            });
        })?;
        assert_eq!(after.sms.outages.len(), 1);
        assert_eq!(after.sms.outage_for_ms, None);
        assert!(after.sms.in_outage(Utc::now()));
        assert!(!after
            .sms
            .in_outage(Utc::now() + chrono::Duration::minutes(2)));
        Ok(())
    }
}
