//! The bot's messaging endpoint: activities the Bot Framework posts when a Teams user acts.
//! An Adaptive Card `Action.Submit` button sends a message activity whose `value` is the
//! button's data; ours say `{"action": "segment_opt_in" | "segment_opt_out", "segment_id"}`
//! or `{"action": "unsubscribe" | "subscribe"}` (the Teams channel as a whole).

use super::AppState;
use crate::api_error::ErrorBody;
use crate::bot_auth::BotAuthError;
use crate::extract::ApiBytes;
use crate::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use pushfleet_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// The parts of an activity the endpoint reads.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub service_url: Option<String>,
    pub channel_id: Option<String>,
    pub from: Option<ChannelAccount>,
    /// The submitted data of an Adaptive Card button.
    #[schema(value_type = Object)]
    pub value: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAccount {
    pub id: Option<String>,
    pub aad_object_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ActivityResult {
    /// opted_in, opted_out, unsubscribed, subscribed, unknown_user or ignored.
    pub result: String,
}

fn unauthorized(e: BotAuthError) -> ApiError {
    if let BotAuthError::KeysUnavailable(_) = e {
        tracing::error!(error = %e, "cannot check Bot Framework tokens");
        return ApiError::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "auth_unavailable",
            message: "cannot check the token now; retry later".into(),
        };
    }
    tracing::warn!(error = %e, "activity refused");
    ApiError::Status {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthorized",
        message: e.to_string(),
    }
}

/// Receives a Bot Framework activity. The `Authorization: Bearer` JWT must be the Bot
/// Framework's, for this bot, with a `serviceurl` claim equal to the activity's
/// `serviceUrl`; otherwise 401.
#[utoipa::path(post, path = "/v1/teams/messages", request_body = Activity,
    responses((status = 200, body = ActivityResult),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "unknown segment"),
              (status = 503, body = ErrorBody, description = "signing keys unavailable")))]
#[tracing::instrument(skip_all, fields(action))]
pub async fn teams_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Json<ActivityResult>, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let claims = state
        .bot_auth
        .verify(authorization, now)
        .await
        .map_err(unauthorized)?;
    let activity: Activity = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: format!("not an activity: {e}"),
    })?;
    if claims.service_url.is_none() || claims.service_url != activity.service_url {
        return Err(unauthorized(BotAuthError::Malformed(
            "the token's serviceurl is not the activity's serviceUrl",
        )));
    }
    if let (Some(endorsed), Some(channel)) = (&claims.endorsements, &activity.channel_id) {
        if !endorsed.iter().any(|c| c == channel) {
            return Err(unauthorized(BotAuthError::Malformed(
                "the signing key does not speak for this channel",
            )));
        }
    }
    let Some(action) = button_data(&activity) else {
        return Ok(result("ignored"));
    };
    let name = action
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    tracing::Span::current().record("action", name);
    let from = activity.from.as_ref();
    let user_ids: Vec<String> = from
        .into_iter()
        .flat_map(|f| [f.aad_object_id.clone(), f.id.clone()])
        .flatten()
        .collect();
    let segment_id = || -> Result<Uuid, ApiError> {
        action
            .get("segment_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::invalid("value.segment_id", "must be a segment id"))
    };
    let answer = match name {
        "segment_opt_in" | "segment_opt_out" => {
            let segment_id = segment_id()?;
            state.store.get_segment(segment_id).await?;
            let Some(person) = person(&state, &user_ids).await? else {
                return Ok(result("unknown_user"));
            };
            if name == "segment_opt_in" {
                state.store.opt_in_to_segment(segment_id, person).await?;
                "opted_in"
            } else {
                state
                    .store
                    .opt_out_of_segment(segment_id, person, "teams_button")
                    .await?;
                "opted_out"
            }
        }
        "unsubscribe" | "subscribe" => {
            let Some(person) = person(&state, &user_ids).await? else {
                return Ok(result("unknown_user"));
            };
            if name == "unsubscribe" {
                state
                    .store
                    .opt_out_of_channel(person, Channel::Teams, "teams_button")
                    .await?;
                "unsubscribed"
            } else {
                state
                    .store
                    .opt_in_to_channel(person, Channel::Teams)
                    .await?;
                "subscribed"
            }
        }
        _ => "ignored",
    };
    metrics::counter!("pushfleet_opt_changes_total", "channel" => "teams", "result" => answer)
        .increment(1);
    tracing::info!(result = answer, "activity handled");
    Ok(result(answer))
}

fn result(r: &str) -> Json<ActivityResult> {
    Json(ActivityResult {
        result: r.to_owned(),
    })
}

/// The button's data: `value` of a message (Action.Submit), or `value.action.data` of an
/// invoke (Action.Execute).
fn button_data(activity: &Activity) -> Option<&serde_json::Map<String, Value>> {
    let value = activity.value.as_ref()?;
    let data = match activity.kind.as_deref() {
        Some("invoke") => value.get("action").and_then(|a| a.get("data"))?,
        _ => value,
    };
    data.as_object().filter(|d| d.contains_key("action"))
}

async fn person(state: &AppState, user_ids: &[String]) -> Result<Option<Uuid>, ApiError> {
    if user_ids.is_empty() {
        return Ok(None);
    }
    Ok(state.store.person_by_teams_user(user_ids).await?)
}
