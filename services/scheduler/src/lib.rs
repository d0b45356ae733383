//! The scheduler: finds due work in Postgres and hands it to the evaluator through the
//! outbox. Any number of replicas may run: claims use `FOR UPDATE SKIP LOCKED`, so each due
//! campaign fires once, and the outbox relay publishes each message at least once.

mod config;
mod tick;

pub use config::SchedulerConfig;
pub use tick::run;
