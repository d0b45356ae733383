use crate::campaign_recipients::{check_recipients, RecipientSource, Recipients};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::{Channel, DeliveryState, SendWindow};
use serde::Serialize;
use sqlx::types::Json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Who makes or changes a campaign: an operator's or an API key's id and name.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    /// Saved as a draft (edited freely, sent later) rather than scheduled at once.
    pub draft: bool,
    /// A draft may come without its recipients or its message; a scheduled campaign not.
    pub audience_id: Option<Uuid>,
    pub template_id: Option<Uuid>,
    /// Or a segment's members (one source at most).
    pub segment_id: Option<Uuid>,
    /// Or everyone with the bot installed (Teams only).
    pub all_bot_users: bool,
    /// A survey to send instead of a template (Teams only).
    pub survey_id: Option<Uuid>,
    pub channels: Vec<Channel>,
    pub start_at: DateTime<Utc>,
    /// Spread the sends over this window instead of sending all at `start_at`.
    pub send_window: Option<SendWindow>,
    /// Teams: send only when the recipient is available.
    pub wait_for_availability: bool,
    /// Permission labels (seed 003).
    pub labels: Vec<String>,
    pub created_by: Option<Actor>,
}

/// Where a campaign stands. `Completed` is derived: deliveries written and none of them
/// still pending or retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    /// Saved, edited freely, not sent.
    Draft,
    /// To be broadcast at `start_at`; still editable.
    Scheduled,
    /// Broadcast: its recipients are being written.
    Evaluating,
    Sending,
    Completed,
    Paused,
    Cancelled,
}

impl CampaignStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "scheduled" => Self::Scheduled,
            "evaluating" => Self::Evaluating,
            "sending" => Self::Sending,
            "completed" => Self::Completed,
            "paused" => Self::Paused,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Evaluating => "evaluating",
            Self::Sending => "sending",
            Self::Completed => "completed",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the campaign may still be changed: it has not been broadcast.
    pub fn editable(self) -> bool {
        matches!(self, Self::Draft | Self::Scheduled)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Campaign {
    pub id: Uuid,
    pub name: String,
    pub audience_id: Option<Uuid>,
    /// The template sending uses: once broadcast, a frozen copy of `source_template_id`.
    pub template_id: Option<Uuid>,
    pub channels: Vec<String>,
    pub start_at: DateTime<Utc>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub evaluated_at: Option<DateTime<Utc>>,
    pub send_window: Option<Json<SendWindow>>,
    pub wait_for_availability: bool,
    /// Why its evaluation was given up (dead-lettered); cleared by a replay.
    pub evaluation_error: Option<String>,
    pub labels: Vec<String>,
    pub created_by_id: Option<Uuid>,
    pub created_by_name: Option<String>,
    pub updated_by_id: Option<Uuid>,
    pub updated_by_name: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// Removed from the list (its deliveries and report are kept).
    pub deleted_at: Option<DateTime<Utc>>,
    /// The template chosen, once the message is frozen; until then `template_id` is it.
    pub source_template_id: Option<Uuid>,
    pub message_frozen_at: Option<DateTime<Utc>>,
    /// The audience's name (the seed's "list name").
    pub audience_name: Option<String>,
    /// For a try: the campaign it tries.
    pub try_of: Option<Uuid>,
    /// The recipients as a segment's members instead of an audience.
    pub segment_id: Option<Uuid>,
    pub segment_name: Option<String>,
    /// The recipients as everyone with the bot installed.
    pub all_bot_users: bool,
    /// The survey it sends (its card becomes `template_id` when broadcast).
    pub survey_id: Option<Uuid>,
}

/// Counts of deliveries per state, overall and per channel, and per provider status (what
/// the provider reported after accepting a message) per channel.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CampaignProgress {
    pub total: i64,
    /// Pending or retrying deliveries whose due time is still ahead.
    pub deferred: i64,
    pub by_state: BTreeMap<String, i64>,
    pub by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    pub by_provider_status: BTreeMap<String, BTreeMap<String, i64>>,
}

impl CampaignProgress {
    pub fn count(&self, state: DeliveryState) -> i64 {
        self.by_state.get(state.as_str()).copied().unwrap_or(0)
    }

