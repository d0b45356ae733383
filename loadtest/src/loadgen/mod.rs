//! The load generator: runs campaigns through the api against the provider simulator,
//! measures throughput, latency, CPU and memory, audits every delivery, and compares the
//! fleet with raw RabbitMQ on the same machine. `pushfleet-loadgen` is the command.

pub mod api_client;
pub mod args;
pub mod bench;
pub mod campaign_run;
pub mod ceiling;
pub mod fleet;
pub mod measure;
pub mod plot;
pub mod procstat;
pub mod progress;
pub mod report;

pub use api_client::{ApiClient, SpreadWindow};
pub use bench::{run_benchmark, BenchConfig};
pub use campaign_run::{run_campaign, CampaignSpec, ProcessUsage, RunResult, Target};
pub use ceiling::{CeilingResult, CeilingSpec};
pub use measure::{Analysis, Audit, LatencyStats};
pub use report::Report;
