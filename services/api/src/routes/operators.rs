//! `/v1/me` (who am I, for every caller) and `/v1/operators` (admins): the operators who
//! signed in with the identity provider, each with the role and labels of their last
//! sign-in, the person of the directory they are, and their owner scope.

use super::AppState;
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::{Principal, PrincipalKind, Role};
use crate::ApiError;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use pushfleet_store::{Operator, OperatorChange};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The caller, as the api sees them.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The operator's or the API key's id.
    pub id: Uuid,
    pub kind: PrincipalKind,
    pub name: String,
    pub role: Role,
    /// The permission labels the caller is limited to; absent: not limited.
    pub labels: Option<Vec<String>>,
    /// The audience of the people the caller's workflows may reach; absent: everyone.
    pub scope_audience_id: Option<Uuid>,
    /// Every permission the role holds.
    pub permissions: Vec<String>,
}

#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = Me)))]
#[tracing::instrument(skip_all)]
pub async fn me(Extension(principal): Extension<Principal>) -> Json<Me> {
    let permissions = crate::identity::OPERATIONS
        .iter()
        .filter_map(|(_, _, access)| match access {
            crate::identity::Access::Requires(p) if principal.role.allows(*p) => {
                Some(p.as_str().to_owned())
            }
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Json(Me {
        id: principal.id,
        kind: principal.kind,
        labels: principal.label_limit().map(<[String]>::to_vec),
        name: principal.name,
        role: principal.role,
        scope_audience_id: principal.scope_audience_id,
        permissions,
    })
}

#[derive(Serialize, ToSchema)]
pub struct OperatorView {
    pub id: Uuid,
    /// The identity provider that signs their tokens, and their id there.
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub email: Option<String>,
    /// As of their last sign-in.
    #[schema(value_type = Role)]
    pub role: String,
    /// As of their last sign-in; absent: not limited.
    pub labels: Option<Vec<String>>,
    /// The person of the directory this operator is (found by e-mail at first sign-in).
    pub person_id: Option<Uuid>,
    /// Owner scope: the audience of the people their workflows may reach.
    pub scope_audience_id: Option<Uuid>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl From<Operator> for OperatorView {
    fn from(o: Operator) -> Self {
        Self {
            id: o.id,
            issuer: o.issuer,
            subject: o.subject,
            name: o.name,
            email: o.email,
            role: o.role,
            labels: o.labels,
            person_id: o.person_id,
            scope_audience_id: o.scope_audience_id,
            first_seen_at: o.first_seen_at,
            last_seen_at: o.last_seen_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OperatorPage {
    pub operators: Vec<OperatorView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperatorPageQuery {
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

/// Operators, most recently seen first.
#[utoipa::path(get, path = "/v1/operators", params(OperatorPageQuery),
    responses((status = 200, body = OperatorPage)))]
#[tracing::instrument(skip_all)]
pub async fn list_operators(
    State(state): State<AppState>,
    query: Result<Query<OperatorPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OperatorPage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 100)?;
    let found = state.store.list_operators(limit + 1, q.before).await?;
    let (operators, next_before) = super::keyset_page(found, limit, OperatorView::from, |o| o.id);
    Ok(Json(OperatorPage {
        operators,
        next_before,
    }))
}

#[utoipa::path(get, path = "/v1/operators/{id}",
    params(("id" = Uuid, Path, description = "The operator's id")),
    responses((status = 200, body = OperatorView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get_operator(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<OperatorView>, ApiError> {
    Ok(Json(state.store.get_operator(id).await?.into()))
}

/// What an admin sets on an operator: fields left out stay; null clears.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOperator {
    /// The person of the directory this operator is.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub person_id: Option<Option<Uuid>>,
    /// Owner scope (seed 003): the audience of the people their workflows may reach; null:
    /// everyone.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub scope_audience_id: Option<Option<Uuid>>,
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`, the default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

/// Links an operator to a person, or sets their owner scope.
#[utoipa::path(patch, path = "/v1/operators/{id}", request_body = UpdateOperator,
    params(("id" = Uuid, Path, description = "The operator's id")),
    responses((status = 200, body = OperatorView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, body))]
pub async fn update_operator(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateOperator>,
) -> Result<Json<OperatorView>, ApiError> {
    let change = OperatorChange {
        person_id: body.person_id,
        scope_audience_id: body.scope_audience_id,
    };
    Ok(Json(state.store.update_operator(id, &change).await?.into()))
}