    /// Deliveries not yet in a final state.
    pub fn open(&self) -> i64 {
        self.count(DeliveryState::Pending) + self.count(DeliveryState::Retrying)
    }
}

impl Campaign {
    pub fn status(&self, progress: &CampaignProgress) -> CampaignStatus {
        match CampaignStatus::parse(&self.status) {
            Some(CampaignStatus::Sending) | None if progress.open() == 0 => {
                CampaignStatus::Completed
            }
            Some(status) => status,
            None => CampaignStatus::Sending,
        }
    }

    /// The template the campaign was made with (not its frozen copy).
    pub fn chosen_template_id(&self) -> Option<Uuid> {
        // A survey campaign's template is the card built from the survey, not a choice.
        if self.survey_id.is_some() {
            return None;
        }
        self.source_template_id.or(self.template_id)
    }

    /// The recipient fields as stored.
    pub fn recipients(&self) -> Recipients {
        Recipients {
            audience_id: self.audience_id,
            segment_id: self.segment_id,
            all_bot_users: self.all_bot_users,
        }
    }

    /// Where the recipients come from; `None` for a draft without any yet.
    pub fn recipient_source(&self) -> Result<Option<RecipientSource>, StoreError> {
        self.recipients().source()
    }
}

pub(crate) const CAMPAIGN_COLUMNS: &str = "id, name, audience_id, template_id, channels, \
     start_at, status, created_at, evaluated_at, send_window, wait_for_availability, \
     evaluation_error, labels, created_by_id, created_by_name, updated_by_id, updated_by_name, \
     updated_at, deleted_at, source_template_id, message_frozen_at, \
     (SELECT a.name FROM audiences a WHERE a.id = audience_id) AS audience_name, try_of, \
     segment_id, (SELECT s.name FROM segments s WHERE s.id = segment_id) AS segment_name, \
     all_bot_users, survey_id";

impl Store {
    /// Creates a draft or a scheduled campaign. What it names must exist; a scheduled one
    /// needs its audience and template, and a fixed audience must have members (a dynamic
    /// one is evaluated on the start day, when who matches may differ from now); checked in
    /// the same transaction as the insert.
    #[tracing::instrument(skip_all, fields(draft = c.draft))]
    pub async fn create_campaign(&self, c: &NewCampaign) -> Result<Campaign, StoreError> {
        let mut tx = self.pool().begin().await?;
        let channels: Vec<String> = c.channels.iter().map(|ch| ch.as_str().to_owned()).collect();
        let refs = References {
            recipients: Recipients {
                audience_id: c.audience_id,
                segment_id: c.segment_id,
                all_bot_users: c.all_bot_users,
            },
            template_id: c.template_id,
            survey_id: c.survey_id,
            channels: &channels,
        };
        check_references(&mut tx, &refs, !c.draft).await?;
        let row = sqlx::query_as::<_, Campaign>(&format!(
            "INSERT INTO campaigns (id, name, audience_id, template_id, channels, start_at,
                                    send_window, wait_for_availability, labels, status,
                                    created_by_id, created_by_name, updated_by_id, updated_by_name,
                                    segment_id, all_bot_users, survey_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $12, $13, $14, $15)
             RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&c.name)
        .bind(c.audience_id)
        .bind(c.template_id)
        .bind(&channels)
        .bind(c.start_at)
        .bind(c.send_window.clone().map(Json))
        .bind(c.wait_for_availability)
        .bind(&c.labels)
        .bind(if c.draft { "draft" } else { "scheduled" })
        .bind(c.created_by.as_ref().map(|a| a.id))
        .bind(c.created_by.as_ref().map(|a| a.name.as_str()))
        .bind(c.segment_id)
        .bind(c.all_bot_users)
        .bind(c.survey_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn get_campaign(&self, id: Uuid) -> Result<Campaign, StoreError> {
        sqlx::query_as::<_, Campaign>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("campaign"))
    }

    pub async fn campaign_progress(&self, id: Uuid) -> Result<CampaignProgress, StoreError> {
        let rows: Vec<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT channel, state, provider_status, count(*),
                    count(*) FILTER (WHERE due_at > now()) AS deferred
             FROM deliveries
             WHERE campaign_id = $1
             GROUP BY channel, state, provider_status",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let mut progress = CampaignProgress::default();
        for (channel, state, provider_status, n, deferred) in rows {
            progress.total += n;
            // Only open deliveries can be waiting for a due time.
            if state == "pending" || state == "retrying" {
                progress.deferred += deferred;
            }
            *progress.by_state.entry(state.clone()).or_default() += n;
            *progress
                .by_channel
                .entry(channel.clone())
                .or_default()
                .entry(state)
                .or_default() += n;
            if let Some(ps) = provider_status {
                *progress
                    .by_provider_status
                    .entry(channel)
                    .or_default()
                    .entry(ps)
                    .or_default() += n;
            }
        }
        Ok(progress)
    }

    /// Claims up to `limit` due campaigns and, in the same statement, queues an evaluate
    /// message for each in the outbox. `FOR UPDATE SKIP LOCKED` lets any number of scheduler
    /// replicas run this at once: each due campaign is claimed by exactly one.
    #[tracing::instrument(skip(self))]
    pub async fn claim_due_campaigns(
        &self,
        limit: i64,
        routing_key: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "WITH due AS (
                 SELECT id FROM campaigns
                 WHERE status = 'scheduled' AND start_at <= now()
                 ORDER BY start_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE campaigns c SET status = 'evaluating', claimed_at = now()
                 FROM due WHERE c.id = due.id
                 RETURNING c.id
             ), queued AS (
                 INSERT INTO outbox (routing_key, payload)
                 SELECT $2, jsonb_build_object('campaign_id', id) FROM claimed
             )
             SELECT id FROM claimed",
        )
        .bind(limit)
        .bind(routing_key)
        .fetch_all(self.pool())
        .await?;
        Ok(ids)
    }
}

