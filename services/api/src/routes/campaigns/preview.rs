//! Preview (seed 001's "refresh Preview"): a campaign's message, or a template, rendered for
//! one person per channel, with the code the senders run (`Template::render`, the Teams
//! activity of `pushfleet_domain::teams_activity`, the SMS segment count) on the recipient
//! a send job would carry, and whether each channel would reach that person.

use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use pushfleet_domain::{sms_encoding, sms_segments, teams_activity, Channel, SmsEncoding, Text};
use pushfleet_store::{Labelled, PersonKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Who to render the message for: a person's id or e-mail address (one of the two).
#[derive(Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewFor {
    pub person_id: Option<Uuid>,
    #[param(value_type = Option<String>)]
    #[schema(value_type = Option<String>)]
    pub email: Option<Text>,
}

#[derive(Serialize, ToSchema)]
pub struct EmailPreview {
    /// The address it goes to (absent when the person has none).
    pub to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TeamsPreview {
    /// The Bot Framework activity the Teams sender posts, as JSON.
    #[schema(value_type = Object)]
    pub activity: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct SmsPreview {
    /// The number it goes to (absent when the person has none).
    pub to: Option<String>,
    pub text: String,
    /// Segments it is billed as.
    pub segments: u32,
    #[schema(value_type = String)]
    pub encoding: SmsEncoding,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelPreview {
    pub channel: Channel,
    /// Whether a send now would reach the person on this channel.
    pub reachable: bool,
    /// Why not: no address (Teams: the bot is not installed), or opted out.
    pub reason: Option<String>,
    /// The message on this channel (rendered whether or not it would reach them); one of
    /// the three, by channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailPreview>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teams: Option<TeamsPreview>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsPreview>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewView {
    pub person_id: Uuid,
    /// The template rendered: for a broadcast campaign, its frozen copy.
    pub template_id: Uuid,
    pub channels: Vec<ChannelPreview>,
}

impl PreviewFor {
    fn key(&self) -> Result<PersonKey<'_>, ApiError> {
        match (&self.person_id, &self.email) {
            (Some(id), None) => Ok(PersonKey::Id(*id)),
            (None, Some(email)) if !email.trim().is_empty() => Ok(PersonKey::Email(email.trim())),
            _ => Err(ApiError::invalid(
                "person_id",
                "give the person's id (person_id) or e-mail address (email), one of the two",
            )),
        }
    }
}

/// Renders template `template_id` for the person, on each of `channels`.
async fn render(
    state: &AppState,
    template_id: Uuid,
    who: &PreviewFor,
    channels: &[Channel],
) -> Result<PreviewView, ApiError> {
    let key = who.key()?;
    let person = state.store.preview_person(key).await?;
    let stored = state.store.get_template(template_id).await?;
    // A stored template was checked when saved: one that no longer parses is our fault.
    let template = stored
        .parse()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("template {template_id}: {e}")))?;
    let message = template.render(&person.recipient);
    let r = &person.recipient;
    let channels = channels
        .iter()
        .map(|&channel| {
            let reason = person.unreachable_reason(channel);
            let mut preview = ChannelPreview {
                channel,
                reachable: reason.is_none(),
                reason: reason.map(str::to_owned),
                email: None,
                teams: None,
                sms: None,
            };
            match channel {
                Channel::Email => {
                    preview.email = Some(EmailPreview {
                        to: r.email.as_ref().map(|e| e.as_str().to_owned()),
                        subject: message.subject.clone(),
                        text: message.text.clone(),
                        html: message.html.clone(),
                    })
                }
                Channel::Teams => {
                    preview.teams = Some(TeamsPreview {
                        activity: teams_activity(&message),
                    })
                }
                Channel::Sms => {
                    preview.sms = Some(SmsPreview {
                        to: r.phone.as_ref().map(|p| p.as_str().to_owned()),
                        text: message.text.clone(),
                        segments: sms_segments(&message.text),
                        encoding: sms_encoding(&message.text),
                    })
                }
            }
            preview
        })
        .collect();
    Ok(PreviewView {
        person_id: person.person_id,
        template_id,
        channels,
    })
}

/// The campaign's message for one person, per channel of the campaign: what each would
/// send now, and whether it would reach them.
#[utoipa::path(get, path = "/v1/campaigns/{id}/preview",
    params(("id" = Uuid, Path, description = "The campaign's id"), PreviewFor),
    responses((status = 200, body = PreviewView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no such campaign or active person"),
              (status = 422, body = ErrorBody, description = "no person named, or the campaign has no message yet")))]
#[tracing::instrument(skip(state, principal, query))]
pub async fn preview_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<PreviewFor>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PreviewView>, ApiError> {
    let who = crate::routes::query(query)?;
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let campaign = state.store.get_campaign(id).await?;
    // Before the broadcast the template chosen; after it the frozen copy it sends.
    let template_id = campaign.template_id.ok_or_else(|| {
        ApiError::invalid(
            "template_id",
            "the campaign has no message yet: choose its template first",
        )
    })?;
    let channels: Vec<Channel> = campaign
        .channels
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    Ok(Json(render(&state, template_id, &who, &channels).await?))
}

/// A template rendered for one person, on every channel.
#[utoipa::path(post, path = "/v1/templates/{id}/preview", request_body = PreviewFor,
    params(("id" = Uuid, Path, description = "The template's id")),
    responses((status = 200, body = PreviewView),
              (status = 404, body = ErrorBody, description = "no such template or active person"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn preview_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PreviewFor>,
) -> Result<Json<PreviewView>, ApiError> {
    let template = state.store.get_template(id).await?;
    if !principal.sees(&template.labels) || template.frozen_for.is_some() {
        return Err(ApiError::NotFound("template"));
    }
    let all = [Channel::Email, Channel::Teams, Channel::Sms];
    Ok(Json(render(&state, id, &body, &all).await?))
}
