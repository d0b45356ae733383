//! Control plane for tests and demos: inspect and reset what was recorded, turn knobs, read
//! rate-limit counters.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::http::{json_response, AppState};
use super::knobs::KnobSet;
use super::limits::LimitsReport;
use super::recorder::{Channel, Receipt, ReceivedMessage, SimStats};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/messages", get(messages))
        .route("/_sim/receipts", get(receipts))
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset", post(reset))
        .route(
            "/_sim/knobs",
            get(get_knobs).put(put_knobs).delete(reset_knobs),
        )
        .route("/_sim/limits", get(limits))
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
    let recorder = &state.gate.recorder;
    let messages: Vec<ReceivedMessage> = match q.channel {
        Some(channel) => recorder.messages_for(channel),
        None => recorder.messages(),
    };
    Json(messages).into_response()
}

/// `GET /_sim/receipts`: channel, key, time and duplicate flag of every accepted message.
async fn receipts(State(state): State<AppState>) -> Json<Vec<Receipt>> {
    Json(state.gate.recorder.receipts())
}

async fn stats(State(state): State<AppState>) -> Json<SimStats> {
    Json(state.gate.recorder.stats())
}

/// Clears recorded messages, seen keys, refusal counters and rate-limit windows; issued Teams
/// tokens, conversations and knobs stay, so a sender's cached token survives a reset between
/// test cases.
async fn reset(State(state): State<AppState>) -> StatusCode {
    state.gate.recorder.reset();
    state.gate.limiter.reset();
    tracing::info!("recorder reset");
    StatusCode::NO_CONTENT
}

async fn get_knobs(State(state): State<AppState>) -> Json<KnobSet> {
    Json(state.gate.knobs.get())
}

/// `PUT /_sim/knobs`: a JSON merge patch over the current knobs (fields not given keep their
/// value, `null` resets one); answers with the knobs now in force.
async fn put_knobs(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let patch = match body {
        Ok(Json(patch)) => patch,
        Err(rejection) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": rejection.body_text() }),
            )
        }
    };
    match state.gate.knobs.patch(&patch) {
        Ok(knobs) => {
            tracing::info!(?knobs, "knobs changed");
            Json(knobs).into_response()
        }
        Err(e) => json_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": e.to_string() }),
        ),
    }
}

/// `DELETE /_sim/knobs`: back to the knobs the simulator started with.
async fn reset_knobs(State(state): State<AppState>) -> Json<KnobSet> {
    tracing::info!("knobs reset");
    Json(state.gate.knobs.reset())
}

async fn limits(State(state): State<AppState>) -> Json<LimitsReport> {
    Json(state.gate.limits())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
