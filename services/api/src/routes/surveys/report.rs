//! A survey campaign's report: per question, how many answered and what (counts per choice,
//! the ratings' distribution and average; free texts counted here, read in the CSV), and
//! respondents against deliveries; the CSV has one row per respondent.

use crate::api_error::ErrorBody;
use crate::csv_response::{csv_download, line, PageFn};
use crate::extract::ApiPath;
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use futures::FutureExt;
use pushfleet_domain::survey::{answer_cell, Question, QuestionKind};
use pushfleet_store::{Labelled, StoredSurvey};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ChoiceCount {
    pub id: String,
    pub label: String,
    /// People who chose it (a multiple choice counts each option chosen).
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RatingCount {
    pub value: i64,
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct QuestionReport {
    pub id: String,
    pub prompt: String,
    pub kind: QuestionKind,
    pub required: bool,
    /// Respondents who answered it.
    pub answered: i64,
    /// Single and multiple choice: every choice, in the survey's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<ChoiceCount>>,
    /// Rating: every value of the scale, lowest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratings: Option<Vec<RatingCount>>,
    /// Rating: the mean of the answers; absent when nobody answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct SurveyReport {
    pub campaign_id: Uuid,
    pub survey_id: Uuid,
    pub survey_name: String,
    /// People who answered (each counted once, whatever times they submitted).
    pub respondents: i64,
    /// Teams deliveries sent.
    pub delivered: i64,
    pub questions: Vec<QuestionReport>,
}

/// The survey of a campaign the caller may see; 404 when it sends no survey.
async fn campaign_survey(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<StoredSurvey, ApiError> {
    principal
        .visible(&state.store, Labelled::Campaign, id)
        .await?;
    let campaign = state.store.get_campaign(id).await?;
    let survey_id = campaign.survey_id.ok_or(ApiError::NotFound("survey"))?;
    Ok(state.store.get_survey(survey_id).await?)
}

fn question_report(
    q: &Question,
    answered: i64,
    items: Option<&std::collections::BTreeMap<String, i64>>,
) -> QuestionReport {
    let count = |key: &str| items.and_then(|i| i.get(key)).copied().unwrap_or(0);
    let mut report = QuestionReport {
        id: q.id.to_string(),
        prompt: q.prompt.trim().to_owned(),
        kind: q.kind,
        required: q.required,
        answered,
        choices: None,
        ratings: None,
        average: None,
    };
    match q.kind {
        QuestionKind::SingleChoice | QuestionKind::MultipleChoice => {
            report.choices = Some(
                q.choices
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| ChoiceCount {
                        id: c.id.to_string(),
                        label: c.label.trim().to_owned(),
                        count: count(&c.id),
                    })
                    .collect(),
            );
        }
        QuestionKind::Rating => {
            let ratings: Vec<RatingCount> = (q.min.unwrap_or(1)..=q.max.unwrap_or(5))
                .map(|value| RatingCount {
                    value,
                    count: count(&value.to_string()),
                })
                .collect();
            let (n, sum) = ratings.iter().fold((0i64, 0i64), |(n, s), r| {
                (n + r.count, s + r.count * r.value)
            });
            report.average = (n > 0).then(|| (sum as f64 / n as f64 * 100.0).round() / 100.0);
            report.ratings = Some(ratings);
        }
        QuestionKind::FreeText => {}
    }
    report
}

/// A survey campaign's answers, counted per question.
#[utoipa::path(get, path = "/v1/campaigns/{id}/survey",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, body = SurveyReport), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no such campaign, or it sends no survey")))]
#[tracing::instrument(skip(state, principal))]
pub async fn survey_report(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SurveyReport>, ApiError> {
    let survey = campaign_survey(&state, &principal, id).await?;
    let questions = &survey.questions.0;
    let free_text: Vec<String> = questions
        .iter()
        .filter(|q| q.kind == QuestionKind::FreeText)
        .map(|q| q.id.to_string())
        .collect();
    let tallies = state.store.survey_tallies(id, &free_text).await?;
    let questions = questions
        .iter()
        .map(|q| {
            question_report(
                q,
                tallies.answered.get(q.id.as_str()).copied().unwrap_or(0),
                tallies.items.get(q.id.as_str()),
            )
        })
        .collect();
    Ok(Json(SurveyReport {
        campaign_id: id,
        survey_id: survey.id,
        survey_name: survey.name,
        respondents: tallies.respondents,
        delivered: tallies.delivered,
        questions,
    }))
}

/// The answers as CSV, one row per respondent: `person_id`, `email`, `name`, `answered_at`
/// (the last submit), then one column per question, named by its id (choice labels, several
/// joined with `; `; the rating; the text). Cells a spreadsheet would run as a formula are
/// defused.
#[utoipa::path(get, path = "/v1/campaigns/{id}/survey.csv",
    params(("id" = Uuid, Path, description = "The campaign's id")),
    responses((status = 200, content_type = "text/csv", description = "one row per respondent"),
              (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no such campaign, or it sends no survey")))]
#[tracing::instrument(skip(state, principal))]
pub async fn survey_csv(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let survey = campaign_survey(&state, &principal, id).await?;
    let questions = survey.questions.0;
    let mut header: Vec<String> = ["person_id", "email", "name", "answered_at"]
        .map(str::to_owned)
        .to_vec();
    header.extend(questions.iter().map(|q| q.id.to_string()));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let store = state.store.clone();
    let questions = std::sync::Arc::new(questions);
    let next_page: PageFn<Uuid> = Box::new(move |after| {
        let store = store.clone();
        let questions = questions.clone();
        async move {
            let page = store.survey_answer_page(id, after, 1000).await?;
            let Some(last) = page.last().map(|r| r.person_id) else {
                return Ok(None);
            };
            let chunk: String = page
                .iter()
                .map(|r| {
                    let name = format!("{} {}", r.first_name, r.last_name);
                    let mut cells = vec![
                        r.person_id.to_string(),
                        r.email.clone().unwrap_or_default(),
                        name.trim().to_owned(),
                        r.answered_at.to_rfc3339(),
                    ];
                    cells.extend(
                        questions
                            .iter()
                            .map(|q| answer_cell(q, r.answers.0.get(q.id.as_str()))),
                    );
                    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
                    line(&cells)
                })
                .collect();
            Ok(Some((chunk, last)))
        }
        .boxed()
    });
    Ok(csv_download(
        &format!("campaign-{id}-survey.csv"),
        &header,
        next_page,
    ))
}
