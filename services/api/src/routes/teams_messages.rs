//! The bot's messaging endpoint: activities the Bot Framework posts when a Teams user acts.
//! An Adaptive Card button's data says `{"action": "segment_opt_in" | "segment_opt_out",
//! "segment_id"}` or `{"action": "unsubscribe" | "subscribe"}` (the Teams channel as a
//! whole), or `{"action": "survey_answer", "survey_id", "campaign_id"}` with the survey's
//! inputs (`surveys::answers`).
//!
//! After a segment button the bot confirms what the user joined or left (seed 004). An
//! `Action.Execute` button sends an `invoke` activity, answered in the HTTP response with the
//! message Teams shows. An `Action.Submit` button sends a `message` activity, whose answer
//! must be posted to the conversation: the reply is queued through the outbox in the
//! transaction of the opt-in or opt-out, and the teams-sender posts it.

use super::AppState;
use crate::api_error::ErrorBody;
use crate::bot_auth::BotAuthError;
use crate::extract::ApiBytes;
use crate::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pushfleet_domain::bot_reply_text::{
    segment_reply, SegmentAction, SUBSCRIBED_REPLY, UNKNOWN_USER_REPLY, UNSUBSCRIBED_REPLY,
};
use pushfleet_domain::survey::SURVEY_ANSWER_ACTION;
use pushfleet_domain::{BotReplyJob, Channel, Text};
use pushfleet_queue::Topology;
use pushfleet_store::OwedReply;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// The parts of an activity the endpoint reads.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: Option<Text>,
    /// The activity's id: a reply to a message activity names it as `replyToId`.
    pub id: Option<Text>,
    pub service_url: Option<Text>,
    pub channel_id: Option<Text>,
    pub from: Option<ChannelAccount>,
    pub conversation: Option<ConversationAccount>,
    /// The submitted data of an Adaptive Card button.
    #[schema(value_type = Object)]
    pub value: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAccount {
    pub id: Option<Text>,
    pub aad_object_id: Option<Text>,
}

#[derive(Deserialize, ToSchema)]
pub struct ConversationAccount {
    pub id: Option<Text>,
}

/// The answer to a `message` activity (Action.Submit).
#[derive(Serialize, ToSchema)]
pub struct ActivityResult {
    /// opted_in, opted_out, unsubscribed, subscribed, unknown_user or ignored; after a
    /// survey's submit answer_saved, answer_updated, answer_refused (nothing stored, the
    /// reply says why) or not_sent.
    pub result: String,
    /// Whether a reply to the activity was queued for the teams-sender to post (after a
    /// segment button; false when the press was already answered).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reply_queued: bool,
}

/// The answer to an `invoke` activity (Action.Execute, Universal Actions): the message Teams
/// shows the user.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvokeMessage {
    /// Always 200.
    pub status_code: u16,
    /// Always `application/vnd.microsoft.activity.message`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// What Teams shows for an `invoke` (the Universal Actions message response).
const INVOKE_MESSAGE_TYPE: &str = "application/vnd.microsoft.activity.message";

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
/// `serviceUrl`; otherwise 401. A `message` activity is answered with `ActivityResult` (a
/// reply to a segment button is posted to the conversation by the teams-sender); an
/// `invoke` activity with `InvokeMessage`, the text Teams shows.
#[utoipa::path(post, path = "/v1/teams/messages", request_body = Activity,
    responses((status = 200, description = "`ActivityResult` for a message activity, `InvokeMessage` for an invoke",
               content((ActivityResult = "application/json"), (InvokeMessage = "application/json"))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "unknown segment, or unknown survey campaign"),
              (status = 422, body = ErrorBody, description = "a button's data without the ids it needs"),
              (status = 503, body = ErrorBody, description = "signing keys unavailable")))]
#[tracing::instrument(skip_all, fields(action, kind))]
pub async fn teams_messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = state
        .bot_auth
        .verify(authorization)
        .await
        .map_err(unauthorized)?;
    let activity: Activity = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: format!("not an activity: {e}"),
    })?;
    if claims.service_url.is_none()
        || claims.service_url.as_deref() != activity.service_url.as_deref()
    {
        return Err(unauthorized(BotAuthError::Malformed(
            "the token's serviceurl is not the activity's serviceUrl",
        )));
    }
    if let (Some(endorsed), Some(channel)) = (&claims.endorsements, &activity.channel_id) {
        if !endorsed.iter().any(|c| c.as_str() == channel.as_str()) {
            return Err(unauthorized(BotAuthError::Malformed(
                "the signing key does not speak for this channel",
            )));
        }
    }
    let invoke = activity.kind.as_deref() == Some("invoke");
    tracing::Span::current().record("kind", activity.kind.as_deref().unwrap_or_default());
    let handled = handle(&state, &activity, invoke).await?;
    metrics::counter!("pushfleet_opt_changes_total", "channel" => "teams", "result" => handled.result)
        .increment(1);
    tracing::info!(
        result = handled.result,
        reply_queued = handled.reply_queued,
        "activity handled"
    );
    if invoke {
        return Ok(Json(InvokeMessage {
            status_code: 200,
            kind: INVOKE_MESSAGE_TYPE.to_owned(),
            value: handled.reply.unwrap_or_default(),
        })
        .into_response());
    }
    Ok(Json(ActivityResult {
        result: handled.result.to_owned(),
        reply_queued: handled.reply_queued,
    })
    .into_response())
}

