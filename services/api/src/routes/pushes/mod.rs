//! Pushes (seed 000): a conversation template pushed to a fixed or dynamic list of people,
//! from a start day, with a deadline, until closed. Made, listed, read, changed and closed
//! here; users and their follow-up in `users` and `follow_up`. The start (the freeze of a
//! dynamic list and the notifications) is the scheduler's, in the next part.

pub mod feed;
pub mod follow_up;
pub mod users;

use super::audiences::checked_criteria;
use super::{required_text, AppState};
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Days, NaiveDate, Utc};
use pushfleet_domain::criteria::CriteriaJson;
use pushfleet_domain::{PermissionLabel, Text};
use pushfleet_store::{Labelled, NewPush, Push, PushChange, PushCounts, PushFilter, PushStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How far ahead a push may start, and how long after its start its deadline may be.
const MAX_DAYS_AHEAD: u64 = 366;
/// Hand-picked people per request.
pub const MAX_PEOPLE: usize = 10_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePush {
    /// A conversation template that may be pushed (422 otherwise).
    pub template_id: Uuid,
    #[schema(value_type = String)]
    pub name: Text,
    /// The start day: today or later (up to a year ahead).
    pub start_date: NaiveDate,
    /// A reminder to finish by then, not an end: not before the start, up to a year after.
    pub deadline: NaiveDate,
    /// A fixed list: hand-picked people (may be empty, to assign later). Give this or
    /// `criteria`.
    pub person_ids: Option<Vec<Uuid>>,
    /// A dynamic list: criteria in the audiences' AND/OR format, evaluated on the start day.
    #[schema(value_type = Object)]
    pub criteria: Option<CriteriaJson>,
    /// Permission labels (seed 003); a limited caller gives only labels they hold.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// A change: fields left out stay. The start day and the list change only while the push
/// is scheduled; the method (fixed or dynamic) only while no user is assigned.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePush {
    #[schema(value_type = Option<String>)]
    pub name: Option<Text>,
    pub start_date: Option<NaiveDate>,
    pub deadline: Option<NaiveDate>,
    pub labels: Option<Vec<PermissionLabel>>,
    /// New criteria (the push becomes or stays dynamic).
    #[schema(value_type = Option<Object>)]
    pub criteria: Option<CriteriaJson>,
    /// A new hand-picked list replacing the old one (the push becomes or stays fixed).
    pub person_ids: Option<Vec<Uuid>>,
}

/// Completion: the push's users by follow-up status.
#[derive(Serialize, ToSchema)]
pub struct PushCountsView {
    pub users: i64,
    pub not_planned: i64,
    pub planned: i64,
    pub conducted: i64,
}

impl From<PushCounts> for PushCountsView {
    fn from(c: PushCounts) -> Self {
        Self {
            users: c.users,
            not_planned: c.not_planned,
            planned: c.planned,
            conducted: c.conducted,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PushView {
    pub id: Uuid,
    pub template_id: Uuid,
    pub name: String,
    /// `team_leaders`, `coaches` or `both`: the template's setting when the push was made.
    pub conducted_by: String,
    pub start_date: NaiveDate,
    pub deadline: NaiveDate,
    /// `fixed` or `dynamic`.
    pub method: String,
    #[schema(value_type = Option<Object>)]
    pub criteria: Option<serde_json::Value>,
    pub labels: Vec<String>,
    /// `scheduled`, `started` or `closed`.
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Users and completion (on a single push; absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<PushCountsView>,
}

impl From<Push> for PushView {
    fn from(p: Push) -> Self {
        Self {
            id: p.id,
            template_id: p.template_id,
            name: p.name,
            conducted_by: p.conducted_by,
            start_date: p.start_date,
            deadline: p.deadline,
            method: p.method,
            criteria: p.criteria,
            labels: p.labels,
            status: p.status,
            started_at: p.started_at,
            closed_at: p.closed_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
            counts: None,
        }
    }
}

pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn check_start(start: NaiveDate) -> Result<(), ApiError> {
    let today = today();
    if start < today {
        return Err(ApiError::invalid(
            "start_date",
            format!("must be today ({today}) or later"),
        ));
    }
    if today.checked_add_days(Days::new(MAX_DAYS_AHEAD)) < Some(start) {
        return Err(ApiError::invalid(
            "start_date",
            format!("must be at most {MAX_DAYS_AHEAD} days ahead"),
        ));
    }
    Ok(())
}

fn check_deadline(start: NaiveDate, deadline: NaiveDate) -> Result<(), ApiError> {
    if deadline < start {
        return Err(ApiError::invalid(
            "deadline",
            format!("must not be before the start date ({start})"),
        ));
    }
    if start.checked_add_days(Days::new(MAX_DAYS_AHEAD)) < Some(deadline) {
        return Err(ApiError::invalid(
            "deadline",
            format!("must be at most {MAX_DAYS_AHEAD} days after the start date"),
        ));
    }
    Ok(())
}

fn check_people(ids: &[Uuid]) -> Result<(), ApiError> {
    if ids.len() > MAX_PEOPLE {
        return Err(ApiError::invalid(
            "person_ids",
            format!("at most {MAX_PEOPLE} per request; add more with POST /v1/pushes/{{id}}/users"),
        ));
    }
    Ok(())
}

/// The push, when the caller's labels reach it (404 otherwise, as if it did not exist).
pub(crate) async fn visible_push(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<Push, ApiError> {
    let push = state.store.get_push(id).await?;
    if !principal.sees(&push.labels) {
        return Err(ApiError::NotFound("push"));
    }
    Ok(push)
}

#[utoipa::path(post, path = "/v1/pushes", request_body = CreatePush,
    responses((status = 201, body = PushView), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a permission label the caller does not hold"),
              (status = 422, body = ErrorBody, description = "bad input, or a template that may not be pushed")))]
#[tracing::instrument(skip_all)]
pub async fn create_push(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreatePush>,
) -> Result<(StatusCode, Json<PushView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    ApiError::check(errors)?;
    check_start(body.start_date)?;
    check_deadline(body.start_date, body.deadline)?;
    principal
        .visible(
            &state.store,
            Labelled::ConversationTemplate,
            body.template_id,
        )
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => {
                ApiError::invalid("template_id", "no conversation template with this id")
            }
            other => other,
        })?;
    let (criteria, person_ids) = match (body.person_ids, body.criteria) {
        (Some(ids), None) => {
            check_people(&ids)?;
            (None, ids)
        }
        (None, Some(value)) => {
            let criteria = checked_criteria(&state, &principal, &value.0).await?;
            (Some(criteria.to_json()), Vec::new())
        }
        _ => {
            return Err(ApiError::invalid(
                "person_ids",
                "give either person_ids (a fixed list) or criteria (a dynamic list)",
            ))
        }
    };
    let push = state
        .store
        .create_push(&NewPush {
            template_id: body.template_id,
            name,
            start_date: body.start_date,
            deadline: body.deadline,
            criteria,
            person_ids,
            labels,
        })
        .await?;
    let counts = state.store.push_counts(push.id).await?;
    let mut view = PushView::from(push);
    view.counts = Some(counts.into());
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/v1/pushes/{id}", params(("id" = Uuid, Path, description = "The push's id")),
    responses((status = 200, body = PushView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_push(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PushView>, ApiError> {
    let push = visible_push(&state, &principal, id).await?;
    let counts = state.store.push_counts(id).await?;
    let mut view = PushView::from(push);
    view.counts = Some(counts.into());
    Ok(Json(view))
}

#[utoipa::path(patch, path = "/v1/pushes/{id}", request_body = UpdatePush,
    params(("id" = Uuid, Path, description = "The push's id")),
    responses((status = 200, body = PushView), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a permission label the caller does not hold"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "closed, started, or the method is locked by assigned users"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn update_push(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdatePush>,
) -> Result<Json<PushView>, ApiError> {
    let current = visible_push(&state, &principal, id).await?;
    let labels = body
        .labels
        .map(|l| principal.labels_for(Some(l)))
        .transpose()?;
    let mut errors = Vec::new();
    let name = body
        .name
        .map(|n| required_text(&mut errors, "name".into(), &n, 200));
    ApiError::check(errors)?;
    if body.criteria.is_some() && body.person_ids.is_some() {
        return Err(ApiError::invalid(
            "person_ids",
            "give either person_ids (a fixed list) or criteria (a dynamic list)",
        ));
    }
    // A start day already in the past is not refused when left as it is.
    if let Some(start) = body.start_date {
        if current.status() == PushStatus::Scheduled {
            check_start(start)?;
        }
    }
    if let Some(deadline) = body.deadline {
        check_deadline(body.start_date.unwrap_or(current.start_date), deadline)?;
    }
    if let Some(ids) = &body.person_ids {
        check_people(ids)?;
    }
    let criteria = match body.criteria {
        Some(value) => Some(
            checked_criteria(&state, &principal, &value.0)
                .await?
                .to_json(),
        ),
        None => None,
    };
    let change = PushChange {
        name,
        start_date: body.start_date,
        deadline: body.deadline,
        labels,
        criteria,
        person_ids: body.person_ids,
    };
    let push = state.store.update_push(id, &change).await?;
    let counts = state.store.push_counts(id).await?;
    let mut view = PushView::from(push);
    view.counts = Some(counts.into());
    Ok(Json(view))
}

/// Closes the push: nothing is added, changed or sent after; its results stay readable.
#[utoipa::path(post, path = "/v1/pushes/{id}/close", params(("id" = Uuid, Path, description = "The push's id")),
    responses((status = 200, body = PushView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "already closed")))]
#[tracing::instrument(skip(state, principal))]
pub async fn close_push(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PushView>, ApiError> {
    visible_push(&state, &principal, id).await?;
    let push = state.store.close_push(id).await?;
    let counts = state.store.push_counts(id).await?;
    let mut view = PushView::from(push);
    view.counts = Some(counts.into());
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PushQuery {
    /// `scheduled`, `started` or `closed`.
    pub status: Option<String>,
    /// Only pushes of this conversation template.
    pub template_id: Option<Uuid>,
    /// Only pushes carrying this permission label.
    #[param(value_type = Option<String>)]
    pub label: Option<PermissionLabel>,
    /// Only pushes whose name contains this (case-insensitive).
    #[param(value_type = Option<String>)]
    pub q: Option<Text>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PushPage {
    pub pushes: Vec<PushView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/pushes", params(PushQuery),
    responses((status = 200, body = PushPage), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list_pushes(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PushQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PushPage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 50)?;
    let status = q
        .status
        .map(|s| {
            PushStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid("status", "one of scheduled, started, closed"))
        })
        .transpose()?;
    let filter = PushFilter {
        status,
        template_id: q.template_id,
        label: q.label.map(String::from),
        name_contains: q.q.map(Text::into_string),
        visible_labels: principal.list_filter(),
        before: q.before,
        limit: limit + 1,
    };
    let found = state.store.list_pushes(&filter).await?;
    let (pushes, next_before) = super::keyset_page(found, limit, PushView::from, |p| p.id);
    Ok(Json(PushPage {
        pushes,
        next_before,
    }))
}
