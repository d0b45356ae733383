//! The emergency stop: pause, resume and cancel a campaign that is being sent (beyond the
//! seed, which cannot stop a started campaign; every peer's admins expect one). Senders on
//! every replica see a pause within a fraction of a second (`pushfleet_sender::
//! campaign_watch`): no provider call for the campaign starts after that, and nothing
//! queued is lost or sent twice (`pushfleet_store::campaign_controls`).

use super::actor;
use super::view::CampaignView;
use crate::api_error::ErrorBody;
use crate::extract::ApiPath;
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::{Extension, Json};
use pushfleet_store::{Campaign, Labelled};
use uuid::Uuid;

async fn campaign_view(state: &AppState, campaign: Campaign) -> Result<CampaignView, ApiError> {
    let progress = state.store.campaign_progress(campaign.id).await?;
    Ok(CampaignView::new(campaign, progress))
}

/// Pauses a campaign being sent: no new provider call for it on any sender replica; what
/// is queued waits, parked, for the resume.
#[utoipa::path(post, path = "/v1/campaigns/{id}/pause",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn pause_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CampaignView>, ApiError> {
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let campaign = state.store.pause_campaign(id, &actor(&principal)).await?;
    tracing::info!(campaign = %id, "campaign paused");
    Ok(Json(campaign_view(&state, campaign).await?))
}

/// Resumes a paused campaign where it stopped.
#[utoipa::path(post, path = "/v1/campaigns/{id}/resume",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn resume_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CampaignView>, ApiError> {
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let campaign = state.store.resume_campaign(id, &actor(&principal)).await?;
    tracing::info!(campaign = %id, "campaign resumed");
    Ok(Json(campaign_view(&state, campaign).await?))
}

/// Cancels a scheduled, sending or paused campaign: every unsent delivery ends `cancelled`
/// (a call already under way may still go out, and is then reported sent).
#[utoipa::path(post, path = "/v1/campaigns/{id}/cancel",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn cancel_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CampaignView>, ApiError> {
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let (campaign, cancelled) = state.store.cancel_campaign(id, &actor(&principal)).await?;
    tracing::info!(campaign = %id, cancelled, "campaign cancelled");
    Ok(Json(campaign_view(&state, campaign).await?))
}
