use super::AppState;
use crate::api_error::ErrorBody;
use crate::extract::ApiJson;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use pushfleet_queue::Topology;
use pushfleet_store::{DeadDelivery, ReplaySelection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this campaign's dead letters.
    pub campaign_id: Option<Uuid>,
    /// Page after this delivery id.
    #[serde(default)]
    pub after: i64,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterView {
    pub delivery_id: i64,
    pub campaign_id: Uuid,
    pub person_id: Uuid,
    #[schema(value_type = pushfleet_domain::Channel)]
    pub channel: String,
    pub attempts: i32,
    /// The provider's last answer: why the delivery was given up.
    pub reason: Option<String>,
    pub dead_at: DateTime<Utc>,
}

impl From<DeadDelivery> for DeadLetterView {
    fn from(d: DeadDelivery) -> Self {
        Self {
            delivery_id: d.id,
            campaign_id: d.campaign_id,
            person_id: d.person_id,
            channel: d.channel,
            attempts: d.attempts,
            reason: d.last_error,
            dead_at: d.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// Deliveries whose attempts ran out, with the reason.
#[utoipa::path(get, path = "/v1/dead-letters", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterPage), (status = 400, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    query: Result<Query<DeadLetterQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest {
        code: "invalid_query",
        message: e.body_text(),
    })?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    let rows = state
        .store
        .dead_deliveries(q.campaign_id, q.after, limit)
        .await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(DeadLetterPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// Either the deliveries to replay, or a whole campaign's dead letters.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub delivery_ids: Option<Vec<i64>>,
    pub campaign_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    pub replayed: u64,
}

/// Sends dead deliveries again, with a fresh attempt budget. By campaign, it also evaluates
/// again a campaign whose evaluation was given up (`evaluation_error`).
#[utoipa::path(post, path = "/v1/dead-letters/replay", request_body = ReplayRequest,
    responses((status = 202, body = ReplayResult), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn replay_dead_letters(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, Json<ReplayResult>), ApiError> {
    let selection = match (body.delivery_ids, body.campaign_id) {
        (Some(ids), None) if !ids.is_empty() && ids.len() <= 10_000 => {
            ReplaySelection::Deliveries(ids)
        }
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "delivery_ids",
                "give between 1 and 10000 ids",
            ))
        }
        (None, Some(c)) => ReplaySelection::Campaign(c),
        _ => {
            return Err(ApiError::invalid(
                "delivery_ids",
                "give either delivery_ids or campaign_id",
            ))
        }
    };
    let replayed = state
        .store
        .replay_dead(&selection, Topology::EVALUATE_KEY)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(ReplayResult { replayed })))
}
