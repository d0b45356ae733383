//! The messages that travel through RabbitMQ. They are JSON so that an operator can read a
//! dead letter; every field a consumer needs is in the message, so the hot path does not
//! read Postgres.

use crate::{Channel, Recipient};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Published by the scheduler when a campaign is due: expand its audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluateJob {
    pub campaign_id: Uuid,
}

/// Published by the evaluator, one per delivery row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    pub delivery_id: i64,
    pub campaign_id: Uuid,
    pub channel: Channel,
    pub template_id: Uuid,
    /// Who the recipient is, so a sender can honour an opt-out or a deactivation made after
    /// the job was published. Absent from jobs of earlier releases (they are sent as before).
    #[serde(default)]
    pub person_id: Option<Uuid>,
    pub recipient: Recipient,
    /// 1 for the first try; retries carry the next attempt number.
    pub attempt: u32,
    /// Set when this job may be a second copy (published again after a crash, or a retry):
    /// the sender then checks the recorded outcome before sending.
    #[serde(default)]
    pub maybe_duplicate: bool,
    /// Send only when the recipient's presence says available (Teams; seed 001).
    #[serde(default)]
    pub wait_for_availability: bool,
    /// The campaign's link key, which tracking tokens name (`tracking_token`). Absent from
    /// jobs of earlier releases: their links are sent untracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_key: Option<i64>,
}

impl SendJob {
    /// The key every provider call carries, the same for every attempt of one delivery,
    /// so that a provider (or the simulator) that deduplicates can do so.
    pub fn idempotency_key(&self) -> String {
        format!("pf-{}-{}", self.campaign_id.simple(), self.delivery_id)
    }
}

/// The bot's answer to a Teams button pressed in a message (Action.Submit): written to the
/// outbox by the api with the opt-in or opt-out it confirms, posted by the teams-sender as a
/// reply to that activity. An `invoke` (Action.Execute) is answered in its HTTP response
/// instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotReplyJob {
    /// The activity answered: the reply's `replyToId`, and the key that keeps a redelivered
    /// job from posting twice.
    pub activity_id: String,
    pub service_url: String,
    pub conversation_id: String,
    pub text: String,
    /// When the button was pressed: a reply that could not be posted for long is given up.
    pub requested_at: chrono::DateTime<chrono::Utc>,
}
