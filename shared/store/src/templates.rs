use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::{Template, TemplateError};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub name: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredTemplate {
    pub id: Uuid,
    pub name: String,
    pub subject: String,
    pub body: String,
    pub html: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl StoredTemplate {
    pub fn parse(&self) -> Result<Template, TemplateError> {
        Template::parse(&self.subject, &self.body, self.html.as_deref())
    }
}

impl Store {
    pub async fn create_template(&self, t: &NewTemplate) -> Result<StoredTemplate, StoreError> {
        let row = sqlx::query_as::<_, StoredTemplate>(
            "INSERT INTO templates (id, name, subject, body, html) VALUES ($1, $2, $3, $4, $5)
             RETURNING id, name, subject, body, html, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(&t.name)
        .bind(&t.subject)
        .bind(&t.body)
        .bind(&t.html)
        .fetch_one(self.pool())
        .await?;
        Ok(row)
    }

    pub async fn get_template(&self, id: Uuid) -> Result<StoredTemplate, StoreError> {
        sqlx::query_as::<_, StoredTemplate>(
            "SELECT id, name, subject, body, html, created_at FROM templates WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("template"))
    }
}
