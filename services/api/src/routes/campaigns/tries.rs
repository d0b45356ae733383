//! `POST /v1/campaigns/{id}/try` (seed 001's TRY): the campaign's message, now, to one
//! person given by e-mail, on each of the campaign's channels they can receive; refused
//! with the reason when they can receive it on none (for Teams: the bot is not installed).
//! The try is a campaign of its own, out of the list and the report; its view tells how it
//! went.

use super::actor;
use super::view::CampaignView;
use crate::api_error::{ErrorBody, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use pushfleet_domain::{Channel, Text};
use pushfleet_store::{CampaignProgress, Labelled, TryError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryCampaign {
    /// The e-mail address of the person to try it on (for Teams: their bot conversation).
    pub email: Text,
}

#[derive(Serialize, ToSchema)]
pub struct UnreachableView {
    pub channel: Channel,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct TryView {
    /// The try: `GET /v1/campaigns/{id}` of it shows how it went.
    #[serde(rename = "try")]
    pub try_campaign: CampaignView,
    /// The campaign's channels the person cannot receive, and why.
    pub unreachable: Vec<UnreachableView>,
}

fn unreachable_views(u: Vec<pushfleet_store::Unreachable>) -> Vec<UnreachableView> {
    u.into_iter()
        .map(|u| UnreachableView {
            channel: u.channel,
            reason: u.reason.to_owned(),
        })
        .collect()
}

/// Sends the campaign's message now to one person.
#[utoipa::path(post, path = "/v1/campaigns/{id}/try", request_body = TryCampaign,
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 202, body = TryView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn try_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TryCampaign>,
) -> Result<(StatusCode, Json<TryView>), ApiError> {
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let email = body.email.trim();
    if email.is_empty() || email.len() > 320 {
        return Err(ApiError::invalid("email", "must be an e-mail address"));
    }
    let tried = state
        .store
        .try_campaign(id, email, &actor(&principal))
        .await
        .map_err(|e| match e {
            TryError::NoSuchPerson => {
                ApiError::invalid("email", "no active person has this e-mail address")
            }
            TryError::NoMessage => ApiError::invalid(
                "template_id",
                "the campaign has no message yet: choose its template first",
            ),
            TryError::Unreachable(reasons) => ApiError::Invalid {
                message: "the person cannot receive the campaign on any of its channels".into(),
                details: reasons
                    .into_iter()
                    .map(|u| FieldError {
                        field: format!("channels.{}", u.channel.as_str()),
                        message: u.reason.to_owned(),
                    })
                    .collect(),
            },
            TryError::Store(e) => e.into(),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TryView {
            try_campaign: CampaignView::new(tried.campaign, CampaignProgress::default()),
            unreachable: unreachable_views(tried.unreachable),
        }),
    ))
}