/// What an activity did, and what the bot answers.
pub(crate) struct Handled {
    pub(crate) result: &'static str,
    /// The text for the user (an invoke shows it; a message activity gets it posted).
    pub(crate) reply: Option<String>,
    pub(crate) reply_queued: bool,
}

impl Handled {
    fn new(result: &'static str, reply: Option<&str>) -> Self {
        Self {
            result,
            reply: reply.map(str::to_owned),
            reply_queued: false,
        }
    }
}

async fn handle(state: &AppState, activity: &Activity, invoke: bool) -> Result<Handled, ApiError> {
    let Some(action) = button_data(activity) else {
        return Ok(Handled::new("ignored", None));
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
        .map(Text::into_string)
        .collect();
    if name == SURVEY_ANSWER_ACTION {
        let person = person(state, &user_ids).await?;
        return super::surveys::answers::survey_answer(state, activity, action, person, invoke)
            .await;
    }
    let segment_action = match name {
        "segment_opt_in" => SegmentAction::OptIn,
        "segment_opt_out" => SegmentAction::OptOut,
        "unsubscribe" | "subscribe" => {
            let Some(person) = person(state, &user_ids).await? else {
                return Ok(Handled::new("unknown_user", Some(UNKNOWN_USER_REPLY)));
            };
            return Ok(if name == "unsubscribe" {
                state
                    .store
                    .opt_out_of_channel(person, Channel::Teams, "teams_button")
                    .await?;
                Handled::new("unsubscribed", Some(UNSUBSCRIBED_REPLY))
            } else {
                state
                    .store
                    .opt_in_to_channel(person, Channel::Teams)
                    .await?;
                Handled::new("subscribed", Some(SUBSCRIBED_REPLY))
            });
        }
        _ => return Ok(Handled::new("ignored", None)),
    };
    let segment_id: Uuid = action
        .get("segment_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::invalid("value.segment_id", "must be a segment id"))?;
    let segment = state.store.get_segment(segment_id).await?;
    let Some(person) = person(state, &user_ids).await? else {
        return Ok(Handled::new("unknown_user", Some(UNKNOWN_USER_REPLY)));
    };
    let (result, custom) = match segment_action {
        SegmentAction::OptIn => ("opted_in", segment.opt_in_reply.as_deref()),
        SegmentAction::OptOut => ("opted_out", segment.opt_out_reply.as_deref()),
    };
    let text = segment_reply(segment_action, &segment.name, custom);
    // An invoke carries its answer in the response; a message activity gets a reply posted.
    let job = if invoke {
        None
    } else {
        reply_job(activity, &text)
    };
    let owed = job.as_ref().map(|job| OwedReply {
        job,
        routing_key: Topology::BOT_REPLY_KEY,
    });
    let reply_queued = match segment_action {
        SegmentAction::OptIn => {
            state
                .store
                .opt_in_to_segment(segment_id, person, owed)
                .await?
        }
        SegmentAction::OptOut => {
            state
                .store
                .opt_out_of_segment(segment_id, person, "teams_button", owed)
                .await?
        }
    };
    if reply_queued {
        metrics::counter!("pushfleet_bot_replies_queued_total").increment(1);
    }
    Ok(Handled {
        result,
        reply: Some(text),
        reply_queued,
    })
}

/// The reply job for a message activity, or `None` (logged) when the activity lacks what a
/// reply needs: the opt-in or opt-out still counts.
pub(crate) fn reply_job(activity: &Activity, text: &str) -> Option<BotReplyJob> {
    let conversation_id = activity.conversation.as_ref().and_then(|c| c.id.clone());
    match (&activity.id, &activity.service_url, conversation_id) {
        (Some(activity_id), Some(service_url), Some(conversation_id)) => Some(BotReplyJob {
            activity_id: activity_id.to_string(),
            service_url: service_url.to_string(),
            conversation_id: conversation_id.into_string(),
            text: text.to_owned(),
            requested_at: chrono::Utc::now(),
        }),
        _ => {
            tracing::warn!("activity without id, serviceUrl or conversation id; no reply posted");
            None
        }
    }
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
