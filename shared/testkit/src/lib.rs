//! Test helpers, after zero2prod's `spawn_app()`: every test gets its own database (cloned
//! from a migrated template), its own queue namespace and Redis key prefix, and the
//! provider simulator, so tests run in parallel against the one set of real servers that
//! `infra/up.sh` started.

pub mod faults;
mod fleet;
pub mod private_servers;
mod process;
mod servers;
mod test_env;

pub use fleet::{
    SenderTuning, Service, TestApp, SEGMENT_UPLOAD_MAX_BYTES, SEND_JOBS_PER_MESSAGE, TEAMS_APP_ID,
    TRACKING_SECRET, TWILIO_AUTH_TOKEN, TWILIO_STATUS_PATH, UNSUBSCRIBE_SECRET,
};
pub use private_servers::{PrivatePostgres, PrivateRabbitMq, PrivateRedis};
pub use process::{soak_report, ServiceProcess};
pub use servers::Servers;
pub use test_env::TestEnv;

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it yields a value or `timeout` passes. For conditions that live in
/// another process or the database, where no notification exists; the deadline makes a
/// stuck system fail the test instead of hanging it.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
