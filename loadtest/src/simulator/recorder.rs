//! Everything the simulator accepted, with per-channel deduplication on the idempotency key,
//! and counts of what it refused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Teams,
    Sms,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReceivedMessage {
    pub channel: Channel,
    pub idempotency_key: Option<String>,
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    /// The request as received, for asserting details the other fields do not carry.
    pub raw: serde_json::Value,
    pub received_at: DateTime<Utc>,
    pub duplicate: bool,
}

/// One recipient's share of an accepted request, before the recorder stamps it.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    pub raw: serde_json::Value,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub received: usize,
    pub unique: usize,
    pub duplicates: usize,
}

impl ChannelStats {
    fn count(&mut self, duplicate: bool) {
        self.received += 1;
        if duplicate {
            self.duplicates += 1;
        } else {
            self.unique += 1;
        }
    }
}

/// Why a provider call was refused.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// An outage window was in progress.
    Outage,
    /// Injected transient server error.
    ServerError,
    /// Injected throttle.
    Throttle,
    /// Injected or per-recipient permanent failure.
    Permanent,
    /// A provider rate limit was exceeded.
    RateLimited,
}

/// Refused provider calls on one channel, by kind. Refused calls are not recorded as messages.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rejections {
    pub outage: usize,
    pub server_error: usize,
    pub throttle: usize,
    pub permanent: usize,
    pub rate_limited: usize,
}

impl Rejections {
    pub fn get(&self, kind: RejectKind) -> usize {
        match kind {
            RejectKind::Outage => self.outage,
            RejectKind::ServerError => self.server_error,
            RejectKind::Throttle => self.throttle,
            RejectKind::Permanent => self.permanent,
            RejectKind::RateLimited => self.rate_limited,
        }
    }

    pub fn total(&self) -> usize {
        self.outage + self.server_error + self.throttle + self.permanent + self.rate_limited
    }

    fn count(&mut self, kind: RejectKind) {
        let slot = match kind {
            RejectKind::Outage => &mut self.outage,
            RejectKind::ServerError => &mut self.server_error,
            RejectKind::Throttle => &mut self.throttle,
            RejectKind::Permanent => &mut self.permanent,
            RejectKind::RateLimited => &mut self.rate_limited,
        };
        *slot += 1;
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectedStats {
    pub email: Rejections,
    pub teams: Rejections,
    pub sms: Rejections,
}

impl RejectedStats {
    pub fn channel(&self, channel: Channel) -> &Rejections {
        match channel {
            Channel::Email => &self.email,
            Channel::Teams => &self.teams,
            Channel::Sms => &self.sms,
        }
    }
}

/// Twilio status callbacks the simulator made: `sent` got a 2xx answer, `failed` did not
/// (after retrying connection failures).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackStats {
    pub sent: usize,
    pub failed: usize,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub email: ChannelStats,
    pub teams: ChannelStats,
    pub sms: ChannelStats,
    /// Sum over the channels.
    pub total: ChannelStats,
    #[serde(default)]
    pub rejected: RejectedStats,
    #[serde(default)]
    pub callbacks: CallbackStats,
    /// The most HTTP provider calls (Teams, Twilio, SendGrid) in progress at once.
    #[serde(default)]
    pub max_concurrent_calls: u64,
}

impl SimStats {
    pub fn channel(&self, channel: Channel) -> &ChannelStats {
        match channel {
            Channel::Email => &self.email,
            Channel::Teams => &self.teams,
            Channel::Sms => &self.sms,
        }
    }

    fn channel_mut(&mut self, channel: Channel) -> &mut ChannelStats {
        match channel {
            Channel::Email => &mut self.email,
            Channel::Teams => &mut self.teams,
            Channel::Sms => &mut self.sms,
        }
    }
}

#[derive(Default)]
struct State {
    messages: Vec<ReceivedMessage>,
    seen_keys: HashSet<(Channel, String)>,
    stats: SimStats,
    /// HTTP provider calls in progress now.
    calls_in_progress: u64,
}

/// One HTTP provider call in progress (see [`Recorder::call_started`]).
pub struct CallInProgress(Arc<Recorder>);

impl Drop for CallInProgress {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        // A reset in between zeroes the count: never below zero.
        state.calls_in_progress = state.calls_in_progress.saturating_sub(1);
    }
}

