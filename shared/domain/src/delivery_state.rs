use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where one delivery (one recipient, one channel) stands.
///
/// `Pending` covers "written, maybe published, not yet answered by the provider";
/// `Retrying` means a transient failure is waiting in a delay queue. `Sent`, `Failed`
/// (permanent provider error, or nothing to send to), `Dead` (attempts exhausted,
/// parked in the dead-letter queue) and `Skipped` (not sent on purpose: the person opted
/// out of the channel or was deactivated) are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Retrying,
    Sent,
    Failed,
    Dead,
    Skipped,
    /// Its campaign was cancelled before it was sent.
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Pending,
        DeliveryState::Retrying,
        DeliveryState::Sent,
        DeliveryState::Failed,
        DeliveryState::Dead,
        DeliveryState::Skipped,
        DeliveryState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Dead => "dead",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// A final state is never left again: a redelivered job for it is dropped.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Sent
                | DeliveryState::Failed
                | DeliveryState::Dead
                | DeliveryState::Skipped
                | DeliveryState::Cancelled
        )
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown delivery state `{s}`"))
    }
}
