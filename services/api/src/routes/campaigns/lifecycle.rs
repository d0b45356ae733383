//! A campaign's life (seed 001): "a campaign can be modified only when it has not yet been
//! broadcast". Drafts and scheduled campaigns are changed, sent (now or up to six days
//! later) and deleted; broadcast ones answer 409 to a change, are cloned into a new draft,
//! or removed from the list with their deliveries and report kept.

use super::schedule::{check_send_later, SendWindowInput};
use super::view::CampaignView;
use super::{actor, channels, check_visible_references, reference_error};
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::routes::{required_text, AppState};
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use pushfleet_domain::{Channel, PermissionLabel, Text, Timestamp};
use pushfleet_store::{CampaignChange, CampaignProgress, CampaignStatus, Deletion, Labelled};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A change to a campaign not yet broadcast: fields left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaign {
    pub name: Option<Text>,
    /// New recipients: one of `audience_id`, `segment_id`, `all_bot_users: true`, which
    /// replaces the campaign's other source (`all_bot_users: false` alone only clears it).
    pub audience_id: Option<Uuid>,
    pub segment_id: Option<Uuid>,
    pub all_bot_users: Option<bool>,
    /// A template: replaces the survey, if the campaign had one.
    pub template_id: Option<Uuid>,
    /// A survey (Teams only): replaces the template, if the campaign had one.
    pub survey_id: Option<Uuid>,
    pub channels: Option<Vec<Channel>>,
    /// The planned start (at most 6 days ahead once scheduled).
    pub start_at: Option<Timestamp>,
    /// A new sending window; null removes it (all sends at the start).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<SendWindowInput>)]
    pub send_window: Option<Option<SendWindowInput>>,
    pub wait_for_availability: Option<bool>,
    /// New permission labels; a limited caller gives only labels they hold.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`, the default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<SendWindowInput>>, D::Error> {
    Option::<SendWindowInput>::deserialize(d).map(Some)
}

/// The campaign, when the caller may see it.
async fn visible_campaign(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<pushfleet_store::Campaign, ApiError> {
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let campaign = state.store.get_campaign(id).await?;
    if campaign.deleted_at.is_some() {
        return Err(ApiError::NotFound("campaign"));
    }
    Ok(campaign)
}

/// Changes a campaign that has not been broadcast; 409 once it has.
#[utoipa::path(patch, path = "/v1/campaigns/{id}", request_body = UpdateCampaign,
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn update_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateCampaign>,
) -> Result<Json<CampaignView>, ApiError> {
    let current = visible_campaign(&state, &principal, id).await?;
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .map(|n| required_text(&mut errors, "name".into(), n, 200));
    ApiError::check(errors)?;
    let labels = body
        .labels
        .map(|l| principal.labels_for(Some(l)))
        .transpose()?;
    let channels = body.channels.map(channels).transpose()?;
    let start_at = body.start_at.map(Timestamp::get);
    if current.status == CampaignStatus::Scheduled.as_str() {
        if let Some(start_at) = start_at {
            check_send_later(start_at)?;
        }
    }
    let window_start = start_at.unwrap_or(current.start_at);
    let send_window = body
        .send_window
        .map(|w| w.map(|w| w.into_window(window_start)).transpose())
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
    // Two sources in one change are refused, not silently ranked.
    pushfleet_store::Recipients {
        audience_id: body.audience_id,
        segment_id: body.segment_id,
        all_bot_users: body.all_bot_users == Some(true),
    }
    .source()?;
    let change = CampaignChange {
        segment_id: body.segment_id,
        all_bot_users: body.all_bot_users,
        name,
        audience_id: body.audience_id,
        template_id: body.template_id,
        survey_id: body.survey_id,
        channels,
        start_at,
        send_window,
        wait_for_availability: body.wait_for_availability,
        labels,
    };
    let campaign = state
        .store
        .update_campaign(id, &change, &actor(&principal))
        .await
        .map_err(reference_error)?;
    Ok(Json(CampaignView::new(
        campaign,
        CampaignProgress::default(),
    )))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SendCampaign {
    /// Send later: when (at most 6 days ahead). Absent: now.
    pub start_at: Option<Timestamp>,
}

/// Sends a draft now or later (or moves a scheduled campaign's start). It must name its
/// audience (with members) and its template.
#[utoipa::path(post, path = "/v1/campaigns/{id}/send", request_body = SendCampaign,
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn send_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SendCampaign>,
) -> Result<Json<CampaignView>, ApiError> {
    visible_campaign(&state, &principal, id).await?;
    let start_at = body.start_at.map_or_else(Utc::now, Timestamp::get);
    check_send_later(start_at)?;
    let campaign = state
        .store
        .send_campaign(id, start_at, &actor(&principal))
        .await
        .map_err(reference_error)?;
    Ok(Json(CampaignView::new(
        campaign,
        CampaignProgress::default(),
    )))
}

#[derive(Serialize, ToSchema)]
pub struct DeletedCampaign {
    pub id: Uuid,
    /// `deleted` (a draft or scheduled campaign: gone) or `removed` (a broadcast one: off
    /// the list, its deliveries and report kept).
    pub outcome: String,
}

/// Deletes a draft or scheduled campaign; removes a broadcast one from the list.
#[utoipa::path(delete, path = "/v1/campaigns/{id}",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = DeletedCampaign), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn delete_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DeletedCampaign>, ApiError> {
    visible_campaign(&state, &principal, id).await?;
    let outcome = match state.store.delete_campaign(id).await? {
        Deletion::Deleted => "deleted",
        Deletion::Removed => "removed",
    };
    Ok(Json(DeletedCampaign {
        id,
        outcome: outcome.into(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneCampaign {
    /// The copy's title.
    pub name: Text,
    /// The copy's labels; the original's when absent (a limited caller: only labels it
    /// holds).
    pub labels: Option<Vec<PermissionLabel>>,
}

/// A new draft with the same message, recipients, channels and schedule settings.
#[utoipa::path(post, path = "/v1/campaigns/{id}/clone", request_body = CloneCampaign,
    params(("id" = Uuid, Path, description = "The campaign to copy")),
    responses((status = 201, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn clone_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CloneCampaign>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let original = visible_campaign(&state, &principal, id).await?;
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    ApiError::check(errors)?;
    // The copy stays the caller's: a limited caller's copy carries only its labels.
    let labels = match body.labels {
        Some(l) => Some(principal.labels_for(Some(l))?),
        None => principal.label_limit().map(|mine| {
            original
                .labels
                .iter()
                .filter(|l| mine.contains(l))
                .cloned()
                .collect()
        }),
    };
    let copy = state
        .store
        .clone_campaign(id, &name, labels.as_deref(), &actor(&principal))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CampaignView::new(copy, CampaignProgress::default())),
    ))
}
