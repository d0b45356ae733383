use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::{EmailAddress, PhoneNumber, Recipient, TeamsConversationRef};
use sqlx::types::Json;
use uuid::Uuid;

/// A person to insert; fields already parsed at the edge.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub email: Option<EmailAddress>,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<PhoneNumber>,
    pub teams: Option<TeamsConversationRef>,
    pub time_zone: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Person {
    pub id: Uuid,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub teams_conversation: Option<Json<TeamsConversationRef>>,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub external_id: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    pub joining_date: Option<chrono::NaiveDate>,
    pub location: Option<String>,
    pub language: Option<String>,
    pub attributes: serde_json::Value,
    pub manager_id: Option<Uuid>,
    pub hr_partner_id: Option<Uuid>,
    pub team_leader_ids: Vec<Uuid>,
    pub coach_ids: Vec<Uuid>,
    pub active: bool,
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl Person {
    /// Rebuilds the domain view. Stored values were validated on the way in, so a value
    /// that no longer parses is reported as corrupt rather than silently dropped.
    pub fn recipient(&self) -> Result<Recipient, StoreError> {
        Ok(Recipient {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self
                .email
                .as_deref()
                .map(EmailAddress::parse)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            phone: self
                .phone
                .as_deref()
                .map(PhoneNumber::parse)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            teams: self.teams_conversation.as_ref().map(|j| j.0.clone()),
            properties: crate::deliveries::recipient_properties(
                &crate::deliveries::DirectoryProperties {
                    department: self.department.as_deref(),
                    job_title: self.job_title.as_deref(),
                    location: self.location.as_deref(),
                    language: self.language.as_deref(),
                    time_zone: Some(&self.time_zone),
                    external_id: self.external_id.as_deref(),
                    joining_date: self.joining_date,
                    attributes: Some(&self.attributes),
                },
                None,
            ),
        })
    }
}

impl Store {
    /// Inserts people in one statement (UNNEST of column arrays), all or nothing.
    /// A duplicate e-mail, in the batch or against the table, is a `Conflict`.
    #[tracing::instrument(skip_all, fields(count = people.len()))]
    pub async fn insert_people(&self, people: &[NewPerson]) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<Uuid> = people.iter().map(|_| Uuid::now_v7()).collect();
        let emails: Vec<Option<String>> = people
            .iter()
            .map(|p| p.email.as_ref().map(|e| e.as_str().to_owned()))
            .collect();
        let first: Vec<String> = people.iter().map(|p| p.first_name.clone()).collect();
        let last: Vec<String> = people.iter().map(|p| p.last_name.clone()).collect();
        let phones: Vec<Option<String>> = people
            .iter()
            .map(|p| p.phone.as_ref().map(|x| x.as_str().to_owned()))
            .collect();
        let teams: Vec<Option<serde_json::Value>> = people
            .iter()
            .map(|p| p.teams.as_ref().and_then(|t| serde_json::to_value(t).ok()))
            .collect();
        let zones: Vec<String> = people.iter().map(|p| p.time_zone.clone()).collect();
        sqlx::query(
            "INSERT INTO people (id, email, first_name, last_name, phone, teams_conversation, time_zone)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::jsonb[], $7::text[])",
        )
        .bind(&ids)
        .bind(&emails)
        .bind(&first)
        .bind(&last)
        .bind(&phones)
        .bind(&teams)
        .bind(&zones)
        .execute(self.pool())
        .await
        .map_err(|e| StoreError::from_unique(e, "a person with this e-mail already exists"))?;
        Ok(ids)
    }

    /// Deactivates a person: they leave every audience and segment evaluation, their
    /// unsent deliveries are skipped, and their history stays.
    pub async fn deactivate_person(&self, id: Uuid) -> Result<(), StoreError> {
        let found = sqlx::query(
            "UPDATE people SET active = false, deactivated_at = coalesce(deactivated_at, now()),
                               updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if found == 0 {
            return Err(StoreError::NotFound("person"));
        }
        Ok(())
    }

    pub async fn get_person(&self, id: Uuid) -> Result<Person, StoreError> {
        sqlx::query_as::<_, Person>(
            "SELECT id, email, first_name, last_name, phone, teams_conversation, time_zone, created_at,
                    external_id, department, job_title, teams, roles, joining_date, location,
                    language, attributes, manager_id, hr_partner_id, active, deactivated_at,
                    ARRAY(SELECT related_id FROM person_relations r
                          WHERE r.person_id = p.id AND r.kind = 'team_leader' ORDER BY 1) AS team_leader_ids,
                    ARRAY(SELECT related_id FROM person_relations r
                          WHERE r.person_id = p.id AND r.kind = 'coach' ORDER BY 1) AS coach_ids
             FROM people p WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("person"))
    }
}
