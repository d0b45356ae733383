//! A campaign's life before and after it is broadcast (seed 001): a draft or scheduled
//! campaign is changed freely, sent (now or later), deleted; a broadcast one is only read,
//! cloned, or removed from the list with its deliveries kept. Every change locks the row
//! and checks the status in the same transaction as the scheduler's claim, so a change
//! cannot slip in after the broadcast began.

use crate::campaign_recipients::Recipients;
use crate::campaigns::{
    check_references, Actor, Campaign, CampaignStatus, References, CAMPAIGN_COLUMNS,
};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::{Channel, SendWindow};
use sqlx::types::Json;
use uuid::Uuid;

/// A change to a campaign that has not been broadcast: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CampaignChange {
    pub name: Option<String>,
    pub audience_id: Option<Uuid>,
    /// A template replaces a survey, and a survey a template.
    pub template_id: Option<Uuid>,
    pub survey_id: Option<Uuid>,
    pub channels: Option<Vec<Channel>>,
    pub start_at: Option<DateTime<Utc>>,
    /// `Some(None)` removes the window (all sends at `start_at`).
    pub send_window: Option<Option<SendWindow>>,
    pub wait_for_availability: Option<bool>,
    pub labels: Option<Vec<String>>,
    /// A segment as the recipients (replaces the audience or everyone with the bot).
    pub segment_id: Option<Uuid>,
    /// `Some(true)`: everyone with the bot (replaces the other sources); `Some(false)`:
    /// not any more.
    pub all_bot_users: Option<bool>,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// A draft or scheduled campaign: gone.
    Deleted,
    /// A broadcast campaign: off the list, its deliveries and report kept.
    Removed,
}

/// Which campaigns a list shows.
#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    pub status: Option<CampaignStatus>,
    pub channel: Option<Channel>,
    pub label: Option<String>,
    /// Text in the name (case-insensitive).
    pub name_contains: Option<String>,
    /// Only campaigns carrying one of these labels (a caller limited to labels).
    pub visible_labels: Option<Vec<String>>,
    /// The last id of the previous page.
    pub before: Option<Uuid>,
    pub limit: i64,
}

/// The status a list shows: `sending` with no delivery left open is `completed`.
const LISTED_STATUS: &str = "CASE WHEN c.status = 'sending' AND NOT EXISTS (
        SELECT 1 FROM deliveries d
        WHERE d.campaign_id = c.id AND d.state IN ('pending', 'retrying'))
    THEN 'completed' ELSE c.status END";

fn not_editable(status: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a campaign can be modified only when it has not yet been broadcast; this one is {status}"
    ))
}

impl Store {
    /// The campaign's row, locked for the change; `NotFound` for a removed one too.
    async fn lock_campaign(tx: &mut sqlx::PgConnection, id: Uuid) -> Result<Campaign, StoreError> {
        sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns
             WHERE id = $1 AND deleted_at IS NULL AND NOT is_try FOR UPDATE"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("campaign"))
    }

