//! Conversation templates (seed 000): the questions of a conversation, whether it may be
//! pushed ("Permission to conduct"), and who conducts it with the user. Made, listed, read
//! and changed; pushed with `/v1/pushes`.

use super::{required_text, AppState};
use crate::api_error::{ErrorBody, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use pushfleet_domain::{PermissionLabel, Text};
use pushfleet_store::{
    ConversationQuestion, ConversationTemplate, Labelled, NewConversationTemplate,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const MAX_QUESTIONS: usize = 50;
const MAX_QUESTION_CHARS: usize = 2000;
const MAX_QUESTION_ID_CHARS: usize = 64;

/// Who conducts the conversation with the pushed user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConductedBy {
    TeamLeaders,
    Coaches,
    /// Every team leader and every coach of the user.
    Both,
}

impl ConductedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConductedBy::TeamLeaders => "team_leaders",
            ConductedBy::Coaches => "coaches",
            ConductedBy::Both => "both",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::TeamLeaders, Self::Coaches, Self::Both]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// One prompt of the conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionInput {
    /// 1 to 64 of `a-z`, `0-9`, `_`, `-`; unique in the template.
    #[schema(value_type = String)]
    pub id: Text,
    /// 1 to 2000 characters.
    #[schema(value_type = String)]
    pub text: Text,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationTemplate {
    #[schema(value_type = String)]
    pub name: Text,
    /// 1 to 50 prompts, in the order of the conversation.
    pub questions: Vec<QuestionInput>,
    /// Seed 000's "Permission to conduct": only such a template can be pushed (default false).
    #[serde(default)]
    pub may_be_pushed: bool,
    pub conducted_by: ConductedBy,
    /// Permission labels (seed 003); a limited caller gives only labels they hold, and gets
    /// theirs when absent.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// A change: fields left out stay (`questions` is replaced whole). Pushes already made keep
/// the `conducted_by` they were made with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationTemplate {
    #[schema(value_type = Option<String>)]
    pub name: Option<Text>,
    pub questions: Option<Vec<QuestionInput>>,
    pub may_be_pushed: Option<bool>,
    pub conducted_by: Option<ConductedBy>,
    pub labels: Option<Vec<PermissionLabel>>,
}

#[derive(Serialize, ToSchema)]
pub struct QuestionView {
    pub id: String,
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationTemplateView {
    pub id: Uuid,
    pub name: String,
    pub questions: Vec<QuestionView>,
    pub may_be_pushed: bool,
    pub conducted_by: ConductedBy,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ConversationTemplate> for ConversationTemplateView {
    fn from(t: ConversationTemplate) -> Self {
        Self {
            id: t.id,
            name: t.name,
            questions: t
                .questions
                .0
                .into_iter()
                .map(|q| QuestionView {
                    id: q.id,
                    text: q.text,
                })
                .collect(),
            may_be_pushed: t.may_be_pushed,
            conducted_by: ConductedBy::parse(&t.conducted_by).unwrap_or(ConductedBy::Both),
            labels: t.labels,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

fn checked_questions(
    errors: &mut Vec<FieldError>,
    questions: Vec<QuestionInput>,
) -> Vec<ConversationQuestion> {
    if questions.is_empty() || questions.len() > MAX_QUESTIONS {
        errors.push(FieldError {
            field: "questions".into(),
            message: format!("give 1 to {MAX_QUESTIONS} questions"),
        });
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(questions.len());
    for (i, q) in questions.into_iter().enumerate() {
        let id = q.id.as_str();
        let id_ok = !id.is_empty()
            && id.len() <= MAX_QUESTION_ID_CHARS
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !id_ok {
            errors.push(FieldError {
                field: format!("questions[{i}].id"),
                message: format!("1 to {MAX_QUESTION_ID_CHARS} of a-z, 0-9, _ and -"),
            });
        } else if !seen.insert(id.to_owned()) {
            errors.push(FieldError {
                field: format!("questions[{i}].id"),
                message: "given twice".into(),
            });
        }
        let text = required_text(
            errors,
            format!("questions[{i}].text"),
            &q.text,
            MAX_QUESTION_CHARS,
        );
        out.push(ConversationQuestion {
            id: id.to_owned(),
            text,
        });
    }
    out
}

#[utoipa::path(post, path = "/v1/conversation-templates", request_body = CreateConversationTemplate,
    responses((status = 201, body = ConversationTemplateView), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a permission label the caller does not hold"),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_conversation_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateConversationTemplate>,
) -> Result<(StatusCode, Json<ConversationTemplateView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    let questions = checked_questions(&mut errors, body.questions);
    ApiError::check(errors)?;
    let stored = state
        .store
        .create_conversation_template(&NewConversationTemplate {
            name,
            questions,
            may_be_pushed: body.may_be_pushed,
            conducted_by: body.conducted_by.as_str().into(),
            labels,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

#[utoipa::path(get, path = "/v1/conversation-templates/{id}",
    params(("id" = Uuid, Path, description = "The template's id")),
    responses((status = 200, body = ConversationTemplateView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_conversation_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ConversationTemplateView>, ApiError> {
    principal
        .visible(&state.store, Labelled::ConversationTemplate, id)
        .await?;
    Ok(Json(
        state.store.get_conversation_template(id).await?.into(),
    ))
}

#[utoipa::path(patch, path = "/v1/conversation-templates/{id}", request_body = UpdateConversationTemplate,
    params(("id" = Uuid, Path, description = "The template's id")),
    responses((status = 200, body = ConversationTemplateView), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "a permission label the caller does not hold"),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn update_conversation_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateConversationTemplate>,
) -> Result<Json<ConversationTemplateView>, ApiError> {
    principal
        .visible(&state.store, Labelled::ConversationTemplate, id)
        .await?;
    let current = state.store.get_conversation_template(id).await?;
    let labels = match body.labels {
        Some(l) => principal.labels_for(Some(l))?,
        None => current.labels,
    };
    let mut errors = Vec::new();
    let name = match body.name {
        Some(n) => required_text(&mut errors, "name".into(), &n, 200),
        None => current.name,
    };
    let questions = match body.questions {
        Some(q) => checked_questions(&mut errors, q),
        None => current.questions.0,
    };
    ApiError::check(errors)?;
    let new = NewConversationTemplate {
        name,
        questions,
        may_be_pushed: body.may_be_pushed.unwrap_or(current.may_be_pushed),
        conducted_by: body
            .conducted_by
            .map_or(current.conducted_by, |c| c.as_str().into()),
        labels,
    };
    Ok(Json(
        state
            .store
            .update_conversation_template(id, &new)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConversationTemplateQuery {
    /// Only templates whose name contains this (case-insensitive).
    #[param(value_type = Option<String>)]
    pub q: Option<Text>,
    /// Only templates that may (true) or may not (false) be pushed.
    pub may_be_pushed: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationTemplatePage {
    pub conversation_templates: Vec<ConversationTemplateView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/conversation-templates", params(ConversationTemplateQuery),
    responses((status = 200, body = ConversationTemplatePage), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list_conversation_templates(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<ConversationTemplateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConversationTemplatePage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 50)?;
    let visible = principal.list_filter();
    let found = state
        .store
        .list_conversation_templates(
            limit + 1,
            q.before,
            visible.as_deref(),
            q.q.as_deref(),
            q.may_be_pushed,
        )
        .await?;
    let (conversation_templates, next_before) =
        super::keyset_page(found, limit, ConversationTemplateView::from, |t| t.id);
    Ok(Json(ConversationTemplatePage {
        conversation_templates,
        next_before,
    }))
}
