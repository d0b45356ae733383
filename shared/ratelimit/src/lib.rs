//! Fleet-wide rate limits in Redis: every replica of a sender reserves its send slots from
//! the same GCRA state, so N replicas together stay within one provider quota.

mod gcra;

pub use gcra::{Quota, RateLimitError, RateLimiter};
