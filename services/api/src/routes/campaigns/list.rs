//! `GET /v1/campaigns`: newest first, in keyset pages, filtered by status (the seed's
//! "Completed" tab is `status=completed`), channel, label and text in the name.

use super::view::CampaignView;
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use pushfleet_domain::{Channel, PermissionLabel, Text};
use pushfleet_store::{CampaignFilter, CampaignStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CampaignQuery {
    /// Only campaigns in this status.
    #[param(value_type = Option<CampaignStatus>)]
    pub status: Option<String>,
    /// Only campaigns sent on this channel.
    pub channel: Option<Channel>,
    /// Only campaigns carrying this permission label.
    #[param(value_type = Option<String>)]
    pub label: Option<PermissionLabel>,
    /// Only campaigns whose name contains this (case-insensitive).
    #[param(value_type = Option<String>)]
    pub q: Option<Text>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignPage {
    pub campaigns: Vec<CampaignView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/campaigns", params(CampaignQuery),
    responses((status = 200, body = CampaignPage)))]
#[tracing::instrument(skip_all)]
pub async fn list_campaigns(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<CampaignQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CampaignPage>, ApiError> {
    let q = crate::routes::query(query)?;
    let limit = crate::routes::page_limit(q.limit, 50)?;
    let status = q
        .status
        .map(|s| {
            CampaignStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "one of draft, scheduled, evaluating, sending, completed, paused, cancelled",
                )
            })
        })
        .transpose()?;
    let filter = CampaignFilter {
        status,
        channel: q.channel,
        label: q.label.map(String::from),
        name_contains: q.q.map(Text::into_string),
        visible_labels: principal.list_filter(),
        before: q.before,
        limit: limit + 1,
    };
    let found = state.store.list_campaigns(&filter).await?;
    let (campaigns, next_before) = crate::routes::keyset_page(
        found,
        limit,
        |(c, status)| CampaignView::with_status(c, status, None),
        |c| c.id,
    );
    Ok(Json(CampaignPage {
        campaigns,
        next_before,
    }))
}
