//! Microsoft Teams: Entra ID client-credentials token, Bot Framework Connector conversations and
//! activities, and Graph presence.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use pushfleet_domain::adaptive_card::validate_card;
use serde::Deserialize;
use serde_json::{json, Value};

use super::gate::{with_retry_after, Fault};
use super::http::{authorization, idempotency_key, json_response, AppState};
use super::limits::{Demand, LimitScope};
use super::recorder::{Channel, NewMessage};

const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";
const TOKEN_LIFETIME_SECS: u64 = 3599;

/// Issued tokens (with the client id each was issued to, for the per-app limit) and created
/// conversations. Tokens never expire here: the simulator checks that senders authenticate,
/// not that they refresh.
#[derive(Default)]
pub(crate) struct TeamsState {
    tokens: Mutex<HashMap<String, String>>,
    conversations: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TeamsState {
    fn issue_token(&self, client_id: &str) -> String {
        let token = format!(
            "sim.{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        lock(&self.tokens).insert(token.clone(), client_id.to_owned());
        token
    }

    /// The client id the token was issued to.
    fn client_of(&self, token: &str) -> Option<String> {
        lock(&self.tokens).get(token).cloned()
    }

    /// Same member, same conversation, as Teams does for 1:1 chats.
    fn conversation_for(&self, member_id: &str) -> String {
        lock(&self.conversations)
            .entry(member_id.to_owned())
            .or_insert_with(|| format!("a:{}", uuid::Uuid::new_v4()))
            .clone()
    }
}

// ---- token ------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub(crate) async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Form(req) = match form {
        Ok(form) => form,
        Err(rejection) => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("The request body must be form-encoded: {rejection}"),
            )
        }
    };
    if req.grant_type.as_deref() != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported.",
        );
    }
    let Some(client_id) = req.client_id.filter(|v| !v.is_empty()) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if req.scope.as_deref().is_none_or(str::is_empty) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must contain the following parameter: 'scope'.",
        );
    }
    let cfg = &state.cfg;
    let id_ok = cfg
        .teams_client_id
        .as_ref()
        .is_none_or(|id| *id == client_id);
    let secret_ok = cfg
        .teams_client_secret
        .as_ref()
        .is_none_or(|s| Some(s) == req.client_secret.as_ref());
    if !id_ok || !secret_ok {
        tracing::warn!(%tenant, %client_id, "teams token refused: invalid client");
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    tracing::debug!(%tenant, %client_id, "teams token issued");
    json_response(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECS,
            "ext_expires_in": TOKEN_LIFETIME_SECS,
            "access_token": state.teams.issue_token(&client_id),
        }),
    )
}

// ---- connector --------------------------------------------------------------------------

/// A Bot Framework `ErrorResponse`: `{"error":{"code":...,"message":...}}`.
pub(crate) struct BfError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fault: Option<Fault>,
}

impl BfError {
    fn bad_argument(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "BadArgument",
            message: message.into(),
            fault: None,
        }
    }

    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "Unauthorized",
            message: "Authorization has been denied for this request.".into(),
            fault: None,
        }
    }
}

impl From<Fault> for BfError {
    fn from(fault: Fault) -> Self {
        let (status, code, message) = match fault {
            Fault::Outage => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            ),
            Fault::ServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "An error has occurred.",
            ),
            Fault::Throttle { .. } | Fault::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Throttled",
                "Too many requests. Retry after the time in the Retry-After header.",
            ),
            // What the Connector answers once the user has removed (uninstalled) the bot.
            Fault::Permanent => (
                StatusCode::FORBIDDEN,
                "BotNotInConversationRoster",
                "The bot is not part of the conversation roster.",
            ),
        };
        Self {
            status,
            code,
            message: message.into(),
            fault: Some(fault),
        }
    }
}

impl IntoResponse for BfError {
    fn into_response(self) -> Response {
        let resp = json_response(
            self.status,
            json!({ "error": { "code": self.code, "message": self.message } }),
        );
        match self.fault {
            Some(fault) => with_retry_after(resp, fault),
            None => resp,
        }
    }
}

/// How the Connector words a refused call.
pub(crate) fn refusal(fault: Fault) -> Response {
    BfError::from(fault).into_response()
}

