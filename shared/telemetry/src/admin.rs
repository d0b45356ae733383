use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// One dependency check for `/readyz`: a name, an async probe, and whether the service can
/// work without that dependency (then a failure makes it degraded, not unready).
#[derive(Clone)]
pub struct ReadinessCheck {
    name: &'static str,
    probe: Probe,
    required: bool,
}

/// The checks behind `/readyz`: ready (200) when every required check passes, `degraded`
/// (still 200) when only optional ones fail, `not ready` (503) otherwise.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<ReadinessCheck>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_check<F>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        self.checks.push(ReadinessCheck {
            name,
            probe: Arc::new(check),
            required: true,
        });
        self
    }

    /// A dependency the service works without, in a reduced way (e.g. a sender on its
    /// fallback share of the rate limit while Redis is down): its failure reports
    /// `degraded: ...` but keeps the service ready.
    pub fn with_optional_check<F>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        self.checks.push(ReadinessCheck {
            name,
            probe: Arc::new(check),
            required: false,
        });
        self
    }

    /// Runs every check: (ready, degraded, report).
    pub async fn run(&self) -> (bool, bool, serde_json::Value) {
        let (mut ready, mut degraded) = (true, false);
        let mut report = serde_json::Map::new();
        for check in &self.checks {
            let status = match (check.probe)().await {
                Ok(()) => "ok".to_owned(),
                Err(e) if check.required => {
                    ready = false;
                    e
                }
                Err(e) => {
                    degraded = true;
                    format!("degraded: {e}")
                }
            };
            report.insert(check.name.to_owned(), serde_json::Value::String(status));
        }
        (ready, degraded, serde_json::Value::Object(report))
    }
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let (ok, degraded, checks) = readiness.run().await;
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = match (ok, degraded) {
        (false, _) => "not ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    (
        code,
        Json(serde_json::json!({"status": status, "checks": checks})),
    )
}

async fn metrics() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::prometheus_handle().render(),
    )
}

/// Serves the admin endpoints until `shutdown` fires. Returns the bound address (useful with
/// port 0 in tests) and the server task.
pub async fn serve_admin(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let _ = crate::prometheus_handle();
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    tracing::info!(%bound, "admin endpoints listening");
    Ok((bound, task))
}
