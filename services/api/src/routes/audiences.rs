//! Audiences: a fixed list of people, or criteria (seed 000) evaluated when asked; the
//! preview of who matches now, and snapshots frozen at a moment.

use super::{required_text, AppState};
use crate::api_error::{ErrorBody, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use pushfleet_domain::criteria::{Criteria, CriteriaJson};
use pushfleet_domain::{PermissionLabel, Text};
use pushfleet_store::{Audience, AudienceMember, Labelled, Preview, Snapshot};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const MAX_PAGE: i64 = 500;
const DEFAULT_PAGE: i64 = 50;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAudience {
    pub name: Text,
    /// A fixed list of people; every id must exist. Give this or `criteria`.
    pub person_ids: Option<Vec<Uuid>>,
    /// Criteria, e.g. `{"any": [{"all": [{"property": "department", "op": "equals",
    /// "value": "Marketing"}, {"property": "joining_date", "op": "within_last", "value":
    /// {"months": 6}}]}, {"property": "roles", "op": "has_role", "value": "trainer"}]}`.
    #[schema(value_type = Object)]
    pub criteria: Option<CriteriaJson>,
    /// Permission labels (seed 003): who, of the operators limited to labels, may see and
    /// change it. A limited caller gives only labels they hold, and gets theirs when absent.
    pub labels: Option<Vec<PermissionLabel>>,
}

#[derive(Serialize, ToSchema)]
pub struct AudienceView {
    pub id: Uuid,
    pub name: String,
    /// `fixed` or `dynamic`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub criteria: Option<serde_json::Value>,
    /// Members of a fixed audience (a dynamic one: see its preview).
    pub member_count: Option<i64>,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Audience> for AudienceView {
    fn from(a: Audience) -> Self {
        Self {
            id: a.id,
            name: a.name,
            kind: a.kind,
            criteria: a.criteria,
            member_count: a.member_count,
            labels: a.labels,
            created_at: a.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    #[schema(value_type = Object)]
    pub criteria: CriteriaJson,
    /// People per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The last id of the previous page.
    pub after: Option<Uuid>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// People per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The last id of the previous page.
    pub after: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
}

impl From<AudienceMember> for MemberView {
    fn from(m: AudienceMember) -> Self {
        Self {
            id: m.id,
            first_name: m.first_name,
            last_name: m.last_name,
            email: m.email,
            department: m.department,
            job_title: m.job_title,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PreviewView {
    /// Who matches now (not final: the campaign evaluates again on its start day).
    pub count: i64,
    /// The day relative dates were counted from.
    pub as_of: NaiveDate,
    pub people: Vec<MemberView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct SnapshotView {
    pub id: Uuid,
    pub audience_id: Uuid,
    pub member_count: i64,
    pub taken_at: DateTime<Utc>,
    /// A page of members (only on `GET /v1/snapshots/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people: Option<Vec<MemberView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<Uuid>,
}

impl From<Snapshot> for SnapshotView {
    fn from(s: Snapshot) -> Self {
        Self {
            id: s.id,
            audience_id: s.audience_id,
            member_count: s.member_count,
            taken_at: s.taken_at,
            people: None,
            next_after: None,
        }
    }
}

/// Criteria from a request: parsed, checked, and every person and segment they name found.
pub(crate) async fn checked_criteria(
    state: &AppState,
    principal: &Principal,
    value: &serde_json::Value,
) -> Result<Criteria, ApiError> {
    let criteria = Criteria::parse(value).map_err(|errors| {
        let details: Vec<FieldError> = errors
            .into_iter()
            .map(|e| FieldError {
                field: e.path,
                message: e.message,
            })
            .collect();
        ApiError::check(details)
            .err()
            .unwrap_or_else(|| ApiError::invalid("criteria", "not valid criteria"))
    })?;
    let (people, segments) = state.store.unknown_references(&criteria).await?;
    let mut details: Vec<FieldError> = people
        .into_iter()
        .map(|p| FieldError {
            field: "criteria".into(),
            message: format!("no person with id, e-mail or external id \"{p}\""),
        })
        .collect();
    // A segment the caller's labels do not reach is, to them, no segment.
    let mut hidden = Vec::new();
    if principal.label_limit().is_some() {
        for id in criteria.segment_ids() {
            if !segments.contains(&id)
                && principal
                    .visible(&state.store, Labelled::Segment, id)
                    .await
                    .is_err()
            {
                hidden.push(id);
            }
        }
    }
    details.extend(segments.into_iter().chain(hidden).map(|s| FieldError {
        field: "criteria".into(),
        message: format!("no segment with id {s}"),
    }));
    ApiError::check(details)?;
    Ok(criteria)
}

fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        )),
    }
}

fn page_query(q: Result<Query<PageQuery>, QueryRejection>) -> Result<PageQuery, ApiError> {
    super::query(q)
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Pages are asked for one row longer than `limit`: the extra row says a next page exists.
fn split_page(people: Vec<AudienceMember>, limit: i64) -> (Vec<AudienceMember>, Option<Uuid>) {
    super::keyset_page(people, limit, |m| m, |m| m.id)
}

fn preview_view(preview: Preview, limit: i64, as_of: NaiveDate) -> PreviewView {
    let (first, next_after) = split_page(preview.first, limit);
    PreviewView {
        count: preview.count,
        as_of,
        people: first.into_iter().map(MemberView::from).collect(),
        next_after,
    }
}

#[utoipa::path(post, path = "/v1/audiences", request_body = CreateAudience,
    responses((status = 201, body = AudienceView), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_audience(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateAudience>,
) -> Result<(StatusCode, Json<AudienceView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    ApiError::check(errors)?;
    let audience = match (body.person_ids, body.criteria) {
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::invalid(
                    "person_ids",
                    "an audience needs at least one person",
                ));
            }
            state.store.create_audience(&name, &ids, &labels).await?
        }
        (None, Some(value)) => {
            let criteria = checked_criteria(&state, &principal, &value.0).await?;
            state
                .store
                .create_dynamic_audience(&name, &criteria, &labels)
                .await?
        }
        _ => {
            return Err(ApiError::invalid(
                "person_ids",
                "give either person_ids (a fixed list) or criteria (a dynamic audience)",
            ))
        }
    };
    Ok((StatusCode::CREATED, Json(audience.into())))
}

#[utoipa::path(get, path = "/v1/audiences/{id}", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, body = AudienceView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_audience(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AudienceView>, ApiError> {
    let audience = state.store.get_audience(id).await?;
    if !principal.sees(&audience.labels) {
        return Err(ApiError::NotFound("audience"));
    }
    Ok(Json(audience.into()))
}

/// Who matches these criteria now: the count and the first page (seed 000's right-hand list).
#[utoipa::path(post, path = "/v1/audiences/preview", request_body = PreviewRequest,
    responses((status = 200, body = PreviewView), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn preview_criteria(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> Result<Json<PreviewView>, ApiError> {
    let limit = page_limit(body.limit)?;
    let criteria = checked_criteria(&state, &principal, &body.criteria.0).await?;
    let as_of = today();
    let preview = state
        .store
        .preview_criteria(&criteria, as_of, limit + 1, body.after)
        .await?;
    Ok(Json(preview_view(preview, limit, as_of)))
}

/// Who a saved audience reaches now.
#[utoipa::path(get, path = "/v1/audiences/{id}/preview", params(("id" = Uuid, Path, description = "The resource's id"), PageQuery),
    responses((status = 200, body = PreviewView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, query))]
pub async fn preview_audience(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<PreviewView>, ApiError> {
    let q = page_query(query)?;
    let limit = page_limit(q.limit)?;
    let audience = state.store.get_audience(id).await?;
    if !principal.sees(&audience.labels) {
        return Err(ApiError::NotFound("audience"));
    }
    let as_of = today();
    let criteria = match audience.criteria {
        Some(json) => Criteria::parse(&json).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "stored criteria of {id} do not parse: {e:?}"
            ))
        })?,
        None => {
            let preview = state.store.preview_fixed(id, limit + 1, q.after).await?;
            return Ok(Json(preview_view(preview, limit, as_of)));
        }
    };
    let preview = state
        .store
        .preview_criteria(&criteria, as_of, limit + 1, q.after)
        .await?;
    Ok(Json(preview_view(preview, limit, as_of)))
}

