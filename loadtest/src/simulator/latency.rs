//! The simulated provider delay, sampled once per provider call.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The 99th percentile of the standard normal distribution: `p99 = p50 * exp(Z_99 * sigma)`.
const Z_99: f64 = 2.326_347_874_040_841;
/// A log-normal tail is unbounded; one absurd draw must not hang a test for minutes.
const MAX_DELAY_MS: f64 = 60_000.0;

/// Simulated provider delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Latency {
    /// A fixed part plus uniform jitter in `0..=jitter_ms`.
    Fixed { fixed_ms: u64, jitter_ms: u64 },
    /// Log-normal with the given median and 99th percentile, like real provider latencies
    /// (mostly quick, with a long tail).
    LogNormal { p50_ms: u64, p99_ms: u64 },
}

impl Default for Latency {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl Latency {
    pub fn new(fixed_ms: u64, jitter_ms: u64) -> Self {
        Self::Fixed {
            fixed_ms,
            jitter_ms,
        }
    }

    pub fn log_normal(p50_ms: u64, p99_ms: u64) -> Self {
        Self::LogNormal { p50_ms, p99_ms }
    }

    /// Why the distribution cannot be sampled, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        match *self {
            Self::Fixed { .. } => None,
            Self::LogNormal { p50_ms: 0, .. } => Some("log_normal latency needs p50_ms > 0"),
            Self::LogNormal { p50_ms, p99_ms } if p99_ms < p50_ms => {
                Some("log_normal latency needs p99_ms >= p50_ms")
            }
            Self::LogNormal { .. } => None,
        }
    }

    /// One delay drawn from the distribution.
    pub fn sample(&self) -> Duration {
        match *self {
            Self::Fixed {
                fixed_ms,
                jitter_ms,
            } => {
                let jitter = if jitter_ms == 0 {
                    0
                } else {
                    rand::rng().random_range(0..=jitter_ms)
                };
                Duration::from_millis(fixed_ms.saturating_add(jitter))
            }
            Self::LogNormal { p50_ms, p99_ms } => {
                if p50_ms == 0 {
                    return Duration::ZERO;
                }
                let mu = (p50_ms as f64).ln();
                let sigma = ((p99_ms.max(p50_ms) as f64).ln() - mu) / Z_99;
                let ms = (mu + sigma * standard_normal()).exp().min(MAX_DELAY_MS);
                Duration::from_secs_f64(ms / 1000.0)
            }
        }
    }

    /// Sleeps for one sampled delay; returns at once when the knob is off.
    pub async fn apply(&self) {
        let delay = self.sample();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// Box-Muller: one standard normal draw from two uniform ones.
fn standard_normal() -> f64 {
    let mut rng = rand::rng();
    // `1 - u` is in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_sample_stays_within_bounds() {
        let knob = Latency::new(10, 5);
        for _ in 0..100 {
            let d = knob.sample();
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15));
        }
        assert_eq!(Latency::default().sample(), Duration::ZERO);
    }

    #[test]
    fn log_normal_percentiles_are_close() {
        let knob = Latency::log_normal(20, 200);
        let mut samples: Vec<Duration> = (0..20_000).map(|_| knob.sample()).collect();
        samples.sort();
        let p50 = samples[samples.len() / 2].as_secs_f64() * 1000.0;
        let p99 = samples[samples.len() * 99 / 100].as_secs_f64() * 1000.0;
        // Loose bounds: 20k draws put the empirical percentiles well inside these.
        assert!((17.0..23.0).contains(&p50), "p50 {p50}");
        assert!((150.0..260.0).contains(&p99), "p99 {p99}");
        let constant = Latency::log_normal(5, 5).sample().as_secs_f64();
        assert!((constant - 0.005).abs() < 1e-6, "{constant}");
        assert!(Latency::log_normal(0, 5).problem().is_some());
        assert!(Latency::log_normal(6, 5).problem().is_some());
    }
}
