//! Fleet-wide rate limits in Redis: every replica of a sender reserves its send slots from
//! the same GCRA state, so N replicas together stay within one provider quota.
//!
//! - [`RateLimiter`]: the Redis side: atomic reservations and fleet-wide pauses (Lua).
//! - [`FleetLimiter`]: what a sender holds per quota: reserves slots in batches (one round
//!   trip per batch), hands them out at their exact times, smooths with `governor`, obeys
//!   pauses, and falls back to a local share of the quota when Redis is unreachable.

mod fleet_limiter;
mod gcra;

pub use fleet_limiter::FleetLimiter;
pub use gcra::{Quota, RateLimitError, RateLimiter, Reservation};
