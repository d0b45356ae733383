use crate::{Quota, RateLimiter, Reservation};
use governor::DefaultDirectRateLimiter;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a replica trusts that Redis is down before trying it again.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Slots booked in Redis and not yet used by this replica.
#[derive(Debug)]
struct Bank {
    next_slot: Instant,
    remaining: u32,
}

#[derive(Debug, Default)]
struct State {
    bank: Option<Bank>,
    paused_until: Option<Instant>,
    redis_down_until: Option<Instant>,
}

/// One quota as a sender sees it. `acquire(cost)` returns when `cost` slots may be used.
///
/// Slots are booked from Redis `batch` at a time (about 50 ms worth), and handed out here at
/// the time GCRA gave each, so batching saves round trips without letting a replica burst.
/// A booked slot left unused for longer than one interval is dropped, never used late in a
/// cluster. `governor` caps this process at the full quota as a second line of defence.
/// When Redis is unreachable, the replica keeps going at `fallback_share` of the quota
/// (e.g. 1/4 for up to four replicas), so the fleet neither stops nor exceeds the quota.
///
/// What this bounds is when calls *leave*: `burst + rate * T` in any window T. A provider
/// counts arrivals, and latency that varies from call to call squeezes calls that left on
/// schedule closer together, adding up to `rate * spread` in its busiest window; a quota
/// must leave room for that below the provider's limit (see the senders' defaults).
pub struct FleetLimiter {
    redis: RateLimiter,
    key: String,
    quota: Quota,
    batch: u32,
    state: Mutex<State>,
    smoothing: DefaultDirectRateLimiter,
    fallback: DefaultDirectRateLimiter,
    /// One task books a batch at a time; the others wait and use it, instead of each
    /// booking (and discarding) a batch of its own.
    reserving: tokio::sync::Mutex<()>,
}

fn governor_quota(q: Quota) -> governor::Quota {
    let burst = NonZeroU32::new(q.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    match governor::Quota::with_period(q.interval()) {
        Some(g) => g.allow_burst(burst),
        None => governor::Quota::per_second(NonZeroU32::MAX),
    }
}

impl FleetLimiter {
    pub fn new(
        redis: RateLimiter,
        key: impl Into<String>,
        quota: Quota,
        fallback_share: f64,
    ) -> Self {
        let batch = ((quota.per_second * 0.05).floor() as u32).clamp(1, 100);
        let fallback = quota
            .scaled(fallback_share.clamp(0.0, 1.0))
            .unwrap_or(Quota {
                // A share too small to express still lets one message through now and then.
                per_second: 0.1,
                burst: 1,
            });
        Self {
            redis,
            key: key.into(),
            quota,
            batch,
            state: Mutex::new(State::default()),
            reserving: tokio::sync::Mutex::new(()),
            smoothing: DefaultDirectRateLimiter::direct(governor_quota(quota)),
            fallback: DefaultDirectRateLimiter::direct(governor_quota(fallback)),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `cost` slots (e.g. SMS segments) may be used.
    pub async fn acquire(&self, cost: u32) {
        let cost = cost.max(1);
        let interval = self.quota.interval();
        loop {
            let now = Instant::now();
            // Decide under the lock, sleep outside it.
            let step = {
                let mut st = self.lock();
                if let Some(until) = st.paused_until.filter(|u| *u > now) {
                    Step::Sleep(until)
                } else if st.redis_down_until.is_some_and(|u| u > now) {
                    Step::Fallback
                } else {
                    // Slots more than one interval old are stale: drop them.
                    if st
                        .bank
                        .as_ref()
                        .is_some_and(|b| b.next_slot + interval < now)
                    {
                        st.bank = None;
                    }
                    match st.bank.as_mut().filter(|b| b.remaining >= cost) {
                        Some(bank) => {
                            let last = bank.next_slot + interval * (cost - 1);
                            bank.next_slot += interval * cost;
                            bank.remaining -= cost;
                            Step::UseAt(last)
                        }
                        None => Step::Reserve,
                    }
                }
            };
            match step {
                Step::Sleep(until) => tokio::time::sleep_until(until).await,
                Step::UseAt(at) => {
                    tokio::time::sleep_until(at).await;
                    // A 429 while this task slept voids its slot: wait for the pause instead.
                    if self.lock().paused_until.is_some_and(|u| u > Instant::now()) {
                        continue;
                    }
                    self.smooth(cost).await;
                    return;
                }
                Step::Fallback => {
                    self.take_fallback(cost).await;
                    return;
                }
                Step::Reserve => {
                    let _booking = self.reserving.lock().await;
                    // Someone may have booked a batch while this task waited for the lock.
                    let refilled = self.lock().bank.as_ref().is_some_and(|b| {
                        b.remaining >= cost && b.next_slot + interval >= Instant::now()
                    });
                    if refilled {
                        continue;
                    }
                    let n = self.batch.max(cost);
                    match self.redis.reserve(&self.key, self.quota, n).await {
                        Ok(Reservation::Granted { first_in }) => {
                            self.lock().bank = Some(Bank {
                                next_slot: Instant::now() + first_in,
                                remaining: n,
                            });
                        }
                        Ok(Reservation::Paused { remaining }) => {
                            self.lock().paused_until = Some(Instant::now() + remaining);
                        }
                        Err(e) => {
                            tracing::warn!(key = %self.key, error = %e,
                                "rate limiter cannot reach Redis; using the local fallback share");
                            metrics::counter!("pushfleet_ratelimit_fallback_total").increment(1);
                            self.lock().redis_down_until = Some(Instant::now() + REDIS_RETRY_AFTER);
                        }
                    }
                }
            }
        }
    }

    /// A provider answered 429: stop this key everywhere for at least `duration`.
    pub async fn pause(&self, duration: Duration) {
        // Bounded so that no provider answer can stop a key for days or overflow a clock.
        let duration = duration.min(Duration::from_secs(3600));
        {
            let mut st = self.lock();
            let until = Instant::now() + duration;
            if st.paused_until.is_none_or(|u| u < until) {
                st.paused_until = Some(until);
            }
            // Slots booked before the 429 are void.
            st.bank = None;
        }
        if let Err(e) = self.redis.pause(&self.key, duration).await {
            tracing::warn!(key = %self.key, error = %e, "cannot share the pause through Redis");
        }
    }

    async fn smooth(&self, cost: u32) {
        if let Some(n) = NonZeroU32::new(cost) {
            // Only fails when cost exceeds the burst, which the Redis schedule already spaced.
            let _ = self.smoothing.until_n_ready(n).await;
        }
    }

    async fn take_fallback(&self, cost: u32) {
        for _ in 0..cost {
            self.fallback.until_ready().await;
        }
    }
}

enum Step {
    Sleep(Instant),
    UseAt(Instant),
    Reserve,
    Fallback,
}
