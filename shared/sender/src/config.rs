use pushfleet_config::{env_duration_ms, env_or, CommonConfig, ConfigError};
use pushfleet_domain::Channel;
use pushfleet_ratelimit::Quota;
use std::time::Duration;

use crate::RetryPolicy;

/// Tuning shared by every sender, from the environment.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub common: CommonConfig,
    /// `SENDER_PREFETCH`: unacknowledged messages the broker hands this replica. A message
    /// carries one job or a batch of up to `SEND_JOBS_PER_MESSAGE`.
    pub prefetch: u16,
    /// `SENDER_CONCURRENCY`: jobs processed at once (each holds its slot until its outcome
    /// is recorded), and messages handled at once.
    pub concurrency: usize,
    /// `SENDER_PROVIDER_CONCURRENCY`: provider calls in flight at once, at most. Most of a
    /// job's slot time is spent waiting for its outcome to commit; a provider call over
    /// HTTP/1.1 holds a connection of its own (buffers and all), so this bounds the
    /// connections, and the memory, separately from the job slots.
    pub provider_concurrency: usize,
    /// `RATE_LIMIT_PER_SECOND` / `RATE_LIMIT_BURST`: the fleet-wide quota (0 = none).
    pub quota: Option<Quota>,
    /// `RATE_LIMIT_KEY`: the account the quota belongs to (replicas sharing it share the quota).
    pub rate_limit_key: String,
    /// `RATE_LIMIT_FALLBACK_SHARE`: the part of the quota one replica uses alone while Redis
    /// is unreachable (0.25 keeps up to four replicas within the quota).
    pub fallback_share: f64,
    pub retry: RetryPolicy,
    /// `OUTCOME_BATCH` / `OUTCOME_FLUSH_MS`: outcomes are written in batches of this size,
    /// or after this long, whichever comes first.
    pub outcome_batch: usize,
    pub outcome_flush: Duration,
    /// `SENDER_OPT_OUT_HORIZON_HOURS` (default 168): how far back a sender reads opt-outs and
    /// deactivations when it starts or its listener reconnects. A job published before an
    /// older opt-out was skipped when published, so only jobs that wait in the broker longer
    /// than this could miss one.
    pub opt_out_horizon: Duration,
    /// `TRACKING_BASE_URL` / `TRACKING_SECRET`: where tracked links lead; `None`: links are
    /// sent as they are.
    pub tracking: Option<crate::LinkTracking>,
}

impl SenderConfig {
    /// The quota a sender uses unless `RATE_LIMIT_PER_SECOND` / `RATE_LIMIT_BURST` say
    /// otherwise, as (per second, burst).
    pub fn default_quota(channel: Channel) -> (f64, u32) {
        // GCRA lets `burst + rate * T` leave in any window T: the defaults keep that under
        // the provider's own limit for T = 1 s. The provider counts arrivals, though, and
        // calls that left on schedule arrive closer together when their latency varies: J
        // of spread adds up to `rate * J` more to the busiest second it sees.
        match channel {
            // Bot Framework: 50 requests/s per app per tenant, in any sliding second. No burst
            // (1), so the fleet's slots are 1/44 s apart and at most 45 leave in any second;
            // the other 5 absorb about 5/44 s = 114 ms of latency spread. 45/s with a burst
            // of 4 let 49 leave and left 1 for jitter: the simulator counted up to 52 in a
            // second with a 100 ms spread, and 47 to 48 with this quota (tests/limits.rs).
            Channel::Teams => (44.0, 1),
            // A short code (100 segments/s); a long code needs RATE_LIMIT_PER_SECOND=1.
            Channel::Sms => (90.0, 5),
            Channel::Email => (500.0, 10),
        }
    }

    pub fn from_env(channel: Channel, default_admin_port: u16) -> Result<Self, ConfigError> {
        let (default_rate, default_burst) = Self::default_quota(channel);
        let per_second: f64 = env_or("RATE_LIMIT_PER_SECOND", default_rate)?;
        let burst: u32 = env_or("RATE_LIMIT_BURST", default_burst)?;
        Ok(Self {
            common: CommonConfig::from_env(default_admin_port)?,
            // Enough single-job messages (retries) to fill every job slot; batches then put
            // up to 64 x SEND_JOBS_PER_MESSAGE jobs in hand, where 200 would be ten thousand.
            prefetch: env_or("SENDER_PREFETCH", 16)?,
            concurrency: env_or("SENDER_CONCURRENCY", 256)?,
            provider_concurrency: env_or("SENDER_PROVIDER_CONCURRENCY", 64)?,
            quota: Quota::new(per_second, burst),
            rate_limit_key: pushfleet_config::env_string(
                "RATE_LIMIT_KEY",
                &format!("{channel}:default"),
            ),
            fallback_share: env_or("RATE_LIMIT_FALLBACK_SHARE", 0.25)?,
            retry: RetryPolicy {
                max_attempts: env_or("SENDER_MAX_ATTEMPTS", 5)?,
                base_backoff: env_duration_ms("RETRY_BASE_MS", Duration::from_secs(1))?,
            },
            outcome_batch: env_or("OUTCOME_BATCH", 500)?,
            outcome_flush: env_duration_ms("OUTCOME_FLUSH_MS", Duration::from_millis(20))?,
            opt_out_horizon: Duration::from_secs(
                env_or::<u64>("SENDER_OPT_OUT_HORIZON_HOURS", 168)?.saturating_mul(3600),
            ),
            tracking: crate::LinkTracking::from_env()?,
        })
    }
}
