//! Surveys (seed 001, "Survey campaigns"): made, listed, read, and changed until a campaign
//! sends one (then 409: the answers must be to the questions people were shown). A campaign
//! names a survey instead of a template; its report is in `report`.

pub mod answers;
pub mod report;

use super::{required_text, AppState};
use crate::api_error::{ErrorBody, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::routes::campaigns::actor;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use pushfleet_domain::survey::{check_questions, Question};
use pushfleet_domain::survey_card::{survey_card, survey_template, MAX_SURVEY_CARD_BYTES};
use pushfleet_domain::{PermissionLabel, TemplateError, Text};
use pushfleet_store::{Labelled, NewSurvey, StoredSurvey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSurvey {
    /// Also the card's title; may use placeholders.
    pub name: Text,
    /// 1 to 30 questions: `single_choice` and `multiple_choice` (2 to 20 `choices`, each an
    /// `id` and a `label`), `rating` (`min` 0 or 1, `max` 2 to 10), `free_text`.
    pub questions: Vec<Question>,
    /// Permission labels (seed 003): who, of the operators limited to labels, may see and
    /// change it. A limited caller gives only labels they hold, and gets theirs when absent.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// Who made or last changed a survey.
#[derive(Serialize, ToSchema)]
pub struct SurveyActor {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SurveyView {
    pub id: Uuid,
    pub name: String,
    pub questions: Vec<Question>,
    pub labels: Vec<String>,
    pub created_by: Option<SurveyActor>,
    pub updated_by: Option<SurveyActor>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a campaign first sent it; from then on it cannot be changed.
    pub first_sent_at: Option<DateTime<Utc>>,
}

fn survey_actor(id: Option<Uuid>, name: Option<String>) -> Option<SurveyActor> {
    Some(SurveyActor {
        id: id?,
        name: name.unwrap_or_default(),
    })
}

impl From<StoredSurvey> for SurveyView {
    fn from(s: StoredSurvey) -> Self {
        Self {
            id: s.id,
            name: s.name,
            questions: s.questions.0,
            labels: s.labels,
            created_by: survey_actor(s.created_by_id, s.created_by_name),
            updated_by: survey_actor(s.updated_by_id, s.updated_by_name),
            created_at: s.created_at,
            updated_at: s.updated_at,
            first_sent_at: s.first_sent_at,
        }
    }
}

/// Checks a survey as it is to be stored: the name, the questions, and the card they make
/// (Teams' rules, the placeholders, the size of a Teams message).
fn checked(
    name: &Text,
    questions: Vec<Question>,
    labels: Vec<String>,
) -> Result<NewSurvey, ApiError> {
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), name, 200);
    if let Err(problems) = check_questions(&questions) {
        errors.extend(problems.into_iter().map(|p| FieldError {
            field: p.field,
            message: p.message,
        }));
    }
    ApiError::check(errors)?;
    let card = survey_card(&name, &questions, Uuid::nil(), Uuid::nil());
    if card.to_string().len() > MAX_SURVEY_CARD_BYTES {
        return Err(ApiError::invalid(
            "questions",
            format!("the survey's card would be over {MAX_SURVEY_CARD_BYTES} bytes, more than Teams carries; shorten it"),
        ));
    }
    if let Err(e) = survey_template(&name, &card) {
        // Placeholders are the one thing the questions' own checks leave to the template.
        let field = match &e {
            TemplateError::UnknownPlaceholder { field: "body", .. }
            | TemplateError::BadFallback { field: "body", .. }
            | TemplateError::Unclosed { field: "body", .. } => "name",
            _ => "questions",
        };
        return Err(ApiError::invalid(field, e.to_string()));
    }
    Ok(NewSurvey {
        name,
        questions,
        labels,
    })
}

#[utoipa::path(post, path = "/v1/surveys", request_body = CreateSurvey,
    responses((status = 201, body = SurveyView), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a permission label the caller does not hold"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_survey(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateSurvey>,
) -> Result<(StatusCode, Json<SurveyView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let new = checked(&body.name, body.questions, labels)?;
    let stored = state.store.create_survey(&new, &actor(&principal)).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// A change to a survey that no campaign has sent: fields left out stay as they are
/// (`questions` is replaced whole).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSurvey {
    pub name: Option<Text>,
    pub questions: Option<Vec<Question>>,
    /// New permission labels; a limited caller gives only labels they hold.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// Changes a survey; 409 once a campaign has sent it.
#[utoipa::path(patch, path = "/v1/surveys/{id}", request_body = UpdateSurvey,
    params(("id" = Uuid, Path, description = "The survey's id")),
    responses((status = 200, body = SurveyView), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a permission label the caller does not hold"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "a campaign has sent the survey"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn update_survey(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateSurvey>,
) -> Result<Json<SurveyView>, ApiError> {
    principal
        .visible(&state.store, Labelled::Survey, id)
        .await?;
    let current = state.store.get_survey(id).await?;
    if current.first_sent_at.is_some() {
        return Err(ApiError::Conflict(pushfleet_store::SURVEY_SENT.into()));
    }
    let labels = match body.labels {
        Some(l) => principal.labels_for(Some(l))?,
        None => current.labels.clone(),
    };
    let name = match body.name {
        Some(n) => n,
        None => Text::parse(current.name).map_err(|e| ApiError::Internal(e.into()))?,
    };
    let questions = body.questions.unwrap_or(current.questions.0);
    let new = checked(&name, questions, labels)?;
    Ok(Json(
        state
            .store
            .update_survey(id, &new, &actor(&principal))
            .await?
            .into(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SurveyQuery {
    /// Only surveys whose name contains this (case-insensitive).
    #[param(value_type = Option<String>)]
    pub q: Option<Text>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct SurveyPage {
    pub surveys: Vec<SurveyView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

/// Surveys, newest first.
#[utoipa::path(get, path = "/v1/surveys", params(SurveyQuery),
    responses((status = 200, body = SurveyPage), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list_surveys(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<SurveyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SurveyPage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 50)?;
    let found = state
        .store
        .list_surveys(
            limit + 1,
            q.before,
            principal.list_filter().as_deref(),
            q.q.as_deref(),
        )
        .await?;
    let (surveys, next_before) = super::keyset_page(found, limit, SurveyView::from, |s| s.id);
    Ok(Json(SurveyPage {
        surveys,
        next_before,
    }))
}

#[utoipa::path(get, path = "/v1/surveys/{id}", params(("id" = Uuid, Path, description = "The survey's id")),
    responses((status = 200, body = SurveyView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_survey(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SurveyView>, ApiError> {
    let survey = state.store.get_survey(id).await?;
    if !principal.sees(&survey.labels) {
        return Err(ApiError::NotFound("survey"));
    }
    Ok(Json(survey.into()))
}
