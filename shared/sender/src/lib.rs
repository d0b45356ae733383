//! The loop all three senders share: consume a send job, take a fleet-wide rate-limit slot,
//! render, call the provider, record the outcome, ack. The senders differ only in their
//! [`Provider`].
//!
//! Crash safety: the ack comes after the outcome is committed. A sender killed at any point
//! leaves the job unacked; the broker redelivers it, and the redelivered job checks the
//! recorded outcome before sending again.

mod batch;
pub mod campaign_watch;
mod config;
mod handler;
pub mod http_errors;
mod in_flight;
mod link_tracking;
mod opt_out_watch;
mod outcome_recorder;
mod presence_retry;
mod provider;
mod retry_policy;
mod second_copy;
mod service;
mod template_cache;

pub use config::SenderConfig;
pub use link_tracking::LinkTracking;
pub use provider::{Provider, ProviderError, Receipt};
pub use retry_policy::RetryPolicy;
pub use service::{run_sender, run_sender_with_checks};