/// The client id behind the bearer token.
fn check_bearer(state: &AppState, headers: &HeaderMap) -> Result<String, BfError> {
    authorization(headers, "Bearer")
        .and_then(|token| state.teams.client_of(token))
        .ok_or_else(BfError::unauthorized)
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(Value, T), BfError> {
    let Json(raw) =
        body.map_err(|rejection| BfError::bad_argument(format!("Invalid JSON body: {rejection}")))?;
    let parsed = serde_json::from_value(raw.clone())
        .map_err(|e| BfError::bad_argument(format!("Invalid body: {e}")))?;
    Ok((raw, parsed))
}

#[derive(Deserialize)]
struct ChannelAccount {
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversationParameters {
    bot: Option<ChannelAccount>,
    members: Option<Vec<ChannelAccount>>,
    channel_data: Option<Value>,
}

/// `POST /v3/conversations`
pub(crate) async fn create_conversation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, BfError> {
    let app = check_bearer(&state, &headers)?;
    let (_, params) = parse_json::<ConversationParameters>(body)?;
    let id_of = |a: &ChannelAccount| a.id.clone().filter(|id| !id.is_empty());
    if params.bot.as_ref().and_then(id_of).is_none() {
        return Err(BfError::bad_argument("Bot id is required."));
    }
    let member = match params.members.as_deref() {
        Some([member]) => id_of(member),
        _ => None,
    }
    .ok_or_else(|| {
        BfError::bad_argument("Exactly one member with an id is required for a 1:1 conversation.")
    })?;
    let has_tenant = params
        .channel_data
        .as_ref()
        .and_then(|d| d.pointer("/tenant/id"))
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    if !has_tenant {
        return Err(BfError::bad_argument("channelData.tenant.id is required."));
    }
    let id = state.teams.conversation_for(&member);
    state.gate.judge(
        Channel::Teams,
        &[&id],
        &[Demand::new(LimitScope::TeamsApp, app, 1)],
    )?;
    tracing::debug!(%member, conversation = %id, "teams conversation");
    Ok(json_response(StatusCode::CREATED, json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attachment {
    content_type: Option<String>,
    content: Option<Value>,
}

#[derive(Deserialize)]
struct Activity {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    attachments: Option<Vec<Attachment>>,
}

/// `POST /v3/conversations/{conversationId}/activities`
pub(crate) async fn send_activity(
    State(state): State<AppState>,
    Path(conversation_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, BfError> {
    record_activity(&state, conversation_id, None, &headers, body)
}

/// `POST /v3/conversations/{conversationId}/activities/{activityId}` (`ReplyToActivity`): a
/// message in reply to an activity the user sent. Recorded like any other message, with the
/// answered activity as `raw.replyToId` (taken from the path when the body has none).
pub(crate) async fn reply_to_activity(
    State(state): State<AppState>,
    Path((conversation_id, activity_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, BfError> {
    record_activity(&state, conversation_id, Some(activity_id), &headers, body)
}

fn record_activity(
    state: &AppState,
    conversation_id: String,
    reply_to: Option<String>,
    headers: &HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, BfError> {
    let app = check_bearer(state, headers)?;
    let (mut raw, activity) = parse_json::<Activity>(body)?;
    if activity.kind.as_deref() != Some("message") {
        return Err(BfError::bad_argument("Activity type must be 'message'."));
    }
    if let (Some(id), Some(fields)) = (reply_to, raw.as_object_mut()) {
        fields.entry("replyToId").or_insert(Value::String(id));
    }
    let attachments = activity.attachments.unwrap_or_default();
    if attachments
        .iter()
        .any(|a| a.content_type.as_deref().is_none_or(str::is_empty))
    {
        return Err(BfError::bad_argument(
            "Every attachment needs a contentType.",
        ));
    }
    // Teams refuses a card it cannot render; the API checks templates with the same rules
    // when they are saved, so a campaign's cards never meet this.
    for (i, a) in attachments.iter().enumerate() {
        if a.content_type.as_deref() != Some(ADAPTIVE_CARD) {
            continue;
        }
        let content = a.content.as_ref().ok_or_else(|| {
            BfError::bad_argument(format!("attachments[{i}].content is required."))
        })?;
        if let Err(e) = validate_card(content) {
            tracing::debug!(conversation = %conversation_id, error = %e, "teams card refused");
            return Err(BfError::bad_argument(format!(
                "attachments[{i}].content is not a valid Adaptive Card: {e}"
            )));
        }
    }
    let text = activity.text.filter(|t| !t.is_empty());
    let card = attachments
        .iter()
        .find(|a| a.content_type.as_deref() == Some(ADAPTIVE_CARD))
        .and_then(|a| a.content.as_ref());
    let body = match (card, text) {
        (Some(card), _) => card.to_string(),
        (None, Some(text)) => text,
        (None, None) if !attachments.is_empty() => raw["attachments"].to_string(),
        (None, None) => {
            return Err(BfError::bad_argument(
                "Activity must have text or attachments.",
            ))
        }
    };
    state.gate.judge(
        Channel::Teams,
        &[&conversation_id],
        &[
            Demand::new(LimitScope::TeamsConversation, conversation_id.clone(), 1),
            Demand::new(LimitScope::TeamsApp, app, 1),
        ],
    )?;
    let key = idempotency_key(headers);
    let duplicate = state.gate.recorder.record(
        Channel::Teams,
        key.as_deref(),
        vec![NewMessage {
            recipient: conversation_id.clone(),
            subject: None,
            body,
            raw,
        }],
    );
    tracing::debug!(conversation = %conversation_id, duplicate, "teams activity recorded");
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "id": format!("1:{}", uuid::Uuid::new_v4().simple()) }),
    ))
}

/// `GET /v1.0/users/{id}/presence`: availability from the presence knobs. Graph wants a token
/// too; any token the token endpoint issued will do, whatever its scope.
pub(crate) async fn presence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if check_bearer(&state, &headers).is_err() {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": {
                "code": "InvalidAuthenticationToken",
                "message": "Access token validation failure.",
            } }),
        );
    }
    let availability = state.gate.knobs.read(|k| k.presence.of(&id));
    json_response(
        StatusCode::OK,
        json!({
            "id": id,
            "availability": availability.as_str(),
            "activity": availability.activity(),
        }),
    )
}
