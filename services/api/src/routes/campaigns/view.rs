//! How a campaign is shown: the seed's information view (channels, message, list name,
//! start, duration, who made and changed it) and, for one campaign, its progress.

use chrono::{DateTime, Utc};
use pushfleet_domain::{Channel, SendWindow};
use pushfleet_store::{Campaign, CampaignProgress, CampaignStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ProgressView {
    /// Delivery rows written (one per recipient and channel).
    pub total: i64,
    /// Pending or retrying deliveries waiting for their due time (spread sends, long retries).
    pub deferred: i64,
    /// Counts per delivery state: pending, retrying, sent, failed, dead.
    pub by_state: BTreeMap<String, i64>,
    pub by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per channel, counts per status the provider reported after accepting a message
    /// (SMS: queued, sent, delivered, undelivered, failed). Deliveries without a report
    /// are not counted.
    pub by_provider_status: BTreeMap<String, BTreeMap<String, i64>>,
}

impl From<CampaignProgress> for ProgressView {
    fn from(p: CampaignProgress) -> Self {
        Self {
            total: p.total,
            deferred: p.deferred,
            by_state: p.by_state,
            by_channel: p.by_channel,
            by_provider_status: p.by_provider_status,
        }
    }
}

/// Who made or last changed a campaign: an operator or an API key.
#[derive(Serialize, ToSchema)]
pub struct ActorView {
    pub id: Uuid,
    pub name: String,
}

fn actor(id: Option<Uuid>, name: Option<String>) -> Option<ActorView> {
    Some(ActorView {
        id: id?,
        name: name.unwrap_or_default(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    pub id: Uuid,
    pub name: String,
    /// `draft` (edited freely), `scheduled` (sent at `start_at`, still editable),
    /// `evaluating` and `sending` (broadcast), `completed`, `paused`, `cancelled`.
    pub status: CampaignStatus,
    /// The recipients, one of: an audience, a segment, or everyone with the bot (absent
    /// from a draft not given them yet).
    pub audience_id: Option<Uuid>,
    /// The audience's name.
    pub audience_name: Option<String>,
    pub segment_id: Option<Uuid>,
    pub segment_name: Option<String>,
    /// Everyone who has the bot installed in Teams.
    pub all_bot_users: bool,
    /// The seed's "list name": the audience's or the segment's name, or "everyone with the
    /// bot".
    pub list_name: Option<String>,
    /// The message: the template chosen. Once broadcast the campaign sends a frozen copy of
    /// it, so later edits of the template change nothing here.
    pub template_id: Option<Uuid>,
    /// The message of a survey campaign (Teams only): the survey sent as an Adaptive Card.
    pub survey_id: Option<Uuid>,
    #[schema(value_type = Vec<Channel>)]
    pub channels: Vec<String>,
    /// When it starts (or started).
    pub start_at: DateTime<Utc>,
    /// The spread-out sending window, when the campaign has one.
    #[schema(value_type = Option<Object>)]
    pub send_window: Option<SendWindow>,
    /// Days the sends spread over (the seed's "duration"); 1 without a window.
    pub duration_days: u32,
    pub wait_for_availability: bool,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<ActorView>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<ActorView>,
    /// When the message was frozen: the broadcast.
    pub message_frozen_at: Option<DateTime<Utc>>,
    pub evaluated_at: Option<DateTime<Utc>>,
    /// Removed from the list (its deliveries and report are kept).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Why the evaluation was given up after repeated failures, when it was; replaying the
    /// campaign's dead letters evaluates it again.
    pub evaluation_error: Option<String>,
    /// For a try (`POST .../try`): the campaign it tries.
    pub try_of: Option<Uuid>,
    /// Delivery counts (one campaign's view; not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressView>,
}

impl CampaignView {
    /// One campaign, with its progress.
    pub fn new(c: Campaign, p: CampaignProgress) -> Self {
        let status = c.status(&p);
        Self::with_status(c, status, Some(p))
    }

    /// A campaign as a list shows it.
    pub fn with_status(c: Campaign, status: CampaignStatus, p: Option<CampaignProgress>) -> Self {
        let template_id = c.chosen_template_id();
        let send_window = c.send_window.map(|w| w.0);
        let list_name = c
            .audience_name
            .clone()
            .or_else(|| c.segment_name.clone())
            .or_else(|| c.all_bot_users.then(|| "everyone with the bot".to_owned()));
        Self {
            list_name,
            segment_id: c.segment_id,
            segment_name: c.segment_name,
            all_bot_users: c.all_bot_users,
            status,
            id: c.id,
            name: c.name,
            audience_id: c.audience_id,
            audience_name: c.audience_name,
            template_id,
            survey_id: c.survey_id,
            channels: c.channels,
            start_at: c.start_at,
            duration_days: send_window.as_ref().map_or(1, |w| w.days),
            send_window,
            wait_for_availability: c.wait_for_availability,
            labels: c.labels,
            created_at: c.created_at,
            created_by: actor(c.created_by_id, c.created_by_name),
            updated_at: c.updated_at,
            updated_by: actor(c.updated_by_id, c.updated_by_name),
            message_frozen_at: c.message_frozen_at,
            evaluated_at: c.evaluated_at,
            deleted_at: c.deleted_at,
            evaluation_error: c.evaluation_error,
            try_of: c.try_of,
            progress: p.map(ProgressView::from),
        }
    }
}
