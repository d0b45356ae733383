//! `GET /v1/campaigns/{id}/recipients`: who the campaign reaches if sent now, per channel,
//! with how many cannot be reached there and why (no address: for Teams, the bot is not
//! installed; opted out). Counts only, no personal data.

use crate::api_error::ErrorBody;
use crate::extract::ApiPath;
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::{Extension, Json};
use chrono::Utc;
use pushfleet_domain::Channel;
use pushfleet_store::Labelled;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ChannelReachView {
    pub channel: Channel,
    /// Would get the message.
    pub reachable: i64,
    /// Have no address on the channel (for Teams: have not installed the bot).
    pub no_address: i64,
    /// Opted out of the channel.
    pub opted_out: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReachView {
    /// Active recipients now: the audience's or segment's members (a dynamic audience: who
    /// matches today), or everyone with the bot.
    pub recipients: i64,
    pub channels: Vec<ChannelReachView>,
}

#[utoipa::path(get, path = "/v1/campaigns/{id}/recipients",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = ReachView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn campaign_recipients(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ReachView>, ApiError> {
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let campaign = state.store.get_campaign(id).await?;
    let source = campaign
        .recipient_source()?
        .ok_or_else(|| ApiError::invalid("audience_id", "the campaign has no recipients yet"))?;
    let channels: Vec<Channel> = campaign
        .channels
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let reach = state
        .store
        .campaign_reach(source, &channels, Utc::now().date_naive())
        .await?;
    Ok(Json(ReachView {
        recipients: reach.recipients,
        channels: reach
            .channels
            .into_iter()
            .filter_map(|c| {
                Some(ChannelReachView {
                    channel: c.channel?,
                    reachable: c.reachable,
                    no_address: c.no_address,
                    opted_out: c.opted_out,
                })
            })
            .collect(),
    }))
}
