use redis::aio::ConnectionManager;
use redis::Script;
use std::time::Duration;

/// A quota: a sustained rate plus how many sends may go at once after a quiet period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: u32,
}

impl Quota {
    /// `None` when the rate is zero or negative: no limit.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second > 0.0 && per_second.is_finite()).then_some(Self {
            per_second,
            burst: burst.max(1),
        })
    }

    /// Time between two slots.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }

    /// The same quota scaled, e.g. to a replica's share.
    pub fn scaled(&self, factor: f64) -> Option<Self> {
        Quota::new(
            self.per_second * factor,
            ((self.burst as f64) * factor).floor() as u32,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// `n` slots booked; the first may be used after `first_in`, the next ones one interval
    /// apart.
    Granted { first_in: Duration },
    /// The key is paused (a provider said 429) for this long more; nothing was booked.
    Paused { remaining: Duration },
}

/// GCRA with reservations, atomic in Lua and on Redis's clock (replicas' clocks do not
/// matter). With tat = max(TAT, now), slot k (0-based) of a reservation conforms at
/// tat + k*interval - tolerance, and TAT moves on by n intervals; booked slots are never
/// handed out twice, so however many replicas call at once, the slots they use conform to
/// one GCRA schedule: at most `burst` at once, `burst + rate * t` in any window t.
const RESERVE: &str = r#"
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return {0, pause} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local first = tat - tolerance - now
if first < 0 then first = 0 end
local new_tat = tat + interval * n
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {math.floor(first), 0}
"#;

/// Extends a pause, never shortens it.
const PAUSE: &str = r#"
local cur = redis.call('PTTL', KEYS[1])
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"#;

#[derive(Clone)]
pub struct RateLimiter {
    conn: ConnectionManager,
    namespace: String,
    reserve_script: Script,
    pause_script: Script,
}

impl RateLimiter {
    /// A limiter that connects on first use and reconnects after errors. It does not wait
    /// for Redis: a sender must start and run on its fallback share while Redis is down.
    /// Fails only on an invalid URL.
    pub fn new(url: &str, namespace: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            namespace: namespace.to_owned(),
            reserve_script: Script::new(RESERVE),
            pause_script: Script::new(PAUSE),
        })
    }

    fn keys(&self, key: &str) -> (String, String) {
        (
            format!("{}:rl:{key}", self.namespace),
            format!("{}:pause:{key}", self.namespace),
        )
    }

    /// Books `n` consecutive slots under `key`, unless the key is paused.
    pub async fn reserve(
        &self,
        key: &str,
        quota: Quota,
        n: u32,
    ) -> Result<Reservation, RateLimitError> {
        let interval_us = 1_000_000.0 / quota.per_second;
        // Up to `burst` slots may conform at once: GCRA's burst tolerance.
        let tolerance_us = interval_us * f64::from(quota.burst.saturating_sub(1));
        let (rl_key, pause_key) = self.keys(key);
        let mut conn = self.conn.clone();
        let (first_us, paused_ms): (i64, i64) = self
            .reserve_script
            .key(rl_key)
            .key(pause_key)
            .arg(interval_us)
            .arg(tolerance_us)
            .arg(n.max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(if paused_ms > 0 {
            Reservation::Paused {
                remaining: Duration::from_millis(paused_ms as u64),
            }
        } else {
            Reservation::Granted {
                first_in: Duration::from_micros(first_us.max(0) as u64),
            }
        })
    }

    /// Pauses `key` fleet-wide for at least `duration` (a 429's Retry-After).
    pub async fn pause(&self, key: &str, duration: Duration) -> Result<(), RateLimitError> {
        let (_, pause_key) = self.keys(key);
        let mut conn = self.conn.clone();
        let _: i64 = self
            .pause_script
            .key(pause_key)
            .arg(duration.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Books one slot and sleeps until it comes (or the pause ends and it can book one).
    pub async fn acquire(&self, key: &str, quota: Quota) -> Result<(), RateLimitError> {
        loop {
            match self.reserve(key, quota, 1).await? {
                Reservation::Granted { first_in } => {
                    if !first_in.is_zero() {
                        tokio::time::sleep(first_in).await;
                    }
                    return Ok(());
                }
                Reservation::Paused { remaining } => tokio::time::sleep(remaining).await,
            }
        }
    }

    pub async fn ping(&self) -> Result<(), RateLimitError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// A `/readyz` check for Redis.
    pub fn readiness_check(
        &self,
    ) -> impl Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static
    {
        let limiter = self.clone();
        move || {
            let limiter = limiter.clone();
            Box::pin(async move { limiter.ping().await.map_err(|e| e.to_string()) })
        }
    }
}
