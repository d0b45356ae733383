//! Survey answers: one per person per survey campaign (a second submit replaces it), and
//! what the report and its CSV read of them.

use crate::bot_replies::{queue_reply, OwedReply};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::survey::Question;
use serde_json::{Map, Value};
use sqlx::types::Json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What an answer to a survey campaign is checked against.
#[derive(Debug, Clone)]
pub struct AnswerContext {
    pub survey_id: Uuid,
    pub questions: Vec<Question>,
    /// Whether the person is one of the campaign's recipients.
    pub recipient: bool,
}

/// What a survey campaign's report counts: respondents, Teams deliveries sent, per question
/// how many answered, and per question and submitted item (choice id or rating) how many
/// chose it.
#[derive(Debug, Clone, Default)]
pub struct SurveyTallies {
    pub respondents: i64,
    pub delivered: i64,
    pub answered: BTreeMap<String, i64>,
    pub items: BTreeMap<String, BTreeMap<String, i64>>,
}

/// One respondent, for the CSV.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AnswerRow {
    pub person_id: Uuid,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub answered_at: DateTime<Utc>,
    pub answers: Json<Map<String, Value>>,
}

impl Store {
    /// The survey a campaign sent (with its questions) and whether `person_id` was one of its
    /// recipients; `NotFound("campaign")` when the campaign is not a survey campaign.
    pub async fn survey_answer_context(
        &self,
        campaign_id: Uuid,
        person_id: Uuid,
    ) -> Result<AnswerContext, StoreError> {
        let row: Option<(Uuid, Json<Vec<Question>>, bool)> = sqlx::query_as(
            "SELECT s.id, s.questions,
                    EXISTS (SELECT 1 FROM deliveries d
                            WHERE d.campaign_id = c.id AND d.person_id = $2)
             FROM campaigns c JOIN surveys s ON s.id = c.survey_id
             WHERE c.id = $1",
        )
        .bind(campaign_id)
        .bind(person_id)
        .fetch_optional(self.pool())
        .await?;
        let (survey_id, questions, recipient) = row.ok_or(StoreError::NotFound("campaign"))?;
        Ok(AnswerContext {
            survey_id,
            questions: questions.0,
            recipient,
        })
    }

    /// Records (or replaces) a person's answers to a survey campaign, and queues the bot's
    /// confirmation in the same transaction. Returns whether the reply was queued (not when
    /// this activity already has one) and whether an earlier answer was replaced.
    #[tracing::instrument(skip(self, answers, reply))]
    pub async fn record_survey_answer(
        &self,
        campaign_id: Uuid,
        survey_id: Uuid,
        person_id: Uuid,
        answers: &BTreeMap<String, Value>,
        reply: Option<OwedReply<'_>>,
    ) -> Result<(bool, bool), StoreError> {
        let mut tx = self.pool().begin().await?;
        let first: bool = sqlx::query_scalar(
            "INSERT INTO survey_answers (campaign_id, person_id, survey_id, answers)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (campaign_id, person_id) DO UPDATE
                 SET answers = EXCLUDED.answers, answered_at = now()
             RETURNING xmax = 0",
        )
        .bind(campaign_id)
        .bind(person_id)
        .bind(survey_id)
        .bind(Json(answers))
        .fetch_one(&mut *tx)
        .await?;
        let queued = match reply {
            Some(reply) => queue_reply(&mut tx, reply).await?,
            None => false,
        };
        tx.commit().await?;
        Ok((queued, !first))
    }

    /// Queues a bot reply on its own (an answer refused: nothing else is written).
    pub async fn queue_bot_reply(&self, reply: OwedReply<'_>) -> Result<bool, StoreError> {
        let mut conn = self.pool().acquire().await?;
        queue_reply(&mut conn, reply).await
    }

    /// The counts of a survey campaign's report. `free_text` are the ids of the questions
    /// whose answers are counted but not tallied by value.
    pub async fn survey_tallies(
        &self,
        campaign_id: Uuid,
        free_text: &[String],
    ) -> Result<SurveyTallies, StoreError> {
        let (respondents, delivered): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM survey_answers WHERE campaign_id = $1),
                    (SELECT count(*) FROM deliveries
                     WHERE campaign_id = $1 AND channel = 'teams' AND state = 'sent')",
        )
        .bind(campaign_id)
        .fetch_one(self.pool())
        .await?;
        let answered: Vec<(String, i64)> = sqlx::query_as(
            "SELECT e.key, count(*) FROM survey_answers a CROSS JOIN LATERAL jsonb_each(a.answers) e
             WHERE a.campaign_id = $1 GROUP BY e.key",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        // A multiple choice counts each option chosen; a single choice or a rating its value.
        let items: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT e.key, x.item, count(*)
             FROM survey_answers a
             CROSS JOIN LATERAL jsonb_each(a.answers) e
             CROSS JOIN LATERAL (
                 SELECT jsonb_array_elements_text(e.value) AS item
                 WHERE jsonb_typeof(e.value) = 'array'
                 UNION ALL
                 SELECT e.value #>> '{}' WHERE jsonb_typeof(e.value) IN ('string', 'number')
             ) x
             WHERE a.campaign_id = $1 AND NOT (e.key = ANY ($2))
             GROUP BY e.key, x.item",
        )
        .bind(campaign_id)
        .bind(free_text)
        .fetch_all(self.pool())
        .await?;
        let mut tallies = SurveyTallies {
            respondents,
            delivered,
            answered: answered.into_iter().collect(),
            items: BTreeMap::new(),
        };
        for (question, item, n) in items {
            tallies.items.entry(question).or_default().insert(item, n);
        }
        Ok(tallies)
    }

    /// A page of a survey campaign's respondents, by person id after `after`.
    pub async fn survey_answer_page(
        &self,
        campaign_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AnswerRow>, StoreError> {
        Ok(sqlx::query_as::<_, AnswerRow>(
            "SELECT a.person_id, p.email, p.first_name, p.last_name, a.answered_at, a.answers
             FROM survey_answers a JOIN people p ON p.id = a.person_id
             WHERE a.campaign_id = $1 AND ($2::uuid IS NULL OR a.person_id > $2)
             ORDER BY a.person_id LIMIT $3",
        )
        .bind(campaign_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
