//! Control plane for tests and demos: inspect and reset what was recorded.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::http::{json_response, AppState};
use super::recorder::{Channel, ReceivedMessage, SimStats};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/messages", get(messages))
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset", post(reset))
        .route("/healthz", get(healthz))
}

#[derive(Deserialize)]
struct MessagesQuery {
    channel: Option<Channel>,
}

/// `GET /_sim/messages[?channel=email|teams|sms]`
async fn messages(
    State(state): State<AppState>,
    query: Result<Query<MessagesQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return json_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": "channel must be one of email, teams, sms" }),
        );
    };
    let messages: Vec<ReceivedMessage> = match q.channel {
        Some(channel) => state.recorder.messages_for(channel),
        None => state.recorder.messages(),
    };
    Json(messages).into_response()
}

async fn stats(State(state): State<AppState>) -> Json<SimStats> {
    Json(state.recorder.stats())
}

/// Clears recorded messages and seen keys; issued Teams tokens and conversations stay valid so
/// a sender's cached token survives a reset between test cases.
async fn reset(State(state): State<AppState>) -> StatusCode {
    state.recorder.reset();
    tracing::info!("recorder reset");
    StatusCode::NO_CONTENT
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
