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

/// One dependency check for `/readyz`: a name and an async probe.
pub type ReadinessCheck = (
    &'static str,
    Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
);

/// The checks behind `/readyz`; ready when every check passes.
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
        self.checks.push((name, Arc::new(check)));
        self
    }

    async fn run(&self) -> (bool, serde_json::Value) {
        let mut all_ok = true;
        let mut report = serde_json::Map::new();
        for (name, check) in &self.checks {
            let status = match check().await {
                Ok(()) => "ok".to_owned(),
                Err(e) => {
                    all_ok = false;
                    e
                }
            };
            report.insert((*name).to_owned(), serde_json::Value::String(status));
        }
        (all_ok, serde_json::Value::Object(report))
    }
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let (ok, checks) = readiness.run().await;
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if ok { "ready" } else { "not ready" };
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
