use super::{required_text, AppState};
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use pushfleet_store::Audience;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAudience {
    pub name: String,
    /// A fixed list of people; every id must exist.
    pub person_ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AudienceView {
    pub id: Uuid,
    pub name: String,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

impl From<Audience> for AudienceView {
    fn from(a: Audience) -> Self {
        Self {
            id: a.id,
            name: a.name,
            member_count: a.member_count,
            created_at: a.created_at,
        }
    }
}

#[utoipa::path(post, path = "/v1/audiences", request_body = CreateAudience,
    responses((status = 201, body = AudienceView), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(members = body.person_ids.len()))]
pub async fn create_audience(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAudience>,
) -> Result<(StatusCode, Json<AudienceView>), ApiError> {
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    ApiError::check(errors)?;
    if body.person_ids.is_empty() {
        return Err(ApiError::invalid(
            "person_ids",
            "an audience needs at least one person",
        ));
    }
    let audience = state.store.create_audience(&name, &body.person_ids).await?;
    Ok((StatusCode::CREATED, Json(audience.into())))
}

#[utoipa::path(get, path = "/v1/audiences/{id}",
    responses((status = 200, body = AudienceView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get_audience(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AudienceView>, ApiError> {
    Ok(Json(state.store.get_audience(id).await?.into()))
}