    /// Changes a draft or scheduled campaign; 409 (`Conflict`) once it is broadcast.
    #[tracing::instrument(skip(self, change, actor))]
    pub async fn update_campaign(
        &self,
        id: Uuid,
        change: &CampaignChange,
        actor: &Actor,
    ) -> Result<Campaign, StoreError> {
        let mut tx = self.pool().begin().await?;
        let current = Self::lock_campaign(&mut tx, id).await?;
        if !CampaignStatus::parse(&current.status).is_some_and(CampaignStatus::editable) {
            return Err(not_editable(&current.status));
        }
        let recipients = current.recipients().changed(
            Recipients {
                audience_id: change.audience_id,
                segment_id: change.segment_id,
                all_bot_users: false,
            },
            change.all_bot_users,
        );
        // The message is a template or a survey: naming one drops the other.
        let (template_id, survey_id) = match (change.template_id, change.survey_id) {
            (None, None) => (current.template_id, current.survey_id),
            (None, Some(s)) => (None, Some(s)),
            (t, None) => (t, None),
            (Some(t), Some(s)) => (Some(t), Some(s)),
        };
        let channels: Option<Vec<String>> = change
            .channels
            .as_ref()
            .map(|chs| chs.iter().map(|c| c.as_str().to_owned()).collect());
        let refs = References {
            recipients,
            template_id,
            survey_id,
            channels: channels.as_deref().unwrap_or(&current.channels),
        };
        check_references(&mut tx, &refs, current.status == "scheduled").await?;
        let row = sqlx::query_as::<_, Campaign>(&format!(
            "UPDATE campaigns SET
                 name = coalesce($2, name), audience_id = $3, template_id = $4,
                 channels = coalesce($5, channels), start_at = coalesce($6, start_at),
                 send_window = (SELECT jsonb_set(w, '{{start}}', to_jsonb(coalesce($6, start_at)))
                                FROM (SELECT CASE WHEN $7 THEN $8::jsonb ELSE send_window END AS w) x),
                 wait_for_availability = coalesce($9, wait_for_availability),
                 labels = coalesce($10, labels), survey_id = $15,
                 updated_by_id = $11, updated_by_name = $12, updated_at = now(),
                 segment_id = $13, all_bot_users = $14
             WHERE id = $1 RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(id)
        .bind(&change.name)
        .bind(recipients.audience_id)
        .bind(template_id)
        .bind(channels)
        .bind(change.start_at)
        .bind(change.send_window.is_some())
        .bind(change.send_window.clone().flatten().map(Json))
        .bind(change.wait_for_availability)
        .bind(&change.labels)
        .bind(actor.id)
        .bind(&actor.name)
        .bind(recipients.segment_id)
        .bind(recipients.all_bot_users)
        .bind(survey_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Schedules a draft (or reschedules a scheduled campaign) to be broadcast at
    /// `start_at` (its send window, if any, then starts there). It must name its audience
    /// (with members, when fixed) and its template.
    #[tracing::instrument(skip(self, actor))]
    pub async fn send_campaign(
        &self,
        id: Uuid,
        start_at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Campaign, StoreError> {
        let mut tx = self.pool().begin().await?;
        let current = Self::lock_campaign(&mut tx, id).await?;
        if !CampaignStatus::parse(&current.status).is_some_and(CampaignStatus::editable) {
            return Err(StoreError::Conflict(format!(
                "the campaign was broadcast already; it is {}",
                current.status
            )));
        }
        let refs = References {
            recipients: current.recipients(),
            template_id: current.template_id,
            survey_id: current.survey_id,
            channels: &current.channels,
        };
        check_references(&mut tx, &refs, true).await?;
        let row = sqlx::query_as::<_, Campaign>(&format!(
            "UPDATE campaigns SET status = 'scheduled', start_at = $2,
                 send_window = jsonb_set(send_window, '{{start}}', to_jsonb($2::timestamptz)),
                 updated_by_id = $3, updated_by_name = $4, updated_at = now()
             WHERE id = $1 RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(id)
        .bind(start_at)
        .bind(actor.id)
        .bind(&actor.name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes a draft or scheduled campaign; removes a broadcast one from the list (its
    /// deliveries and report stay, for the record).
    #[tracing::instrument(skip(self))]
    pub async fn delete_campaign(&self, id: Uuid) -> Result<Deletion, StoreError> {
        let mut tx = self.pool().begin().await?;
        let current = Self::lock_campaign(&mut tx, id).await?;
        let deletion =
            if CampaignStatus::parse(&current.status).is_some_and(CampaignStatus::editable) {
                sqlx::query("DELETE FROM campaigns WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                Deletion::Deleted
            } else {
                sqlx::query("UPDATE campaigns SET deleted_at = now() WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                Deletion::Removed
            };
        tx.commit().await?;
        Ok(deletion)
    }

    /// A new draft like `id` (its message as chosen, not the frozen copy: the template or
    /// the survey; its recipients,
    /// channels, schedule settings and labels) under `name`.
    #[tracing::instrument(skip(self, actor))]
    pub async fn clone_campaign(
        &self,
        id: Uuid,
        name: &str,
        labels: Option<&[String]>,
        actor: &Actor,
    ) -> Result<Campaign, StoreError> {
        sqlx::query_as::<_, Campaign>(&format!(
            "INSERT INTO campaigns (id, name, status, audience_id, template_id, channels,
                                    start_at, send_window, wait_for_availability, labels,
                                    created_by_id, created_by_name, updated_by_id, updated_by_name,
                                    segment_id, all_bot_users, survey_id)
             SELECT $2, $3, 'draft', audience_id,
                    CASE WHEN survey_id IS NULL THEN coalesce(source_template_id, template_id) END,
                    channels, greatest(start_at, now()), send_window, wait_for_availability,
                    coalesce($4, labels), $5, $6, $5, $6, segment_id, all_bot_users, survey_id
             FROM campaigns WHERE id = $1 AND deleted_at IS NULL AND NOT is_try
             RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(id)
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(labels)
        .bind(actor.id)
        .bind(&actor.name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("campaign"))
    }

    /// Campaigns newest first, with the status a list shows, filtered.
    pub async fn list_campaigns(
        &self,
        f: &CampaignFilter,
    ) -> Result<Vec<(Campaign, CampaignStatus)>, StoreError> {
        let rows: Vec<ListedCampaign> = sqlx::query_as(&format!(
            "SELECT * FROM (
                 SELECT {CAMPAIGN_COLUMNS}, {LISTED_STATUS} AS listed_status FROM campaigns c
                 WHERE c.deleted_at IS NULL AND NOT c.is_try
                   AND ($1::uuid IS NULL OR c.id < $1)
                   AND ($3::text IS NULL OR $3 = ANY (c.channels))
                   AND ($4::text IS NULL OR $4 = ANY (c.labels))
                   AND ($5::text IS NULL OR strpos(lower(c.name), lower($5)) > 0)
                   AND ($6::text[] IS NULL OR c.labels && $6)
                   AND ($7::text IS NULL OR c.status = $7
                        OR ($7 = 'completed' AND c.status = 'sending'))
             ) listed
             WHERE $2::text IS NULL OR listed_status = $2
             ORDER BY id DESC LIMIT $8"
        ))
        .bind(f.before)
        .bind(f.status.map(CampaignStatus::as_str))
        .bind(f.channel.map(|c| c.as_str()))
        .bind(&f.label)
        .bind(&f.name_contains)
        .bind(&f.visible_labels)
        // Narrows the scan by the stored status first (sending covers completed).
        .bind(f.status.map(|s| match s {
            CampaignStatus::Completed => "completed",
            other => other.as_str(),
        }))
        .bind(f.limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let status =
                    CampaignStatus::parse(&r.listed_status).unwrap_or(CampaignStatus::Sending);
                (r.campaign, status)
            })
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct ListedCampaign {
    #[sqlx(flatten)]
    campaign: Campaign,
    listed_status: String,
}
