//! Click and open tracking on the public listener: the tokens the senders put in messages
//! are opened here (`routes/tracking.rs`), their links found in memory (`link_cache`), and
//! the events written to Postgres in batches behind the answer (`recorder`).

mod link_cache;
mod recorder;
mod scanners;

pub use link_cache::{CampaignLinks, LinkCache, LinkCacheError};
pub use recorder::Recorder;
pub use scanners::scanner_user_agent;

use pushfleet_domain::TrackingKey;

/// What the redirect and the pixel share.
pub struct Tracking {
    pub key: TrackingKey,
    pub links: LinkCache,
    pub recorder: Recorder,
}
