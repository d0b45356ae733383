//! Follow-up in bulk, as the product that holds the conversations reports it: many users
//! at once, idempotent, a report per row, the valid rows applied together or not at all.

use super::users::FollowUpStatus;
use super::visible_push;
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::{Extension, Json};
use chrono::{Days, NaiveDate};
use pushfleet_store::FollowUp;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;
use uuid::Uuid;

pub const MAX_UPDATES: usize = 10_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpUpdate {
    pub person_id: Uuid,
    pub status: FollowUpStatus,
    /// The planned day, or the day it was conducted; none for `not_planned`.
    pub date: Option<NaiveDate>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequest {
    /// 1 to 10,000 updates.
    pub updates: Vec<FollowUpUpdate>,
}

#[derive(Serialize, ToSchema)]
pub struct FollowUpRowError {
    /// The update's position in `updates`, from 0.
    pub index: usize,
    pub person_id: Uuid,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct FollowUpReport {
    /// Rows that changed a user's follow-up.
    pub changed: u64,
    /// Valid rows that set what was already there.
    pub unchanged: u64,
    /// Rows refused, each in `errors`.
    pub failed: usize,
    pub errors: Vec<FollowUpRowError>,
}

/// The days a follow-up date may name: the product may plan or report within these.
fn date_problem(
    status: FollowUpStatus,
    date: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<String> {
    let earliest = NaiveDate::from_ymd_opt(2000, 1, 1)?;
    let latest = today.checked_add_days(Days::new(3 * 366))?;
    match (status, date) {
        (FollowUpStatus::NotPlanned, Some(_)) => Some("not_planned takes no date".into()),
        (FollowUpStatus::NotPlanned, None) => None,
        (_, None) => Some(format!("{} needs a date", status.as_str())),
        (_, Some(d)) if d < earliest || d > latest => {
            Some(format!("the date must be between {earliest} and {latest}"))
        }
        // A day ahead for time zones east of UTC.
        (FollowUpStatus::Conducted, Some(d)) if Some(d) > today.checked_add_days(Days::new(1)) => {
            Some("a conversation cannot be conducted in the future".into())
        }
        _ => None,
    }
}

#[utoipa::path(post, path = "/v1/pushes/{id}/follow-up", request_body = FollowUpRequest,
    params(("id" = Uuid, Path, description = "The push's id")),
    responses((status = 200, body = FollowUpReport, description = "the valid rows applied; the others reported"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the push is closed"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body), fields(updates = body.updates.len()))]
pub async fn set_follow_up(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<FollowUpRequest>,
) -> Result<Json<FollowUpReport>, ApiError> {
    if body.updates.is_empty() || body.updates.len() > MAX_UPDATES {
        return Err(ApiError::invalid(
            "updates",
            format!("give 1 to {MAX_UPDATES} updates"),
        ));
    }
    visible_push(&state, &principal, id).await?;
    let today = super::today();
    let mut errors = Vec::new();
    let mut valid = Vec::with_capacity(body.updates.len());
    let mut index_of = Vec::with_capacity(body.updates.len());
    let mut seen = HashSet::new();
    for (index, u) in body.updates.into_iter().enumerate() {
        let problem = if !seen.insert(u.person_id) {
            Some("this person is given twice; one update per person".into())
        } else {
            date_problem(u.status, u.date, today)
        };
        match problem {
            Some(message) => errors.push(FollowUpRowError {
                index,
                person_id: u.person_id,
                message,
            }),
            None => {
                index_of.push(index);
                valid.push(FollowUp {
                    person_id: u.person_id,
                    status: u.status.as_str(),
                    date: u.date,
                });
            }
        }
    }
    let applied = state.store.set_follow_up(id, &valid).await?;
    let unknown: HashSet<Uuid> = applied.unknown.into_iter().collect();
    for (i, f) in valid.iter().enumerate() {
        if unknown.contains(&f.person_id) {
            errors.push(FollowUpRowError {
                index: index_of[i],
                person_id: f.person_id,
                message: "not a user of this push".into(),
            });
        }
    }
    errors.sort_by_key(|e| e.index);
    Ok(Json(FollowUpReport {
        changed: applied.changed,
        unchanged: applied.unchanged,
        failed: errors.len(),
        errors,
    }))
}
