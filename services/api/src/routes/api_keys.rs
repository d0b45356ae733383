//! `/v1/api-keys`: keys for automation, each with a role; the secret is shown once, at
//! creation. `pushfleet-api api-key create` makes the first one.

use super::AppState;
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::api_key;
use crate::identity::Role;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use pushfleet_domain::permission_label::{self, PermissionLabel};
use pushfleet_domain::{Text, Timestamp};
use pushfleet_store::{ApiKey, NewApiKey, Store};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, e.g. `hr-sync`.
    pub name: Text,
    pub role: Role,
    /// The permission labels the key is limited to (seed 003); absent: not limited. A key
    /// with the organizer role is always limited (to none without labels).
    pub labels: Option<Vec<PermissionLabel>>,
    /// When it stops working; never when absent.
    pub expires_at: Option<Timestamp>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    #[schema(value_type = Role)]
    pub role: String,
    /// The labels the key is limited to; absent: not limited.
    pub labels: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            role: k.role,
            labels: k.labels,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new key, with its secret: shown this once, stored only as a hash.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// Use as `Authorization: Bearer <key>`.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyPage {
    pub api_keys: Vec<ApiKeyView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyPageQuery {
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

/// Creates a key and returns its secret; the CLI's `api-key create` and the endpoint share it.
pub async fn create_key(
    store: &Store,
    name: &str,
    role: Role,
    labels: Option<Vec<PermissionLabel>>,
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<Uuid>,
) -> Result<CreatedApiKey, ApiError> {
    let labels = labels
        .map(permission_label::normalise)
        .transpose()
        .map_err(|e| ApiError::invalid("labels", e.to_string()))?;
    let generated = api_key::generate();
    let key = store
        .create_api_key(&NewApiKey {
            name,
            prefix: &generated.prefix,
            secret_hash: &generated.hash,
            role: role.as_str(),
            labels: labels.as_deref(),
            expires_at,
            created_by,
        })
        .await?;
    tracing::info!(key = %key.id, name, %role, "API key created");
    Ok(CreatedApiKey {
        key: key.into(),
        secret: generated.secret,
    })
}

#[utoipa::path(post, path = "/v1/api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey)))]
#[tracing::instrument(skip_all)]
pub async fn create_api_key(
    State(state): State<AppState>,
    principal: Option<axum::Extension<crate::identity::Principal>>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let mut errors = Vec::new();
    let name = super::required_text(&mut errors, "name".into(), &body.name, 200);
    ApiError::check(errors)?;
    let created_by = principal.map(|p| p.id);
    let created = create_key(
        &state.store,
        &name,
        body.role,
        body.labels,
        body.expires_at.map(Timestamp::get),
        created_by,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/v1/api-keys", params(ApiKeyPageQuery),
    responses((status = 200, body = ApiKeyPage)))]
#[tracing::instrument(skip_all)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    query: Result<Query<ApiKeyPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ApiKeyPage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 100)?;
    let keys = state.store.list_api_keys(limit + 1, q.before).await?;
    let (api_keys, next_before) = super::keyset_page(keys, limit, ApiKeyView::from, |k| k.id);
    Ok(Json(ApiKeyPage {
        api_keys,
        next_before,
    }))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = state.store.revoke_api_key(id).await?;
    tracing::info!(key = %key.id, "API key revoked");
    Ok(Json(key.into()))
}
