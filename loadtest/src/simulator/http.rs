//! The HTTP listener: routing, shared state and helpers used by every provider module.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::recorder::Recorder;
use super::{control, sendgrid, teams, twilio};

/// SendGrid accepts up to 1,000 recipients and large HTML bodies; axum's 2 MB default is too
/// small for that.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub(crate) struct AppState {
    pub cfg: Arc<SimConfig>,
    pub recorder: Arc<Recorder>,
    pub teams: Arc<teams::TeamsState>,
}

impl AppState {
    pub fn new(cfg: SimConfig, recorder: Arc<Recorder>) -> Self {
        Self {
            cfg: Arc::new(cfg),
            recorder,
            teams: Arc::new(teams::TeamsState::default()),
        }
    }
}

pub(crate) fn router(state: AppState) -> Router {
    let providers = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(teams::token))
        .route("/v3/conversations", post(teams::create_conversation))
        .route(
            "/v3/conversations/{conversation_id}/activities",
            post(teams::send_activity),
        )
        .route("/v1.0/users/{id}/presence", get(teams::presence))
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(twilio::send_message),
        )
        .route("/v3/mail/send", post(sendgrid::mail_send))
        // Only provider calls pay the simulated delay; the control plane answers at once.
        .route_layer(middleware::from_fn_with_state(state.clone(), latency));

    Router::new()
        .merge(providers)
        .merge(control::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

async fn latency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "provider call");
    state.cfg.latency.apply().await;
    next.run(req).await
}

// A JSON 404 names the path, which is what one needs when a sender is pointed at a wrong URL.
async fn not_found(uri: Uri) -> Response {
    tracing::warn!(path = %uri.path(), "no simulated endpoint");
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "not_found", "path": uri.path() })),
    )
        .into_response()
}

/// The `Idempotency-Key` header, trimmed; absent or empty means none.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The credentials after `Authorization: <scheme> `, scheme matched case-insensitively.
pub(crate) fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|creds| !creds.is_empty())
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}
