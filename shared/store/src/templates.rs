use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::{TeamsFormat, Template, TemplateError};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub name: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub teams_format: TeamsFormat,
    pub card: Option<serde_json::Value>,
    /// Permission labels (seed 003).
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredTemplate {
    pub id: Uuid,
    pub name: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub teams_format: String,
    pub card: Option<serde_json::Value>,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The campaign this is the frozen message of; such a copy is not listed or edited.
    pub frozen_for: Option<Uuid>,
}

impl StoredTemplate {
    pub fn teams_format(&self) -> TeamsFormat {
        TeamsFormat::parse(&self.teams_format).unwrap_or_default()
    }

    pub fn parse(&self) -> Result<Template, TemplateError> {
        Template::parse(&self.subject, &self.body, self.html.as_deref())?
            .with_teams(self.teams_format(), self.card.as_ref())
    }
}

const TEMPLATE_COLUMNS: &str =
    "id, name, subject, body, html, teams_format, card, labels, created_at, updated_at, frozen_for";

impl Store {
    pub async fn create_template(&self, t: &NewTemplate) -> Result<StoredTemplate, StoreError> {
        let row = sqlx::query_as::<_, StoredTemplate>(&format!(
            "INSERT INTO templates (id, name, subject, body, html, teams_format, card, labels)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TEMPLATE_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&t.name)
        .bind(&t.subject)
        .bind(&t.body)
        .bind(&t.html)
        .bind(t.teams_format.as_str())
        .bind(&t.card)
        .bind(&t.labels)
        .fetch_one(self.pool())
        .await?;
        Ok(row)
    }

    pub async fn get_template(&self, id: Uuid) -> Result<StoredTemplate, StoreError> {
        sqlx::query_as::<_, StoredTemplate>(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("template"))
    }

    /// Replaces an editable template's content and labels (a frozen copy is not editable).
    pub async fn update_template(
        &self,
        id: Uuid,
        t: &NewTemplate,
    ) -> Result<StoredTemplate, StoreError> {
        sqlx::query_as::<_, StoredTemplate>(&format!(
            "UPDATE templates SET name = $2, subject = $3, body = $4, html = $5,
                    teams_format = $6, card = $7, labels = $8, updated_at = now()
             WHERE id = $1 AND frozen_for IS NULL RETURNING {TEMPLATE_COLUMNS}"
        ))
        .bind(id)
        .bind(&t.name)
        .bind(&t.subject)
        .bind(&t.body)
        .bind(&t.html)
        .bind(t.teams_format.as_str())
        .bind(&t.card)
        .bind(&t.labels)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("template"))
    }

    /// Templates newest first (frozen copies left out), `limit` after `before`, only those
    /// carrying one of `labels` when given, with `name_contains` in the name when given.
    pub async fn list_templates(
        &self,
        limit: i64,
        before: Option<Uuid>,
        labels: Option<&[String]>,
        name_contains: Option<&str>,
    ) -> Result<Vec<StoredTemplate>, StoreError> {
        Ok(sqlx::query_as::<_, StoredTemplate>(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates
             WHERE frozen_for IS NULL AND ($2::uuid IS NULL OR id < $2)
               AND ($3::text[] IS NULL OR labels && $3)
               AND ($4::text IS NULL OR strpos(lower(name), lower($4)) > 0)
             ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .bind(before)
        .bind(labels)
        .bind(name_contains)
        .fetch_all(self.pool())
        .await?)
    }
}
