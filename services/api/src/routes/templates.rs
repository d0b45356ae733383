use super::{required_text, AppState};
use crate::api_error::{ErrorBody, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use pushfleet_domain::{check_json_text, PermissionLabel, Text};
use pushfleet_domain::{TeamsFormat, Template, TemplateError};
use pushfleet_store::{NewTemplate, StoredTemplate};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    pub name: Text,
    /// E-mail subject; may use placeholders.
    #[serde(default)]
    pub subject: Text,
    /// Plain-text body, used by every channel. Placeholders: `{{first_name}}`,
    /// `{{last_name}}`, `{{full_name}}`, `{{email}}`, `{{phone}}`, the directory's
    /// `{{department}}`, `{{job_title}}`, `{{location}}`, `{{language}}`, `{{time_zone}}`,
    /// `{{external_id}}`, `{{joining_date}}` and `{{attributes.<key>}}`, and `[FIRSTNAME]`,
    /// `[LASTNAME]`, `[FULLNAME]`, `[EMAIL]`. A fallback for a missing or empty value:
    /// `{{first_name | "there"}}`.
    pub body: Text,
    /// Optional HTML body for e-mail; placeholder values and fallbacks are HTML-escaped.
    pub html: Option<Text>,
    /// How Teams shows it: `message` (default), `idea`, `success`, `important` (styled cards
    /// around the body) or `adaptive_card` (then `card` is required).
    pub teams_format: Option<TeamsFormat>,
    /// An Adaptive Card that Teams accepts: `"type": "AdaptiveCard"`, `"version"` 1.0 to 1.5,
    /// known element and action types with their required fields, unique input ids. Its
    /// string values may use placeholders (input ids excepted).
    #[schema(value_type = Option<Object>)]
    pub card: Option<CardJson>,
    /// Permission labels (seed 003): who, of the operators limited to labels, may see and
    /// change it. A limited caller gives only labels they hold, and gets theirs when absent.
    pub labels: Option<Vec<PermissionLabel>>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub id: Uuid,
    pub name: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub teams_format: TeamsFormat,
    #[schema(value_type = Option<Object>)]
    pub card: Option<serde_json::Value>,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredTemplate> for TemplateView {
    fn from(t: StoredTemplate) -> Self {
        let teams_format = t.teams_format();
        Self {
            id: t.id,
            name: t.name,
            subject: t.subject,
            body: t.body,
            teams_format,
            html: t.html,
            card: t.card,
            labels: t.labels,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// An e-mail subject line (RFC 5322 advises 78 characters a line; long ones fold).
pub const MAX_SUBJECT_BYTES: usize = 2_000;
/// The plain-text body: every channel's text.
pub const MAX_BODY_BYTES: usize = 100_000;
/// The HTML body of an e-mail.
pub const MAX_HTML_BYTES: usize = 1_000_000;
/// An Adaptive Card: a Teams message carries at most about 28 KB.
pub const MAX_CARD_BYTES: usize = 28_000;
/// A card as it arrives: 28 KB of JSON holds at most a few thousand values, so the parse
/// stops at 20,000 (memory bounded by that, not by the body).
pub type CardJson = pushfleet_domain::BoundedJson<20_000>;

/// The field errors for a template that does not parse: one per card problem, each naming
/// its path (`card.body[2].text`).
fn template_errors(e: TemplateError) -> Vec<FieldError> {
    let field = match &e {
        TemplateError::UnknownPlaceholder { field, .. }
        | TemplateError::BadFallback { field, .. }
        | TemplateError::Unclosed { field, .. }
        | TemplateError::Empty { field } => (*field).to_owned(),
        TemplateError::Card(_) => "card".to_owned(),
        TemplateError::InvalidCard(errors) => {
            return errors
                .0
                .iter()
                .map(|e| FieldError {
                    field: e.path.clone(),
                    message: e.problem.to_string(),
                })
                .collect()
        }
    };
    vec![FieldError {
        field,
        message: e.to_string(),
    }]
}

/// A template's content as asked for, checked: the bounds every channel keeps, the card,
/// the placeholders.
struct Content {
    name: Text,
    subject: Text,
    body: Text,
    html: Option<Text>,
    teams_format: TeamsFormat,
    card: Option<serde_json::Value>,
}

impl Content {
    fn checked(self, labels: Vec<String>) -> Result<NewTemplate, ApiError> {
        let mut errors = Vec::new();
        let name = required_text(&mut errors, "name".into(), &self.name, 200);
        // Bounds that no provider exceeds anyway (Teams: 28 KB a message; SMS: 1,600
        // characters; mail relays refuse messages past a few MB), so a stored template
        // always fits what it will be sent through.
        for (field, value, max) in [
            ("subject", Some(&self.subject), MAX_SUBJECT_BYTES),
            ("body", Some(&self.body), MAX_BODY_BYTES),
            ("html", self.html.as_ref(), MAX_HTML_BYTES),
        ] {
            if value.is_some_and(|v| v.len() > max) {
                errors.push(FieldError {
                    field: field.into(),
                    message: format!("must be at most {max} bytes"),
                });
            }
        }
        if let Some(card) = &self.card {
            if let Err((path, e)) = check_json_text(card) {
                errors.push(FieldError {
                    field: format!("card.{path}"),
                    message: e.to_string(),
                });
            }
            if card.to_string().len() > MAX_CARD_BYTES {
                errors.push(FieldError {
                    field: "card".into(),
                    message: format!("must be at most {MAX_CARD_BYTES} bytes as JSON"),
                });
            }
        }
        ApiError::check(errors)?;
        if let Err(e) = Template::parse(&self.subject, &self.body, self.html.as_deref())
            .and_then(|t| t.with_teams(self.teams_format, self.card.as_ref()))
        {
            ApiError::check(template_errors(e))?;
        }
        Ok(NewTemplate {
            name,
            subject: self.subject.into_string(),
            body: self.body.into_string(),
            html: self.html.map(Text::into_string),
            teams_format: self.teams_format,
            card: self.card,
            labels,
        })
    }
}

#[utoipa::path(post, path = "/v1/templates", request_body = CreateTemplate,
    responses((status = 201, body = TemplateView), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateTemplate>,
) -> Result<(StatusCode, Json<TemplateView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let new = Content {
        name: body.name,
        subject: body.subject,
        body: body.body,
        html: body.html,
        teams_format: body.teams_format.unwrap_or_default(),
        card: body.card.map(|c| c.0),
    }
    .checked(labels)?;
    let stored = state.store.create_template(&new).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// A change to a template: fields left out stay as they are; `html` and `card` set to null
/// are removed. Campaigns already broadcast keep the message they were sent with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplate {
    pub name: Option<Text>,
    pub subject: Option<Text>,
    pub body: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub html: Option<Option<Text>>,
    pub teams_format: Option<TeamsFormat>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub card: Option<Option<CardJson>>,
    /// New permission labels; a limited caller gives only labels they hold.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`, the default).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Edits a template. Campaigns not yet broadcast send the edited message; broadcast ones
/// keep theirs.
#[utoipa::path(patch, path = "/v1/templates/{id}", request_body = UpdateTemplate,
    params(("id" = Uuid, Path, description = "The template's id")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn update_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateTemplate>,
) -> Result<Json<TemplateView>, ApiError> {
    let current = state.store.get_template(id).await?;
    if !principal.sees(&current.labels) || current.frozen_for.is_some() {
        return Err(ApiError::NotFound("template"));
    }
    let labels = match body.labels {
        Some(l) => principal.labels_for(Some(l))?,
        None => current.labels.clone(),
    };
    let text = |v: Option<Text>, old: String| v.map_or_else(|| Text::parse(old), Ok);
    let stored_text = |e: pushfleet_domain::TextError| ApiError::Internal(e.into());
    let teams_format = body.teams_format.unwrap_or_else(|| current.teams_format());
    let new = Content {
        name: text(body.name, current.name).map_err(stored_text)?,
        subject: text(body.subject, current.subject).map_err(stored_text)?,
        body: text(body.body, current.body).map_err(stored_text)?,
        html: match body.html {
            Some(html) => html,
            None => current
                .html
                .map(Text::parse)
                .transpose()
                .map_err(stored_text)?,
        },
        teams_format,
        card: match body.card {
            Some(card) => card.map(|c| c.0),
            None => current.card,
        },
    }
    .checked(labels)?;
    Ok(Json(state.store.update_template(id, &new).await?.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// Only templates whose name contains this (case-insensitive).
    #[param(value_type = Option<String>)]
    pub q: Option<Text>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplatePage {
    pub templates: Vec<TemplateView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

/// Templates, newest first.
#[utoipa::path(get, path = "/v1/templates", params(TemplateQuery),
    responses((status = 200, body = TemplatePage)))]
#[tracing::instrument(skip_all)]
pub async fn list_templates(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<TemplateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TemplatePage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 50)?;
    let found = state
        .store
        .list_templates(
            limit + 1,
            q.before,
            principal.list_filter().as_deref(),
            q.q.as_deref(),
        )
        .await?;
    let (templates, next_before) = super::keyset_page(found, limit, TemplateView::from, |t| t.id);
    Ok(Json(TemplatePage {
        templates,
        next_before,
    }))
}

#[utoipa::path(get, path = "/v1/templates/{id}", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_template(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TemplateView>, ApiError> {
    let template = state.store.get_template(id).await?;
    // A campaign's frozen copy is the campaign's, not a template of the list.
    if !principal.sees(&template.labels) || template.frozen_for.is_some() {
        return Err(ApiError::NotFound("template"));
    }
    Ok(Json(template.into()))
}
