//! What every service runs besides its own work: JSON logs, Prometheus metrics, the admin
//! endpoints (`/healthz`, `/readyz`, `/metrics`) and the shutdown signal.

mod admin;
mod logging;
mod metrics_recorder;
mod shutdown;

pub use admin::{serve_admin, Readiness, ReadinessCheck};
pub use logging::init_logging;
pub use metrics_recorder::prometheus_handle;
pub use shutdown::shutdown_on_signals;

mod supervise;
pub use supervise::supervise;
