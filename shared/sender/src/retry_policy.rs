use std::time::Duration;

/// How transient failures are retried: exponential backoff with full jitter, capped attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_backoff: Duration,
}

impl RetryPolicy {
    /// True when `attempt` (1-based) was the last one allowed.
    pub fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }

    /// The wait before attempt `attempt + 1`: base * 2^(attempt-1), jittered into
    /// [half, full] so that a burst of failures does not come back as one burst, and never
    /// shorter than the provider's Retry-After.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let jittered = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        jittered.max(retry_after.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_and_respects_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_secs(1),
        };
        assert_eq!(p.backoff(1, None, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(3, None, 1.0), Duration::from_secs(4));
        assert_eq!(p.backoff(3, None, 0.0), Duration::from_secs(2));
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(30)), 1.0),
            Duration::from_secs(30)
        );
        assert!(!p.exhausted(4));
        assert!(p.exhausted(5));
    }
}