/// One accepted request's share, without its content: what a load test needs to time and
/// audit a run (`GET /_sim/receipts`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub channel: Channel,
    pub idempotency_key: Option<String>,
    /// Microseconds since the Unix epoch.
    pub received_at_us: i64,
    pub duplicate: bool,
}

/// Thread-safe log of accepted messages. Waiters are woken through a `watch` channel carrying
/// the stats, so tests never poll.
pub struct Recorder {
    state: Mutex<State>,
    watched: watch::Sender<SimStats>,
    /// False for load tests: subject, body and raw request are dropped, so a million
    /// messages fit in memory; keys, recipients and times are kept.
    keep_content: bool,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self::with_content(true)
    }

    /// `keep_content = false` records only channel, key, recipient and time of each message.
    pub fn with_content(keep_content: bool) -> Self {
        Self {
            state: Mutex::new(State::default()),
            watched: watch::Sender::new(SimStats::default()),
            keep_content,
        }
    }

    /// Records one accepted request (one entry per recipient) and tells whether it was a
    /// duplicate. The key identifies the request, so the recipients of one request are not
    /// duplicates of each other; a later request with a key already seen on this channel is.
    pub fn record(
        &self,
        channel: Channel,
        idempotency_key: Option<&str>,
        recipients: Vec<NewMessage>,
    ) -> bool {
        let received_at = Utc::now();
        let mut state = self.lock();
        let duplicate = match idempotency_key {
            Some(key) => !state.seen_keys.insert((channel, key.to_owned())),
            None => false,
        };
        for msg in recipients {
            state.stats.channel_mut(channel).count(duplicate);
            state.stats.total.count(duplicate);
            let (subject, body, raw) = if self.keep_content {
                (msg.subject, msg.body, msg.raw)
            } else {
                (None, String::new(), serde_json::Value::Null)
            };
            state.messages.push(ReceivedMessage {
                channel,
                idempotency_key: idempotency_key.map(str::to_owned),
                recipient: msg.recipient,
                subject,
                body,
                raw,
                received_at,
                duplicate,
            });
        }
        // Sent under the lock so waiters see counts in the order they were reached.
        self.watched.send_replace(state.stats);
        duplicate
    }

    /// Counts a provider call that was refused (and so not recorded).
    pub fn count_rejected(&self, channel: Channel, kind: RejectKind) {
        let mut state = self.lock();
        let rejected = &mut state.stats.rejected;
        match channel {
            Channel::Email => rejected.email.count(kind),
            Channel::Teams => rejected.teams.count(kind),
            Channel::Sms => rejected.sms.count(kind),
        }
        self.watched.send_replace(state.stats);
    }

    /// Counts one status callback made, answered with a 2xx or not.
    pub fn count_callback(&self, answered_ok: bool) {
        let mut state = self.lock();
        if answered_ok {
            state.stats.callbacks.sent += 1;
        } else {
            state.stats.callbacks.failed += 1;
        }
        self.watched.send_replace(state.stats);
    }

    /// Every accepted message, duplicates included (flagged), in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.lock().messages.clone()
    }

    /// Every accepted message's channel, key, time and duplicate flag, in arrival order.
    pub fn receipts(&self) -> Vec<Receipt> {
        self.lock()
            .messages
            .iter()
            .map(|m| Receipt {
                channel: m.channel,
                idempotency_key: m.idempotency_key.clone(),
                received_at_us: m.received_at.timestamp_micros(),
                duplicate: m.duplicate,
            })
            .collect()
    }

    pub fn messages_for(&self, channel: Channel) -> Vec<ReceivedMessage> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// Unique messages over all channels.
    pub fn unique_count(&self) -> usize {
        self.lock().stats.total.unique
    }

    /// Forgets every message and every idempotency key seen.
    pub fn reset(&self) {
        let mut state = self.lock();
        *state = State::default();
        self.watched.send_replace(SimStats::default());
    }

    /// Waits until at least `n` unique messages have been recorded; false on timeout.
    pub async fn wait_for_unique(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for(|stats| stats.total.unique >= n, timeout)
            .await
    }

    /// Waits until the stats (accepted, refused, callbacks) satisfy `done`; false on timeout.
    pub async fn wait_for(
        &self,
        mut done: impl FnMut(&SimStats) -> bool,
        timeout: Duration,
    ) -> bool {
        let mut rx = self.watched.subscribe();
        // `wait_for` only errs when the sender is dropped, and `self` owns it.
        let waited = tokio::time::timeout(timeout, rx.wait_for(|stats| done(stats))).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// An HTTP provider call begins; it ends when the returned guard is dropped, however
    /// the request ends (a client that hangs up included).
    pub fn call_started(self: &Arc<Self>) -> CallInProgress {
        let mut state = self.lock();
        state.calls_in_progress += 1;
        state.stats.max_concurrent_calls = state
            .stats
            .max_concurrent_calls
            .max(state.calls_in_progress);
        CallInProgress(self.clone())
    }

    // A panic elsewhere while holding the lock leaves the data consistent enough for a test
    // double, so poisoning is ignored rather than propagated.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(to: &str) -> NewMessage {
        NewMessage {
            recipient: to.to_owned(),
            subject: None,
            body: "hi".to_owned(),
            raw: serde_json::Value::Null,
        }
    }

    #[test]
    fn dedups_per_channel_and_request() {
        let rec = Recorder::new();
        assert!(!rec.record(Channel::Email, Some("k1"), vec![msg("a"), msg("b")]));
        assert!(rec.record(Channel::Email, Some("k1"), vec![msg("a")]));
        assert!(!rec.record(Channel::Sms, Some("k1"), vec![msg("+100000000")]));
        assert!(!rec.record(Channel::Sms, None, vec![msg("+100000000")]));
        assert!(!rec.record(Channel::Sms, None, vec![msg("+100000000")]));

        let stats = rec.stats();
        assert_eq!(
            stats.email,
            ChannelStats {
                received: 3,
                unique: 2,
                duplicates: 1
            }
        );
        assert_eq!(stats.sms.unique, 3);
        assert_eq!(stats.total.received, 6);
        assert_eq!(rec.unique_count(), 5);
        assert_eq!(rec.messages().iter().filter(|m| m.duplicate).count(), 1);

        rec.count_rejected(Channel::Sms, RejectKind::RateLimited);
        rec.count_rejected(Channel::Sms, RejectKind::RateLimited);
        rec.count_callback(false);
        let stats = rec.stats();
        assert_eq!(stats.rejected.sms.get(RejectKind::RateLimited), 2);
        assert_eq!(stats.rejected.channel(Channel::Sms).total(), 2);
        assert_eq!(stats.callbacks.failed, 1);
        assert_eq!(
            stats.total.received, 6,
            "refusals are not received messages"
        );

        let receipts = rec.receipts();
        assert_eq!(receipts.len(), 6);
        assert_eq!(receipts[2].idempotency_key.as_deref(), Some("k1"));
        assert!(receipts[2].duplicate);

        rec.reset();
        assert_eq!(rec.stats(), SimStats::default());
        assert!(!rec.record(Channel::Email, Some("k1"), vec![msg("a")]));
    }

    #[test]
    fn lean_recorder_drops_content_and_keeps_keys() {
        let rec = Recorder::with_content(false);
        rec.record(Channel::Email, Some("k1"), vec![msg("a")]);
        let m = &rec.messages()[0];
        assert_eq!((m.recipient.as_str(), m.body.as_str()), ("a", ""));
        assert_eq!(m.idempotency_key.as_deref(), Some("k1"));
        assert!(m.raw.is_null());
    }

    #[tokio::test]
    async fn wait_for_unique_is_woken_and_times_out() {
        let rec = std::sync::Arc::new(Recorder::new());
        assert!(!rec.wait_for_unique(1, Duration::from_millis(20)).await);
        let waiter = {
            let rec = rec.clone();
            tokio::spawn(async move { rec.wait_for_unique(2, Duration::from_secs(10)).await })
        };
        rec.record(Channel::Teams, None, vec![msg("a:1"), msg("a:2")]);
        assert!(matches!(waiter.await, Ok(true)));

        let waiter = {
            let rec = rec.clone();
            tokio::spawn(async move {
                rec.wait_for(|s| s.callbacks.failed == 1, Duration::from_secs(10))
                    .await
            })
        };
        rec.count_callback(false);
        assert!(matches!(waiter.await, Ok(true)));
    }
}
