//! A push's users (the seed's Users tab): who matches a dynamic push before its start
//! (not final), the users with their follow-up and conductors, as pages or CSV, and people
//! added by hand.

use super::{visible_push, MAX_PEOPLE};
use crate::api_error::ErrorBody;
use crate::csv_response::{csv_download, line, PageFn};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use futures::FutureExt;
use pushfleet_domain::criteria::Criteria;
use pushfleet_domain::Text;
use pushfleet_store::{Conductor, PushStatus, PushUser, PushUserFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// People per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The last id of the previous page.
    pub after: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewPerson {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PushPreview {
    /// false: who matches the criteria now; the list is evaluated again on the start day.
    /// true: the push's users (a fixed list, or a dynamic one frozen at the start).
    #[serde(rename = "final")]
    pub is_final: bool,
    pub count: i64,
    pub people: Vec<PreviewPerson>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/pushes/{id}/preview",
    params(("id" = Uuid, Path, description = "The push's id"), PreviewQuery),
    responses((status = 200, body = PushPreview), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, query))]
pub async fn preview_push(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Json<PushPreview>, ApiError> {
    let q = crate::routes::query(query)?;
    let limit = crate::routes::page_limit(q.limit, 50)?;
    let push = visible_push(&state, &principal, id).await?;
    if let (PushStatus::Scheduled, Some(json)) = (push.status(), &push.criteria) {
        let criteria = Criteria::parse(json).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!("stored criteria of push {id}: {e:?}"))
        })?;
        let preview = state
            .store
            .preview_criteria(&criteria, super::today(), limit + 1, q.after)
            .await?;
        let (people, next_after) = crate::routes::keyset_page(
            preview.first,
            limit,
            |m| PreviewPerson {
                id: m.id,
                first_name: m.first_name,
                last_name: m.last_name,
                email: m.email,
            },
            |p| p.id,
        );
        return Ok(Json(PushPreview {
            is_final: false,
            count: preview.count,
            people,
            next_after,
        }));
    }
    let counts = state.store.push_counts(id).await?;
    let filter = PushUserFilter {
        after: q.after,
        limit: limit + 1,
        ..Default::default()
    };
    let users = state
        .store
        .list_push_users(id, &push.conducted_by, &filter)
        .await?;
    let (people, next_after) = crate::routes::keyset_page(
        users,
        limit,
        |u| PreviewPerson {
            id: u.person_id,
            first_name: u.first_name,
            last_name: u.last_name,
            email: u.email,
        },
        |p| p.id,
    );
    Ok(Json(PushPreview {
        is_final: true,
        count: counts.users,
        people,
        next_after,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUsers {
    /// 1 to 10,000 people.
    pub person_ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PersonProblem {
    pub person_id: Uuid,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct AddedUsersView {
    /// Newly assigned.
    pub added: u64,
    /// Already users of the push: nothing changed for them.
    pub already_there: u64,
    /// Ids not added: unknown or inactive people.
    pub errors: Vec<PersonProblem>,
}

/// Adds people by hand: to a fixed push until it closes; to a dynamic one after its start,
/// whether they match its criteria or not. Adding someone already there does nothing.
#[utoipa::path(post, path = "/v1/pushes/{id}/users", request_body = AddUsers,
    params(("id" = Uuid, Path, description = "The push's id")),
    responses((status = 200, body = AddedUsersView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "closed, or a dynamic push before its start"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn add_users(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AddUsers>,
) -> Result<Json<AddedUsersView>, ApiError> {
    if body.person_ids.is_empty() || body.person_ids.len() > MAX_PEOPLE {
        return Err(ApiError::invalid(
            "person_ids",
            format!("give 1 to {MAX_PEOPLE} people"),
        ));
    }
    visible_push(&state, &principal, id).await?;
    let report = state.store.add_push_users(id, &body.person_ids).await?;
    let errors = report
        .unknown
        .into_iter()
        .map(|p| (p, "no person with this id"))
        .chain(
            report
                .inactive
                .into_iter()
                .map(|p| (p, "this person is not active")),
        )
        .map(|(person_id, m)| PersonProblem {
            person_id,
            message: m.into(),
        })
        .collect();
    Ok(Json(AddedUsersView {
        added: report.added,
        already_there: report.already_there,
        errors,
    }))
}

/// A follow-up status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    NotPlanned,
    /// Planned for a day.
    Planned,
    /// Conducted on a day.
    Conducted,
}

impl FollowUpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpStatus::NotPlanned => "not_planned",
            FollowUpStatus::Planned => "planned",
            FollowUpStatus::Conducted => "conducted",
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    /// Only users with this follow-up status.
    pub status: Option<FollowUpStatus>,
    /// Only users whose name or e-mail contains this (case-insensitive).
    #[param(value_type = Option<String>)]
    pub q: Option<Text>,
    /// The `next_after` of the previous page.
    pub after: Option<Uuid>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ConductorView {
    pub id: Uuid,
    /// `team_leader` or `coach`.
    pub kind: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

impl From<Conductor> for ConductorView {
    fn from(c: Conductor) -> Self {
        Self {
            id: c.id,
            kind: c.kind,
            first_name: c.first_name,
            last_name: c.last_name,
            email: c.email,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PushUserView {
    pub person_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// `list` (hand-picked before the start), `criteria` (frozen at the start) or `added`
    /// (by hand after the start).
    pub source: String,
    pub added_at: DateTime<Utc>,
    /// `not_planned`, `planned` or `conducted`.
    pub status: String,
    pub planned_on: Option<NaiveDate>,
    pub conducted_on: Option<NaiveDate>,
    /// Every team leader and/or coach who conducts the conversation, as the push says.
    pub conductors: Vec<ConductorView>,
}

impl From<PushUser> for PushUserView {
    fn from(u: PushUser) -> Self {
        Self {
            person_id: u.person_id,
            first_name: u.first_name,
            last_name: u.last_name,
            email: u.email,
            source: u.source,
            added_at: u.added_at,
            status: u.status,
            planned_on: u.planned_on,
            conducted_on: u.conducted_on,
            conductors: u.conductors.0.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PushUserPage {
    pub users: Vec<PushUserView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/pushes/{id}/users",
    params(("id" = Uuid, Path, description = "The push's id"), UsersQuery),
    responses((status = 200, body = PushUserPage), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, query))]
pub async fn list_users(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Json<PushUserPage>, ApiError> {
    let q = crate::routes::query(query)?;
    let limit = crate::routes::page_limit(q.limit, 50)?;
    let push = visible_push(&state, &principal, id).await?;
    let filter = PushUserFilter {
        status: q.status.map(|s| s.as_str().to_owned()),
        text: q.q.map(Text::into_string),
        after: q.after,
        limit: limit + 1,
    };
    let users = state
        .store
        .list_push_users(id, &push.conducted_by, &filter)
        .await?;
    let (users, next_after) =
        crate::routes::keyset_page(users, limit, PushUserView::from, |u| u.person_id);
    Ok(Json(PushUserPage { users, next_after }))
}

fn names(conductors: &[Conductor], kind: &str) -> String {
    conductors
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| {
            let name = format!("{} {}", c.first_name, c.last_name);
            match &c.email {
                Some(e) => format!("{} <{e}>", name.trim()),
                None => name.trim().to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The users tab as CSV (every user, streamed in pages; cells safe from formulas).
#[utoipa::path(get, path = "/v1/pushes/{id}/users.csv",
    params(("id" = Uuid, Path, description = "The push's id")),
    responses((status = 200, content_type = "text/csv",
               description = "person_id, first_name, last_name, email, source, status, planned_on, conducted_on, team_leaders, coaches"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn users_csv(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let push = visible_push(&state, &principal, id).await?;
    let store = state.store.clone();
    let conducted_by = push.conducted_by;
    let next_page: PageFn<Uuid> = Box::new(move |after| {
        let store = store.clone();
        let conducted_by = conducted_by.clone();
        async move {
            let filter = PushUserFilter {
                after,
                limit: 1000,
                ..Default::default()
            };
            let page = store.list_push_users(id, &conducted_by, &filter).await?;
            let Some(last) = page.last().map(|u| u.person_id) else {
                return Ok(None);
            };
            let chunk: String = page
                .iter()
                .map(|u| {
                    let day = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
                    line(&[
                        &u.person_id.to_string(),
                        &u.first_name,
                        &u.last_name,
                        u.email.as_deref().unwrap_or_default(),
                        &u.source,
                        &u.status,
                        &day(u.planned_on),
                        &day(u.conducted_on),
                        &names(&u.conductors.0, "team_leader"),
                        &names(&u.conductors.0, "coach"),
                    ])
                })
                .collect();
            Ok(Some((chunk, last)))
        }
        .boxed()
    });
    Ok(csv_download(
        &format!("push-{id}-users.csv"),
        &[
            "person_id",
            "first_name",
            "last_name",
            "email",
            "source",
            "status",
            "planned_on",
            "conducted_on",
            "team_leaders",
            "coaches",
        ],
        next_page,
    ))
}
