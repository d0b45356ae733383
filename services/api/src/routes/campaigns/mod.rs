//! Campaigns (seed 001): made as drafts or scheduled at once, changed until they are
//! broadcast (`lifecycle`), listed (`list`), and read with their progress.

pub mod controls;
pub mod lifecycle;
pub mod list;
pub mod preview;
pub mod recipients;
pub mod report;
pub mod schedule;
pub mod tries;
pub mod view;

use super::{required_text, AppState};
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use pushfleet_domain::{Channel, PermissionLabel, Text, Timestamp};
use pushfleet_store::{Actor, CampaignProgress, Labelled, NewCampaign, StoreError};
use schedule::{check_send_later, SendWindowInput};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use view::CampaignView;

/// What a new campaign is saved as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InitialStatus {
    /// Edited freely, sent later with `POST /v1/campaigns/{id}/send`.
    Draft,
    /// Broadcast at `start_at` (now when absent).
    #[default]
    Scheduled,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: Text,
    /// `scheduled` (the default) or `draft`.
    #[serde(default)]
    pub status: InitialStatus,
    /// The recipients: an audience, or `segment_id`, or `all_bot_users` (one of the three;
    /// a draft may leave them for later).
    pub audience_id: Option<Uuid>,
    /// The recipients as a segment's members at the broadcast.
    pub segment_id: Option<Uuid>,
    /// The recipients as everyone who has the bot installed in Teams (Teams channel only).
    #[serde(default)]
    pub all_bot_users: bool,
    /// The message; a draft may leave it for later.
    pub template_id: Option<Uuid>,
    /// A survey to send instead of a template (seed 001's survey campaigns): Teams only, as
    /// an Adaptive Card whose answers come back through the bot.
    pub survey_id: Option<Uuid>,
    /// One or more of `email`, `teams`, `sms`.
    pub channels: Vec<Channel>,
    /// When to start (at most 6 days ahead); now when absent.
    pub start_at: Option<Timestamp>,
    /// Spread the sends at random over days and working hours instead of sending them all at
    /// `start_at`.
    pub send_window: Option<SendWindowInput>,
    /// Teams: send only when the recipient's presence is Available; otherwise retry 10 min
    /// later, at the next hour, the next working day, for three rounds (then not sent).
    #[serde(default)]
    pub wait_for_availability: bool,
    /// Permission labels (seed 003): who, of the operators limited to labels, may see and
    /// change it. A limited caller gives only labels they hold, and gets theirs when absent.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// The caller, as a campaign records who made or changed it.
pub(crate) fn actor(principal: &Principal) -> Actor {
    Actor {
        id: principal.id,
        name: principal.name.clone(),
    }
}

/// Channels as given: sorted, without repeats, at least one.
pub(crate) fn channels(mut channels: Vec<Channel>) -> Result<Vec<Channel>, ApiError> {
    channels.sort();
    channels.dedup();
    if channels.is_empty() {
        return Err(ApiError::invalid("channels", "choose at least one channel"));
    }
    Ok(channels)
}

/// Checks that the caller sees the audience, segment, template and survey a request names: what its
/// labels do not reach is, to it, not there (422 naming the field, as for a missing one).
pub(crate) async fn check_visible_references(
    state: &AppState,
    principal: &Principal,
    audience_id: Option<Uuid>,
    segment_id: Option<Uuid>,
    template_id: Option<Uuid>,
    survey_id: Option<Uuid>,
) -> Result<(), ApiError> {
    let hidden = |e: ApiError, field: &'static str, what: &str| match e {
        ApiError::NotFound(_) => ApiError::invalid(field, format!("no {what} with this id")),
        other => other,
    };
    if let Some(id) = audience_id {
        principal
            .visible(&state.store, Labelled::Audience, id)
            .await
            .map_err(|e| hidden(e, "audience_id", "audience"))?;
    }
    if let Some(id) = segment_id {
        principal
            .visible(&state.store, Labelled::Segment, id)
            .await
            .map_err(|e| hidden(e, "segment_id", "segment"))?;
    }
    if let Some(id) = template_id {
        principal
            .visible(&state.store, Labelled::Template, id)
            .await
            .map_err(|e| hidden(e, "template_id", "template"))?;
    }
    if let Some(id) = survey_id {
        principal
            .visible(&state.store, Labelled::Survey, id)
            .await
            .map_err(|e| hidden(e, "survey_id", "survey"))?;
    }
    Ok(())
}

/// A store refusal about what a campaign names, as the request's fault: 422 naming it.
pub(crate) fn reference_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound("audience") => {
            ApiError::invalid("audience_id", "no audience with this id")
        }
        StoreError::NotFound("template") => {
            ApiError::invalid("template_id", "no template with this id")
        }
        StoreError::NotFound("segment") => {
            ApiError::invalid("segment_id", "no segment with this id")
        }
        StoreError::NotFound("survey") => ApiError::invalid("survey_id", "no survey with this id"),
        StoreError::Conflict(msg) if msg.contains("audience") => {
            ApiError::invalid("audience_id", msg)
        }
        StoreError::Conflict(msg) if msg.contains("segment") => {
            ApiError::invalid("segment_id", msg)
        }
        other => other.into(),
    }
}

/// Saves a campaign as a draft, or schedules it (the scheduler starts it at `start_at`).
#[utoipa::path(post, path = "/v1/campaigns", request_body = CreateCampaign,
    responses((status = 201, body = CampaignView), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateCampaign>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    ApiError::check(errors)?;
    let channels = channels(body.channels)?;
    let draft = body.status == InitialStatus::Draft;
    let start_at = body.start_at.map_or_else(Utc::now, Timestamp::get);
    if !draft {
        check_send_later(start_at)?;
    }
    let send_window = body
        .send_window
        .map(|w| w.into_window(start_at))
        .transpose()?;
    check_visible_references(
        &state,
        &principal,
        body.audience_id,
        body.segment_id,
        body.template_id,
        body.survey_id,
    )
    .await?;
    let new = NewCampaign {
        name,
        draft,
        audience_id: body.audience_id,
        template_id: body.template_id,
        segment_id: body.segment_id,
        all_bot_users: body.all_bot_users,
        survey_id: body.survey_id,
        channels,
        start_at,
        send_window,
        wait_for_availability: body.wait_for_availability,
        labels,
        created_by: Some(actor(&principal)),
    };
    let campaign = state
        .store
        .create_campaign(&new)
        .await
        .map_err(reference_error)?;
    Ok((
        StatusCode::CREATED,
        Json(CampaignView::new(campaign, CampaignProgress::default())),
    ))
}

/// A campaign (the seed's information view) with its progress: delivery counts per state
/// and per channel, and per provider-reported status per channel.
#[utoipa::path(get, path = "/v1/campaigns/{id}", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CampaignView>, ApiError> {
    let campaign = state.store.get_campaign(id).await?;
    if !principal.sees(&campaign.labels) {
        return Err(ApiError::NotFound("campaign"));
    }
    let progress = state.store.campaign_progress(id).await?;
    Ok(Json(CampaignView::new(campaign, progress)))
}
