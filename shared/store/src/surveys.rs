//! Surveys (seed 001): their questions, changed freely until a campaign first broadcasts
//! them, then fixed so that every answer is to the questions people were shown.

use crate::campaigns::Actor;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::survey::Question;
use pushfleet_domain::survey_card::{survey_card, survey_template};
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewSurvey {
    pub name: String,
    pub questions: Vec<Question>,
    /// Permission labels (seed 003).
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSurvey {
    pub id: Uuid,
    pub name: String,
    pub questions: Json<Vec<Question>>,
    pub labels: Vec<String>,
    pub created_by_id: Option<Uuid>,
    pub created_by_name: Option<String>,
    pub updated_by_id: Option<Uuid>,
    pub updated_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a campaign first broadcast it; its questions are fixed since.
    pub first_sent_at: Option<DateTime<Utc>>,
}

const SURVEY_COLUMNS: &str = "id, name, questions, labels, created_by_id, created_by_name, \
     updated_by_id, updated_by_name, created_at, updated_at, first_sent_at";

/// The rule a change of a sent survey breaks (409).
pub const SURVEY_SENT: &str =
    "a survey can be changed only until a campaign has sent it; clone it into a new survey instead";

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn create_survey(
        &self,
        s: &NewSurvey,
        actor: &Actor,
    ) -> Result<StoredSurvey, StoreError> {
        Ok(sqlx::query_as::<_, StoredSurvey>(&format!(
            "INSERT INTO surveys (id, name, questions, labels, created_by_id, created_by_name,
                                  updated_by_id, updated_by_name)
             VALUES ($1, $2, $3, $4, $5, $6, $5, $6) RETURNING {SURVEY_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&s.name)
        .bind(Json(&s.questions))
        .bind(&s.labels)
        .bind(actor.id)
        .bind(&actor.name)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn get_survey(&self, id: Uuid) -> Result<StoredSurvey, StoreError> {
        sqlx::query_as::<_, StoredSurvey>(&format!(
            "SELECT {SURVEY_COLUMNS} FROM surveys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("survey"))
    }

    /// Replaces a survey's name, questions and labels; `Conflict` once a campaign has sent
    /// it. The check is in the row's `UPDATE`, which waits for a broadcast holding the row
    /// and then sees its mark, so a change cannot slip in under a broadcast.
    #[tracing::instrument(skip(self, s, actor))]
    pub async fn update_survey(
        &self,
        id: Uuid,
        s: &NewSurvey,
        actor: &Actor,
    ) -> Result<StoredSurvey, StoreError> {
        let updated = sqlx::query_as::<_, StoredSurvey>(&format!(
            "UPDATE surveys SET name = $2, questions = $3, labels = $4, updated_by_id = $5,
                    updated_by_name = $6, updated_at = now()
             WHERE id = $1 AND first_sent_at IS NULL RETURNING {SURVEY_COLUMNS}"
        ))
        .bind(id)
        .bind(&s.name)
        .bind(Json(&s.questions))
        .bind(&s.labels)
        .bind(actor.id)
        .bind(&actor.name)
        .fetch_optional(self.pool())
        .await?;
        match updated {
            Some(row) => Ok(row),
            None => {
                self.get_survey(id).await?;
                Err(StoreError::Conflict(SURVEY_SENT.into()))
            }
        }
    }

    /// Surveys newest first, `limit` after `before`, only those carrying one of `labels`
    /// when given, with `name_contains` in the name when given.
    pub async fn list_surveys(
        &self,
        limit: i64,
        before: Option<Uuid>,
        labels: Option<&[String]>,
        name_contains: Option<&str>,
    ) -> Result<Vec<StoredSurvey>, StoreError> {
        Ok(sqlx::query_as::<_, StoredSurvey>(&format!(
            "SELECT {SURVEY_COLUMNS} FROM surveys
             WHERE ($2::uuid IS NULL OR id < $2)
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

/// Freezes a survey campaign's message when it is broadcast, in the expansion's transaction:
/// the card built from the survey as it is now becomes the campaign's template (a frozen
/// copy, as a template campaign gets), so the senders send it like any card and read no
/// survey. The survey is marked sent (its questions fixed from now on), unless this is a
/// try. Does nothing for a template campaign or a message already frozen.
pub(crate) async fn freeze_survey_in(
    tx: &mut sqlx::PgConnection,
    campaign_id: Uuid,
) -> Result<(), StoreError> {
    let campaign: Option<(Uuid, bool)> = sqlx::query_as(
        "SELECT survey_id, is_try FROM campaigns
         WHERE id = $1 AND survey_id IS NOT NULL AND message_frozen_at IS NULL",
    )
    .bind(campaign_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((survey_id, is_try)) = campaign else {
        return Ok(());
    };
    // The row's lock orders this with a concurrent change of the survey (which checks the
    // mark in its own UPDATE).
    let (name, questions, labels): (String, Json<Vec<Question>>, Vec<String>) = sqlx::query_as(
        "UPDATE surveys
         SET first_sent_at = CASE WHEN $2 THEN first_sent_at ELSE coalesce(first_sent_at, now()) END
         WHERE id = $1 RETURNING name, questions, labels",
    )
    .bind(survey_id)
    .bind(is_try)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound("survey"))?;
    let card = survey_card(&name, &questions, survey_id, campaign_id);
    // Checked when the survey was saved; checked again because a card Teams refuses would
    // fail every send of the campaign.
    survey_template(&name, &card)
        .map_err(|e| StoreError::Corrupt(format!("survey {survey_id} makes no valid card: {e}")))?;
    let template_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO templates (id, name, subject, body, html, teams_format, card, labels,
                                frozen_for)
         VALUES ($1, $2, '', $3, NULL, 'adaptive_card', $4, $5, $6)",
    )
    .bind(template_id)
    .bind(format!("survey: {name}"))
    .bind(&name)
    .bind(&card)
    .bind(&labels)
    .bind(campaign_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE campaigns SET template_id = $2, message_frozen_at = now() WHERE id = $1")
        .bind(campaign_id)
        .bind(template_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
