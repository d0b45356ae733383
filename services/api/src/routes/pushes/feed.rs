//! `GET /v1/people/{id}/feed` (seed 000): what the product's front end shows a person: the
//! conversation templates pushed to them and still open, with their deadline, and the
//! conversations they must plan as a team leader or coach. A closed push leaves both.

use crate::api_error::ErrorBody;
use crate::extract::ApiPath;
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use pushfleet_store::{FeedConversation, FeedTask};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A conversation template pushed to the person: their open task.
#[derive(Serialize, ToSchema)]
pub struct TaskView {
    pub push_id: Uuid,
    pub push_name: String,
    pub template_id: Uuid,
    pub template_name: String,
    /// Finish by then (a reminder, not an end: the template stays available after it).
    pub deadline: NaiveDate,
    pub started_at: Option<DateTime<Utc>>,
    /// not_planned, planned or conducted.
    pub status: String,
    pub planned_on: Option<NaiveDate>,
    pub conducted_on: Option<NaiveDate>,
}

impl From<FeedTask> for TaskView {
    fn from(t: FeedTask) -> Self {
        Self {
            push_id: t.push_id,
            push_name: t.push_name,
            template_id: t.template_id,
            template_name: t.template_name,
            deadline: t.deadline,
            started_at: t.started_at,
            status: t.status,
            planned_on: t.planned_on,
            conducted_on: t.conducted_on,
        }
    }
}

/// A conversation to plan and conduct with one of the pushes' users (the "Plan" action).
#[derive(Serialize, ToSchema)]
pub struct ConductView {
    pub push_id: Uuid,
    pub push_name: String,
    pub template_name: String,
    pub deadline: NaiveDate,
    pub person_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    /// What the person is to the user: team_leader or coach.
    pub as_kind: String,
    pub status: String,
    pub planned_on: Option<NaiveDate>,
    pub conducted_on: Option<NaiveDate>,
}

impl From<FeedConversation> for ConductView {
    fn from(c: FeedConversation) -> Self {
        Self {
            push_id: c.push_id,
            push_name: c.push_name,
            template_name: c.template_name,
            deadline: c.deadline,
            person_id: c.person_id,
            first_name: c.first_name,
            last_name: c.last_name,
            as_kind: c.as_kind,
            status: c.status,
            planned_on: c.planned_on,
            conducted_on: c.conducted_on,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FeedView {
    pub person_id: Uuid,
    /// Open tasks, nearest deadline first.
    pub tasks: Vec<TaskView>,
    /// Conversations to plan and conduct as a team leader or coach.
    pub to_conduct: Vec<ConductView>,
}

/// A person's feed: open conversation tasks and the conversations they conduct.
#[utoipa::path(get, path = "/v1/people/{id}/feed", params(("id" = Uuid, Path, description = "The person's id")),
    responses((status = 200, body = FeedView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn person_feed(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<FeedView>, ApiError> {
    // An unknown person is 404, not an empty feed.
    state.store.get_person(id).await?;
    let labels = principal.list_filter();
    let (tasks, conduct) = state.store.person_feed(id, labels.as_deref()).await?;
    Ok(Json(FeedView {
        person_id: id,
        tasks: tasks.into_iter().map(Into::into).collect(),
        to_conduct: conduct.into_iter().map(Into::into).collect(),
    }))
}
