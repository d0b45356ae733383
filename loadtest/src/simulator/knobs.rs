//! Knobs that make the simulator behave like a slower, more realistic provider.

use std::time::Duration;

use rand::Rng;

/// Simulated provider delay: a fixed part plus uniform jitter in `0..=jitter_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub fixed_ms: u64,
    pub jitter_ms: u64,
}

impl Latency {
    pub fn new(fixed_ms: u64, jitter_ms: u64) -> Self {
        Self {
            fixed_ms,
            jitter_ms,
        }
    }

    /// One delay drawn from the distribution.
    pub fn sample(&self) -> Duration {
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=self.jitter_ms)
        };
        Duration::from_millis(self.fixed_ms.saturating_add(jitter))
    }

    /// Sleeps for one sampled delay; returns at once when the knob is off.
    pub async fn apply(&self) {
        let delay = self.sample();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_stays_within_bounds() {
        let knob = Latency::new(10, 5);
        for _ in 0..100 {
            let d = knob.sample();
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15));
        }
        assert_eq!(Latency::default().sample(), Duration::ZERO);
    }
}
