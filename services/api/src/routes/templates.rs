use super::{required_text, AppState};
use crate::api_error::{ErrorBody, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use pushfleet_domain::{check_json_text, PermissionLabel, Text};
use pushfleet_domain::{TeamsFormat, Template, TemplateError};
use pushfleet_store::{NewTemplate, StoredTemplate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    pub name: Text,
    /// E-mail subject; may use placeholders.
    #[serde(default)]
    pub subject: Text,
    /// Plain-text body, used by every channel. Placeholders: `{{first_name}}`,
    /// `{{last_name}}`, `{{full_name}}`, `{{email}}`, `{{phone}}`.
    pub body: Text,
    /// Optional HTML body for e-mail; placeholder values are HTML-escaped.
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
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    // Bounds that no provider exceeds anyway (Teams: 28 KB a message; SMS: 1,600
    // characters; mail relays refuse messages past a few MB), so a stored template always
    // fits what it will be sent through.
    for (field, value, max) in [
        ("subject", Some(&body.subject), MAX_SUBJECT_BYTES),
        ("body", Some(&body.body), MAX_BODY_BYTES),
        ("html", body.html.as_ref(), MAX_HTML_BYTES),
    ] {
        if value.is_some_and(|v| v.len() > max) {
            errors.push(FieldError {
                field: field.into(),
                message: format!("must be at most {max} bytes"),
            });
        }
    }
    let card = body.card.map(|c| c.0);
    if let Some(card) = &card {
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
    let teams_format = body.teams_format.unwrap_or_default();
    if let Err(e) = Template::parse(&body.subject, &body.body, body.html.as_deref())
        .and_then(|t| t.with_teams(teams_format, card.as_ref()))
    {
        ApiError::check(template_errors(e))?;
    }
    let stored = state
        .store
        .create_template(&NewTemplate {
            name,
            subject: body.subject.into_string(),
            body: body.body.into_string(),
            html: body.html.map(Text::into_string),
            teams_format,
            card,
            labels,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
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
    if !principal.sees(&template.labels) {
        return Err(ApiError::NotFound("template"));
    }
    Ok(Json(template.into()))
}
