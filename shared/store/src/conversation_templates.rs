//! Conversation templates (seed 000): the questions of a conversation, whether it may be
//! pushed ("Permission to conduct"), and who conducts it with the user.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One prompt of a conversation, in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationQuestion {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct NewConversationTemplate {
    pub name: String,
    pub questions: Vec<ConversationQuestion>,
    pub may_be_pushed: bool,
    /// `team_leaders`, `coaches` or `both`.
    pub conducted_by: String,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationTemplate {
    pub id: Uuid,
    pub name: String,
    pub questions: sqlx::types::Json<Vec<ConversationQuestion>>,
    pub may_be_pushed: bool,
    pub conducted_by: String,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, questions, may_be_pushed, conducted_by, labels, created_at, updated_at";

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn create_conversation_template(
        &self,
        t: &NewConversationTemplate,
    ) -> Result<ConversationTemplate, StoreError> {
        Ok(sqlx::query_as::<_, ConversationTemplate>(&format!(
            "INSERT INTO conversation_templates
                 (id, name, questions, may_be_pushed, conducted_by, labels)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&t.name)
        .bind(sqlx::types::Json(&t.questions))
        .bind(t.may_be_pushed)
        .bind(&t.conducted_by)
        .bind(&t.labels)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn get_conversation_template(
        &self,
        id: Uuid,
    ) -> Result<ConversationTemplate, StoreError> {
        sqlx::query_as::<_, ConversationTemplate>(&format!(
            "SELECT {COLUMNS} FROM conversation_templates WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("conversation template"))
    }

    /// Replaces a template's settings. Pushes made from it keep the `conducted_by` they
    /// were made with.
    #[tracing::instrument(skip(self, t))]
    pub async fn update_conversation_template(
        &self,
        id: Uuid,
        t: &NewConversationTemplate,
    ) -> Result<ConversationTemplate, StoreError> {
        sqlx::query_as::<_, ConversationTemplate>(&format!(
            "UPDATE conversation_templates SET name = $2, questions = $3, may_be_pushed = $4,
                    conducted_by = $5, labels = $6, updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(&t.name)
        .bind(sqlx::types::Json(&t.questions))
        .bind(t.may_be_pushed)
        .bind(&t.conducted_by)
        .bind(&t.labels)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("conversation template"))
    }

    /// Newest first, `limit` after `before`; only those carrying one of `labels` when given,
    /// with `name_contains` in the name when given, only pushable ones when asked.
    pub async fn list_conversation_templates(
        &self,
        limit: i64,
        before: Option<Uuid>,
        labels: Option<&[String]>,
        name_contains: Option<&str>,
        may_be_pushed: Option<bool>,
    ) -> Result<Vec<ConversationTemplate>, StoreError> {
        Ok(sqlx::query_as::<_, ConversationTemplate>(&format!(
            "SELECT {COLUMNS} FROM conversation_templates
             WHERE ($2::uuid IS NULL OR id < $2)
               AND ($3::text[] IS NULL OR labels && $3)
               AND ($4::text IS NULL OR strpos(lower(name), lower($4)) > 0)
               AND ($5::boolean IS NULL OR may_be_pushed = $5)
             ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .bind(before)
        .bind(labels)
        .bind(name_contains)
        .bind(may_be_pushed)
        .fetch_all(self.pool())
        .await?)
    }
}
