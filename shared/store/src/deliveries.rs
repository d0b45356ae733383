use crate::{Store, StoreError};
use pushfleet_domain::{
    Channel, DeliveryState, EmailAddress, PhoneNumber, Recipient, SendJob, TeamsConversationRef,
};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// What expanding a campaign's audience did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    /// Delivery rows written now (0 when a repeated evaluation found them all there).
    pub inserted: u64,
    /// Rows written as failed at once because the person has no address on that channel.
    pub unreachable: u64,
}

/// The result of one send attempt, recorded by a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub delivery_id: i64,
    pub state: DeliveryState,
    pub error: Option<String>,
    pub provider_message_id: Option<String>,
    /// SMS segments the message was billed as (sent SMS only).
    pub segments: Option<u32>,
}

/// Unpublished deliveries locked by one evaluator. Publish the jobs, then `mark_published`;
/// dropping the batch leaves them unpublished for the next attempt.
pub struct PublishBatch {
    tx: Transaction<'static, Postgres>,
    pub jobs: Vec<SendJob>,
}

impl PublishBatch {
    pub async fn mark_published(mut self) -> Result<(), StoreError> {
        let ids: Vec<i64> = self.jobs.iter().map(|j| j.delivery_id).collect();
        sqlx::query("UPDATE deliveries SET published_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    channel: String,
    attempts: i32,
    template_id: Uuid,
    first_name: String,
    last_name: String,
    email: Option<String>,
    phone: Option<String>,
    teams_conversation: Option<Json<TeamsConversationRef>>,
}

impl JobRow {
    fn into_job(self, campaign_id: Uuid, maybe_duplicate: bool) -> Result<SendJob, StoreError> {
        let corrupt = |e: String| StoreError::Corrupt(format!("delivery {}: {e}", self.id));
        let channel: Channel = self.channel.parse().map_err(|e| corrupt(format!("{e}")))?;
        let email = self
            .email
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        let phone = self
            .phone
            .as_deref()
            .map(PhoneNumber::parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(SendJob {
            delivery_id: self.id,
            campaign_id,
            channel,
            template_id: self.template_id,
            recipient: Recipient {
                first_name: self.first_name,
                last_name: self.last_name,
                email,
                phone,
                teams: self.teams_conversation.map(|j| j.0),
            },
            attempt: u32::try_from(self.attempts).unwrap_or(0) + 1,
            maybe_duplicate,
        })
    }
}

impl Store {
    /// Writes one delivery row per (member, channel) and moves the campaign to `sending`,
    /// in one transaction. Running it again for the same campaign writes nothing new.
    #[tracing::instrument(skip(self))]
    pub async fn expand_campaign(&self, campaign_id: Uuid) -> Result<Expansion, StoreError> {
        let mut tx = self.pool().begin().await?;
        let campaign: Option<(Uuid, Vec<String>)> =
            sqlx::query_as("SELECT audience_id, channels FROM campaigns WHERE id = $1 FOR UPDATE")
                .bind(campaign_id)
                .fetch_optional(&mut *tx)
                .await?;
        let (audience_id, channels) = campaign.ok_or(StoreError::NotFound("campaign"))?;
        let rows: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO deliveries (campaign_id, person_id, channel, state, last_error)
             SELECT $1, p.id, ch,
                    CASE WHEN x.missing THEN 'failed' ELSE 'pending' END,
                    CASE WHEN x.missing THEN 'recipient has no ' || ch || ' address' END
             FROM audience_members m
             JOIN people p ON p.id = m.person_id
             CROSS JOIN UNNEST($2::text[]) AS ch
             CROSS JOIN LATERAL (
                 SELECT (ch = 'email' AND p.email IS NULL)
                     OR (ch = 'sms' AND p.phone IS NULL)
                     OR (ch = 'teams' AND p.teams_conversation IS NULL) AS missing
             ) x
             WHERE m.audience_id = $3
             ON CONFLICT (campaign_id, person_id, channel) DO NOTHING
             RETURNING state",
        )
        .bind(campaign_id)
        .bind(&channels)
        .bind(audience_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE campaigns SET status = 'sending', evaluated_at = coalesce(evaluated_at, now())
             WHERE id = $1",
        )
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let unreachable = rows.iter().filter(|(s,)| s == "failed").count() as u64;
        Ok(Expansion {
            inserted: rows.len() as u64,
            unreachable,
        })
    }

    /// Locks up to `limit` pending, unpublished deliveries of a campaign (skipping rows another
    /// evaluator holds) and builds their send jobs.
    pub async fn claim_unpublished(
        &self,
        campaign_id: Uuid,
        limit: i64,
        maybe_duplicate: bool,
    ) -> Result<PublishBatch, StoreError> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query_as::<_, JobRow>(
            "SELECT d.id, d.channel, d.attempts, c.template_id,
                    p.first_name, p.last_name, p.email, p.phone, p.teams_conversation
             FROM deliveries d
             JOIN people p ON p.id = d.person_id
             JOIN campaigns c ON c.id = d.campaign_id
             WHERE d.campaign_id = $1 AND d.published_at IS NULL AND d.state = 'pending'
             ORDER BY d.id
             LIMIT $2
             FOR UPDATE OF d SKIP LOCKED",
        )
        .bind(campaign_id)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let jobs = rows
            .into_iter()
            .map(|r| r.into_job(campaign_id, maybe_duplicate))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PublishBatch { tx, jobs })
    }

    /// Current states of the given deliveries (missing ids are absent from the map).
    pub async fn delivery_states(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, DeliveryState>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, state FROM deliveries WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(id, s)| {
                s.parse::<DeliveryState>()
                    .map(|st| (id, st))
                    .map_err(StoreError::Corrupt)
            })
            .collect()
    }

    /// Records a batch of outcomes in one statement. A row already in a final state is left
    /// alone, so a late duplicate cannot overwrite the first answer. Then applies provider
    /// status reports that arrived before their message id was recorded.
    #[tracing::instrument(skip_all, fields(count = outcomes.len()))]
    pub async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<u64, StoreError> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery_id).collect();
        let states: Vec<&str> = outcomes.iter().map(|o| o.state.as_str()).collect();
        let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
        let provider_ids: Vec<Option<&str>> = outcomes
            .iter()
            .map(|o| o.provider_message_id.as_deref())
            .collect();
        let segments: Vec<Option<i32>> = outcomes
            .iter()
            .map(|o| o.segments.and_then(|s| i32::try_from(s).ok()))
            .collect();
        let done = sqlx::query(
            "UPDATE deliveries d
             SET state = u.state, attempts = d.attempts + 1, last_error = u.error,
                 provider_message_id = coalesce(u.provider_id, d.provider_message_id),
                 segments = coalesce(u.segments, d.segments),
                 updated_at = now()
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[])
                  AS u(id, state, error, provider_id, segments)
             WHERE d.id = u.id AND d.state NOT IN ('sent', 'failed', 'dead')",
        )
        .bind(&ids)
        .bind(&states)
        .bind(&errors)
        .bind(&provider_ids)
        .bind(&segments)
        .execute(self.pool())
        .await?
        .rows_affected();

        // Only after the commit above (see `park`). The outcomes are durable by now, so a
        // failure here must not fail the batch, which would requeue and resend it; the
        // reports left parked are only logged, and expire.
        let sids: Vec<&str> = provider_ids.iter().flatten().copied().collect();
        if let Err(e) = self.adopt_parked_statuses(&sids).await {
            tracing::warn!(error = %e, count = sids.len(), "adopting parked provider statuses failed");
        }
        Ok(done)
    }
}
