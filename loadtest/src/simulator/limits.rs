//! Providers' rate limits: sliding windows over accepted requests, per key (conversation, app,
//! sender, account). Refusals are counted as violations; the busiest window of each configured
//! length is reported so tests can check how close a sender came to a limit.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// At most `max` units (requests, or SMS segments) in any `window_ms`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub max: u32,
    pub window_ms: u64,
}

impl Window {
    pub const fn new(max: u32, window_ms: u64) -> Self {
        Self { max, window_ms }
    }

    fn length(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }
}

/// An empty list of windows disables a limit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitKnobs {
    /// When false, windows are still measured and reported but nothing is refused.
    pub enabled: bool,
    /// Per bot per conversation.
    pub teams_per_conversation: Vec<Window>,
    /// Per app (the client id a token was issued to), across all Connector calls.
    pub teams_per_app: Vec<Window>,
    /// Segments per Twilio sender (`From` or `MessagingServiceSid`) without an override.
    pub sms_per_sender: Vec<Window>,
    /// Per-sender overrides, e.g. a short code at 100 segments/s.
    pub sms_senders: BTreeMap<String, Vec<Window>>,
    /// Messages (one per recipient) per e-mail account: SendGrid API key or SMTP envelope
    /// sender. Off by default, as relays differ.
    pub email_per_account: Vec<Window>,
}

impl Default for LimitKnobs {
    fn default() -> Self {
        Self::real()
    }
}

impl LimitKnobs {
    /// The providers' documented limits, enforced.
    pub fn real() -> Self {
        Self {
            enabled: true,
            teams_per_conversation: vec![
                Window::new(7, 1_000),
                Window::new(8, 2_000),
                Window::new(60, 30_000),
                Window::new(1_800, 3_600_000),
            ],
            teams_per_app: vec![Window::new(50, 1_000)],
            // A Twilio long code.
            sms_per_sender: vec![Window::new(1, 1_000)],
            sms_senders: BTreeMap::new(),
            email_per_account: Vec::new(),
        }
    }

    /// The real windows, measured and reported but not enforced.
    pub fn observe_only() -> Self {
        Self {
            enabled: false,
            ..Self::real()
        }
    }

    pub fn windows(&self, scope: LimitScope, key: &str) -> &[Window] {
        match scope {
            LimitScope::TeamsConversation => &self.teams_per_conversation,
            LimitScope::TeamsApp => &self.teams_per_app,
            LimitScope::SmsSender => self.sms_senders.get(key).unwrap_or(&self.sms_per_sender),
            LimitScope::EmailAccount => &self.email_per_account,
        }
    }

    pub(crate) fn problem(&self) -> Option<String> {
        let lists = [
            ("teams_per_conversation", &self.teams_per_conversation),
            ("teams_per_app", &self.teams_per_app),
            ("sms_per_sender", &self.sms_per_sender),
            ("email_per_account", &self.email_per_account),
        ]
        .into_iter()
        .map(|(name, list)| (name.to_owned(), list))
        .chain(
            self.sms_senders
                .iter()
                .map(|(sender, list)| (format!("sms_senders.{sender}"), list)),
        );
        for (name, list) in lists {
            if list.iter().any(|w| w.max == 0 || w.window_ms == 0) {
                return Some(format!(
                    "{name}: every window needs max > 0 and window_ms > 0"
                ));
            }
        }
        None
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    TeamsConversation,
    TeamsApp,
    SmsSender,
    EmailAccount,
}

/// JSON shape of `GET /_sim/limits`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsReport {
    pub enabled: bool,
    pub teams_conversation: BTreeMap<String, KeyReport>,
    pub teams_app: BTreeMap<String, KeyReport>,
    pub sms_sender: BTreeMap<String, KeyReport>,
    pub email_account: BTreeMap<String, KeyReport>,
}

impl LimitsReport {
    pub fn key(&self, scope: LimitScope, key: &str) -> Option<&KeyReport> {
        self.scope(scope).get(key)
    }

    pub fn scope(&self, scope: LimitScope) -> &BTreeMap<String, KeyReport> {
        match scope {
            LimitScope::TeamsConversation => &self.teams_conversation,
            LimitScope::TeamsApp => &self.teams_app,
            LimitScope::SmsSender => &self.sms_sender,
            LimitScope::EmailAccount => &self.email_account,
        }
    }

