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
        (per_second > 0.0).then_some(Self {
            per_second,
            burst: burst.max(1),
        })
    }

    fn interval_us(&self) -> f64 {
        1_000_000.0 / self.per_second
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

/// GCRA with reservations: each call books the next free slot in Redis (one round trip,
/// atomic in Lua, using Redis's clock so replicas' clocks do not matter) and returns how long
/// to wait for it. Booked slots are never handed out twice, so the fleet-wide rate holds
/// however many replicas call at once.
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * n
local wait = new_tat - tolerance - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return math.floor(wait)
"#;

#[derive(Clone)]
pub struct RateLimiter {
    conn: ConnectionManager,
    namespace: String,
    script: Script,
}

impl RateLimiter {
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            conn,
            namespace: namespace.to_owned(),
            script: Script::new(RESERVE),
        })
    }

    /// Reserves `n` slots under `key` and returns the wait before they may be used.
    pub async fn reserve(
        &self,
        key: &str,
        quota: Quota,
        n: u32,
    ) -> Result<Duration, RateLimitError> {
        let interval = quota.interval_us();
        // Up to `burst` slots may be taken at once: the burst tolerance of GCRA.
        let tolerance = interval * f64::from(quota.burst.saturating_sub(1));
        let mut conn = self.conn.clone();
        let wait_us: i64 = self
            .script
            .key(format!("{}:rl:{key}", self.namespace))
            .arg(interval)
            .arg(tolerance)
            .arg(n.max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(Duration::from_micros(wait_us.max(0) as u64))
    }

    /// Reserves one slot and sleeps until it comes.
    pub async fn acquire(&self, key: &str, quota: Quota) -> Result<(), RateLimitError> {
        let wait = self.reserve(key, quota, 1).await?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), RateLimitError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

impl RateLimiter {
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