/// Evaluates the audience now and freezes who it reaches.
#[utoipa::path(post, path = "/v1/audiences/{id}/snapshots", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 201, body = SnapshotView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn freeze_audience(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<SnapshotView>), ApiError> {
    principal
        .visible(&state.store, Labelled::Audience, id)
        .await?;
    let snapshot = state.store.freeze_audience(id, today()).await?;
    Ok((StatusCode::CREATED, Json(snapshot.into())))
}

#[utoipa::path(get, path = "/v1/snapshots/{id}", params(("id" = Uuid, Path, description = "The resource's id"), PageQuery),
    responses((status = 200, body = SnapshotView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, query))]
pub async fn get_snapshot(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SnapshotView>, ApiError> {
    let q = page_query(query)?;
    let limit = page_limit(q.limit)?;
    let snapshot = state.store.get_snapshot(id).await?;
    if principal
        .visible(&state.store, Labelled::Audience, snapshot.audience_id)
        .await
        .is_err()
    {
        return Err(ApiError::NotFound("snapshot"));
    }
    let people = state.store.snapshot_members(id, limit + 1, q.after).await?;
    let (people, next_after) = split_page(people, limit);
    let mut view = SnapshotView::from(snapshot);
    view.people = Some(people.into_iter().map(MemberView::from).collect());
    view.next_after = next_after;
    Ok(Json(view))
}
