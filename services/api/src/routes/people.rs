use super::{required_text, AppState};
use crate::api_error::{ErrorBody, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use pushfleet_domain::{parse_time_zone, EmailAddress, PhoneNumber, TeamsConversationRef, Text};
use pushfleet_store::{NewPerson, Person};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// People per request; larger directories go in several requests.
pub const MAX_PEOPLE_PER_REQUEST: usize = 10_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePeople {
    pub people: Vec<PersonInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    pub email: Option<Text>,
    pub first_name: Text,
    #[serde(default)]
    pub last_name: Text,
    /// E.164, e.g. `+33612345678`.
    pub phone: Option<Text>,
    pub teams: Option<TeamsInput>,
    /// IANA time zone name; `UTC` when absent.
    pub time_zone: Option<Text>,
}

/// The conversation reference the bot stored when the user installed it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsInput {
    pub service_url: Text,
    /// The 1:1 conversation; when absent, the Teams sender creates it from `user_id` and
    /// `tenant_id` on the first send.
    pub conversation_id: Option<Text>,
    pub user_id: Option<Text>,
    pub tenant_id: Option<Text>,
}

/// A person's stored conversation reference.
#[derive(Serialize, ToSchema)]
pub struct TeamsView {
    pub service_url: String,
    pub conversation_id: Option<String>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedPeople {
    pub ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PersonView {
    pub id: Uuid,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub teams: Option<TeamsView>,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub external_id: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub team_names: Vec<String>,
    pub roles: Vec<String>,
    pub joining_date: Option<chrono::NaiveDate>,
    pub location: Option<String>,
    pub language: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    pub manager_id: Option<Uuid>,
    pub hr_partner_id: Option<Uuid>,
    pub team_leader_ids: Vec<Uuid>,
    pub coach_ids: Vec<Uuid>,
    pub active: bool,
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl From<Person> for PersonView {
    fn from(p: Person) -> Self {
        Self {
            id: p.id,
            email: p.email,
            first_name: p.first_name,
            last_name: p.last_name,
            phone: p.phone,
            teams: p.teams_conversation.map(|j| TeamsView {
                service_url: j.0.service_url,
                conversation_id: j.0.conversation_id,
                user_id: j.0.user_id,
                tenant_id: j.0.tenant_id,
            }),
            time_zone: p.time_zone,
            created_at: p.created_at,
            external_id: p.external_id,
            department: p.department,
            job_title: p.job_title,
            team_names: p.teams,
            roles: p.roles,
            joining_date: p.joining_date,
            location: p.location,
            language: p.language,
            attributes: p.attributes,
            manager_id: p.manager_id,
            hr_partner_id: p.hr_partner_id,
            team_leader_ids: p.team_leader_ids,
            coach_ids: p.coach_ids,
            active: p.active,
            deactivated_at: p.deactivated_at,
        }
    }
}

fn parse_person(i: usize, p: PersonInput, errors: &mut Vec<FieldError>) -> Option<NewPerson> {
    let before = errors.len();
    let mut err = |field: &str, message: String| {
        errors.push(FieldError {
            field: format!("people[{i}].{field}"),
            message,
        })
    };
    let email = match p.email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => EmailAddress::parse(raw)
            .map_err(|e| err("email", e.to_string()))
            .ok(),
        None => None,
    };
    let phone = match p.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => PhoneNumber::parse(raw)
            .map_err(|e| err("phone", e.to_string()))
            .ok(),
        None => None,
    };
    let teams = p.teams.and_then(|t| {
        let url_ok = reqwest_like_url(&t.service_url);
        if !url_ok {
            err("teams.service_url", "must be an http(s) URL".into());
        }
        let trimmed = |v: &Option<Text>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (conversation, user, tenant) = (
            trimmed(&t.conversation_id),
            trimmed(&t.user_id),
            trimmed(&t.tenant_id),
        );
        let reachable = conversation.is_some() || (user.is_some() && tenant.is_some());
        if !reachable {
            err(
                "teams.conversation_id",
                "give the conversation id, or the user id and tenant id to create it".into(),
            );
        }
        (url_ok && reachable).then_some(TeamsConversationRef {
            service_url: t.service_url.into_string(),
            conversation_id: conversation,
            user_id: user,
            tenant_id: tenant,
        })
    });
    let time_zone = p
        .time_zone
        .as_deref()
        .map(str::trim)
        .unwrap_or("UTC")
        .to_owned();
    // The same check as the import's: a zone the senders cannot use is refused here.
    if time_zone.len() > 64 || parse_time_zone(&time_zone).is_err() {
        err(
            "time_zone",
            "must be an IANA time zone name, e.g. Europe/Paris".into(),
        );
    }
    let first_name = required_text(
        errors,
        format!("people[{i}].first_name"),
        &p.first_name,
        200,
    );
    if p.last_name.chars().count() > 200 {
        errors.push(FieldError {
            field: format!("people[{i}].last_name"),
            message: "must be at most 200 characters".into(),
        });
    }
    (errors.len() == before).then(|| NewPerson {
        email,
        first_name,
        last_name: p.last_name.trim().to_owned(),
        phone,
        teams,
        time_zone,
    })
}

fn reqwest_like_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://")) && s.len() > "http://".len() + 1
}

/// Adds people to the directory, all or nothing.
#[utoipa::path(post, path = "/v1/people", request_body = CreatePeople,
    responses((status = 201, body = CreatedPeople), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(count = body.people.len()))]
pub async fn create_people(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreatePeople>,
) -> Result<(StatusCode, Json<CreatedPeople>), ApiError> {
    if body.people.is_empty() {
        return Err(ApiError::invalid(
            "people",
            "must contain at least one person",
        ));
    }
    if body.people.len() > MAX_PEOPLE_PER_REQUEST {
        return Err(ApiError::invalid(
            "people",
            format!("at most {MAX_PEOPLE_PER_REQUEST} people per request"),
        ));
    }
    let mut errors = Vec::new();
    let people: Vec<NewPerson> = body
        .people
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| parse_person(i, p, &mut errors))
        .collect();
    ApiError::check(errors)?;
    let ids = state.store.insert_people(&people).await?;
    Ok((StatusCode::CREATED, Json(CreatedPeople { ids })))
}

#[utoipa::path(get, path = "/v1/people/{id}", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, body = PersonView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn get_person(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PersonView>, ApiError> {
    Ok(Json(state.store.get_person(id).await?.into()))
}

/// Deactivates a person (their history stays; they leave every audience and segment
/// evaluation, and their unsent deliveries are skipped). Import `active: true` to undo.
#[utoipa::path(delete, path = "/v1/people/{id}", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state))]
pub async fn deactivate_person(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.store.deactivate_person(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