/// What a campaign names: its recipients, its message (a template or a survey) and its
/// channels.
pub(crate) struct References<'a> {
    pub recipients: Recipients,
    pub template_id: Option<Uuid>,
    pub survey_id: Option<Uuid>,
    pub channels: &'a [String],
}

/// Why a survey campaign is on Teams alone.
pub const SURVEY_CHANNELS: &str =
    "a survey campaign is sent on Teams only: answers come back through the bot";

/// Checks what a campaign names, under a share lock until the transaction ends: each given
/// reference must exist; a survey is sent alone (no template) and on Teams only; to be
/// broadcast, the recipients (one source, see `check_recipients`) and a message must be
/// given.
pub(crate) async fn check_references(
    tx: &mut sqlx::PgConnection,
    refs: &References<'_>,
    broadcast: bool,
) -> Result<(), StoreError> {
    let References {
        recipients,
        template_id,
        survey_id,
        channels,
    } = *refs;
    if let Some(survey_id) = survey_id {
        if template_id.is_some() {
            return Err(StoreError::Invalid {
                field: "survey_id",
                message: "a campaign sends a template or a survey, not both".into(),
            });
        }
        if channels != ["teams"] {
            return Err(StoreError::Invalid {
                field: "channels",
                message: SURVEY_CHANNELS.into(),
            });
        }
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM surveys WHERE id = $1)")
                .bind(survey_id)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            return Err(StoreError::NotFound("survey"));
        }
    }
    check_recipients(&mut *tx, recipients, channels, broadcast).await?;
    match template_id {
        Some(template_id) => {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM templates WHERE id = $1 AND frozen_for IS NULL)",
            )
            .bind(template_id)
            .fetch_one(&mut *tx)
            .await?;
            if !exists {
                return Err(StoreError::NotFound("template"));
            }
        }
        None if broadcast && survey_id.is_none() => return Err(StoreError::Missing("template_id")),
        None => {}
    }
    Ok(())
}

impl Store {
    /// Records why a campaign's evaluation was given up (its evaluate job dead-lettered).
    pub async fn record_evaluation_error(
        &self,
        campaign_id: Uuid,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE campaigns SET evaluation_error = $2 WHERE id = $1")
            .bind(campaign_id)
            .bind(crate::deliveries::clean_text(reason))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