    fn scope_mut(&mut self, scope: LimitScope) -> &mut BTreeMap<String, KeyReport> {
        match scope {
            LimitScope::TeamsConversation => &mut self.teams_conversation,
            LimitScope::TeamsApp => &mut self.teams_app,
            LimitScope::SmsSender => &mut self.sms_sender,
            LimitScope::EmailAccount => &mut self.email_account,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Units accepted: requests, or segments for SMS, or recipients for e-mail.
    pub accepted: u64,
    /// Requests refused because they would have exceeded a limit.
    pub violations: u64,
    /// One entry per window currently configured for this key.
    pub windows: Vec<WindowReport>,
}

impl KeyReport {
    pub fn window(&self, window_ms: u64) -> Option<&WindowReport> {
        self.windows.iter().find(|w| w.window_ms == window_ms)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowReport {
    pub window_ms: u64,
    pub max: u32,
    /// The most units accepted within any `window_ms` seen so far.
    pub max_observed: u64,
}

/// One key's share of a request: `weight` units against `key`'s windows in `scope`.
pub(crate) struct Demand {
    pub scope: LimitScope,
    pub key: String,
    pub weight: u32,
}

impl Demand {
    pub fn new(scope: LimitScope, key: impl Into<String>, weight: u32) -> Self {
        Self {
            scope,
            key: key.into(),
            weight,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Refusal {
    pub scope: LimitScope,
    pub key: String,
    /// Until the window that refused has room again.
    pub retry_after: Duration,
}

/// A running sum over one window length, so checking a key costs amortised O(1) per call
/// rather than a walk over every timestamp in the window (load tests send thousands a second).
struct WindowSum {
    /// Absolute index (see `KeyState::first`) of the oldest entry still inside the window.
    start: u64,
    used: u64,
    max_observed: u64,
}

#[derive(Default)]
struct KeyState {
    /// Accepted (time, units), oldest first, no older than the longest window.
    recent: VecDeque<(Instant, u32)>,
    /// Absolute index of `recent[0]`: entries are numbered from 0 as they are accepted.
    first: u64,
    accepted: u64,
    violations: u64,
    /// By window length in ms.
    sums: BTreeMap<u64, WindowSum>,
}

impl KeyState {
    /// Forgets entries older than `keep`, taking them out of every sum still counting them.
    fn prune(&mut self, now: Instant, keep: Duration) {
        while let Some(&(at, units)) = self.recent.front() {
            if now.saturating_duration_since(at) < keep {
                break;
            }
            for sum in self.sums.values_mut() {
                if sum.start <= self.first {
                    sum.used -= u64::from(units);
                    sum.start = self.first + 1;
                }
            }
            self.recent.pop_front();
            self.first += 1;
        }
    }

    /// Units accepted in the `window_ms` up to `now`.
    fn used(&mut self, now: Instant, window_ms: u64) -> u64 {
        let length = Duration::from_millis(window_ms);
        let recent = &self.recent;
        let first = self.first;
        let sum = self.sums.entry(window_ms).or_insert_with(|| WindowSum {
            // A window configured later starts out counting everything still kept.
            start: first,
            used: recent.iter().map(|&(_, units)| u64::from(units)).sum(),
            max_observed: 0,
        });
        while let Some(&(at, units)) = usize::try_from(sum.start - first)
            .ok()
            .and_then(|i| recent.get(i))
        {
            if now.saturating_duration_since(at) < length {
                break;
            }
            sum.used -= u64::from(units);
            sum.start += 1;
        }
        sum.used
    }

    fn push(&mut self, now: Instant, units: u32) {
        self.recent.push_back((now, units));
        self.accepted += u64::from(units);
        for sum in self.sums.values_mut() {
            sum.used += u64::from(units);
        }
    }

    fn note_busiest(&mut self, now: Instant, window_ms: u64) {
        let used = self.used(now, window_ms);
        if let Some(sum) = self.sums.get_mut(&window_ms) {
            sum.max_observed = sum.max_observed.max(used);
        }
    }

    fn max_observed(&self, window_ms: u64) -> u64 {
        self.sums.get(&window_ms).map_or(0, |s| s.max_observed)
    }

    /// How long until `weight` more units fit into `window`. Only on refusals, so a walk is
    /// fine: an enforced window holds at most `max` entries.
    fn wait(&mut self, now: Instant, window: &Window, weight: u32) -> Duration {
        let length = window.length();
        let mut used = self.used(now, window.window_ms);
        let room = u64::from(window.max);
        for &(at, units) in &self.recent {
            let age = now.saturating_duration_since(at);
            if age >= length {
                continue;
            }
            used = used.saturating_sub(u64::from(units));
            if used + u64::from(weight) <= room || used == 0 {
                return length.saturating_sub(age);
            }
        }
        length
    }
}

#[derive(Default)]
pub(crate) struct Limiter {
    keys: Mutex<HashMap<(LimitScope, String), KeyState>>,
}

impl Limiter {
    /// Admits a request only if every demand fits (then all are recorded, atomically) or
    /// limits are off. A request bigger than a whole window (a long SMS on a 1 segment/s
    /// number) is admitted into an empty window, else it could never be sent.
    pub fn admit(
        &self,
        limits: &LimitKnobs,
        demands: &[Demand],
        now: Instant,
    ) -> Result<(), Refusal> {
        let mut keys = self.lock();
        for d in demands {
            let windows = limits.windows(d.scope, &d.key);
            let state = keys.entry((d.scope, d.key.clone())).or_default();
            let longest = windows.iter().map(Window::length).max();
            state.prune(now, longest.unwrap_or(Duration::ZERO));
            if !limits.enabled {
                continue;
            }
            for window in windows {
                let used = state.used(now, window.window_ms);
                if used > 0 && used + u64::from(d.weight) > u64::from(window.max) {
                    state.violations += 1;
                    return Err(Refusal {
                        scope: d.scope,
                        key: d.key.clone(),
                        retry_after: state.wait(now, window, d.weight),
                    });
                }
            }
        }
        for d in demands {
            let windows = limits.windows(d.scope, &d.key);
            let state = keys.entry((d.scope, d.key.clone())).or_default();
            state.push(now, d.weight);
            for window in windows {
                state.note_busiest(now, window.window_ms);
            }
        }
        Ok(())
    }

    pub fn report(&self, limits: &LimitKnobs) -> LimitsReport {
        let keys = self.lock();
        let mut report = LimitsReport {
            enabled: limits.enabled,
            ..LimitsReport::default()
        };
        for ((scope, key), state) in keys.iter() {
            let windows = limits
                .windows(*scope, key)
                .iter()
                .map(|w| WindowReport {
                    window_ms: w.window_ms,
                    max: w.max,
                    max_observed: state.max_observed(w.window_ms),
                })
                .collect();
            report.scope_mut(*scope).insert(
                key.clone(),
                KeyReport {
                    accepted: state.accepted,
                    violations: state.violations,
                    windows,
                },
            );
        }
        report
    }

    pub fn reset(&self) {
        self.lock().clear();
    }

    // A panic while holding the lock leaves counters that are still good enough for a test
    // double, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, HashMap<(LimitScope, String), KeyState>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(key: &str) -> Demand {
        Demand::new(LimitScope::TeamsConversation, key, 1)
    }

    #[test]
    fn teams_windows_refuse_and_count() {
        let limiter = Limiter::default();
        let limits = LimitKnobs::real();
        let t0 = Instant::now();
        let results: Vec<bool> = (0..20)
            .map(|_| limiter.admit(&limits, &[conv("a:1")], t0).is_ok())
            .collect();
        assert_eq!(results.iter().filter(|ok| **ok).count(), 7);
        // The 1 s window is full; 1.5 s later the 2 s window (8) still allows one more.
        let later = t0 + Duration::from_millis(1500);
        assert!(limiter.admit(&limits, &[conv("a:1")], later).is_ok());
        let refused = limiter.admit(&limits, &[conv("a:1")], later);
        let retry = refused
            .map(|_| Duration::ZERO)
            .unwrap_or_else(|r| r.retry_after);
        assert_eq!(retry, Duration::from_millis(500));

        let report = limiter.report(&limits);
        let key = report.key(LimitScope::TeamsConversation, "a:1");
        assert_eq!(key.map(|k| (k.accepted, k.violations)), Some((8, 14)));
        assert_eq!(
            key.and_then(|k| k.window(1000)).map(|w| w.max_observed),
            Some(7)
        );
        assert_eq!(
            key.and_then(|k| k.window(2000)).map(|w| w.max_observed),
            Some(8)
        );
    }

    #[test]
    fn weights_overrides_and_observe_only() {
        let limiter = Limiter::default();
        let mut limits = LimitKnobs::real();
        limits
            .sms_senders
            .insert("+1555".into(), vec![Window::new(3, 60_000)]);
        let t0 = Instant::now();
        let sms = |w| Demand::new(LimitScope::SmsSender, "+1555", w);
        assert!(limiter.admit(&limits, &[sms(2)], t0).is_ok());
        assert!(limiter.admit(&limits, &[sms(2)], t0).is_err());
        assert!(limiter.admit(&limits, &[sms(1)], t0).is_ok());
        // Oversized but into an empty window: admitted on the default 1/s.
        let other = Demand::new(LimitScope::SmsSender, "+1666", 3);
        assert!(limiter.admit(&limits, &[other], t0).is_ok());

        limits.enabled = false;
        for _ in 0..10 {
            assert!(limiter.admit(&limits, &[conv("a:2")], t0).is_ok());
        }
        let report = limiter.report(&limits);
        let key = report.key(LimitScope::TeamsConversation, "a:2");
        assert_eq!(key.map(|k| k.violations), Some(0));
        assert_eq!(
            key.and_then(|k| k.window(1000)).map(|w| w.max_observed),
            Some(10)
        );
        let sender = report.key(LimitScope::SmsSender, "+1555");
        assert_eq!(sender.map(|k| (k.accepted, k.violations)), Some((3, 1)));
    }

    /// The running sums agree with counting the timestamps, across config changes too.
    #[test]
    fn running_sums_match_a_plain_count() {
        use rand::Rng;
        let mut rng = rand::rng();
        let mut state = KeyState::default();
        let mut all: Vec<(Instant, u32)> = Vec::new();
        let t0 = Instant::now();
        let mut now = t0;
        for step in 0..2_000 {
            now += Duration::from_millis(rng.random_range(0..40));
            let units = rng.random_range(1..4);
            // Window sets change midway, as a knob update would.
            let windows: &[u64] = if step < 1_000 {
                &[100, 1_000]
            } else {
                &[250, 1_000]
            };
            let longest = windows.iter().copied().max().unwrap_or(0);
            state.prune(now, Duration::from_millis(longest));
            state.push(now, units);
            all.push((now, units));
            for &w in windows {
                let length = Duration::from_millis(w);
                let naive: u64 = all
                    .iter()
                    .filter(|(at, _)| now.saturating_duration_since(*at) < length)
                    .map(|&(_, u)| u64::from(u))
                    .sum();
                assert_eq!(state.used(now, w), naive, "step {step} window {w}");
            }
        }
        assert!(state.recent.len() < all.len());
    }

    #[test]
    fn all_or_nothing_across_keys_and_pruned() {
        let limiter = Limiter::default();
        let mut limits = LimitKnobs::real();
        limits.teams_per_app = vec![Window::new(2, 1000)];
        let t0 = Instant::now();
        let both = |c: &str| [conv(c), Demand::new(LimitScope::TeamsApp, "app", 1)];
        assert!(limiter.admit(&limits, &both("a:1"), t0).is_ok());
        assert!(limiter.admit(&limits, &both("a:2"), t0).is_ok());
        let refused = limiter.admit(&limits, &both("a:3"), t0);
        assert!(matches!(
            refused,
            Err(Refusal {
                scope: LimitScope::TeamsApp,
                ..
            })
        ));
        let report = limiter.report(&limits);
        // The conversation passed its own check but was not charged for the refused request.
        assert_eq!(
            report
                .key(LimitScope::TeamsConversation, "a:3")
                .map(|k| k.accepted),
            Some(0)
        );
        // Timestamps older than the longest window (1 h) are forgotten.
        let much_later = t0 + Duration::from_secs(3601);
        assert!(limiter.admit(&limits, &both("a:1"), much_later).is_ok());
        let keys = limiter.lock();
        let state = keys.get(&(LimitScope::TeamsConversation, "a:1".to_owned()));
        assert_eq!(state.map(|s| s.recent.len()), Some(1));
    }
}
