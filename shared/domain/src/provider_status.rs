use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What the provider last said about a message it accepted (Twilio's `MessageStatus`).
///
/// Statuses only move forward: `Queued` < `Sent` < a final one (`Delivered`, `Undelivered`,
/// `Failed`). Callbacks can arrive out of order or twice, so a status is applied only when it
/// ranks above the recorded one, and a final status is never replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderStatus {
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider status `{0}`: expected queued, sent, delivered, undelivered or failed")]
pub struct UnknownProviderStatus(pub String);

impl ProviderStatus {
    pub const ALL: [ProviderStatus; 5] = [
        ProviderStatus::Queued,
        ProviderStatus::Sent,
        ProviderStatus::Delivered,
        ProviderStatus::Undelivered,
        ProviderStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Queued => "queued",
            ProviderStatus::Sent => "sent",
            ProviderStatus::Delivered => "delivered",
            ProviderStatus::Undelivered => "undelivered",
            ProviderStatus::Failed => "failed",
        }
    }

    /// Position in the forward-only order; the store's `provider_status_rank()` SQL function
    /// must agree with it.
    pub fn rank(self) -> u8 {
        match self {
            ProviderStatus::Queued => 1,
            ProviderStatus::Sent => 2,
            ProviderStatus::Delivered | ProviderStatus::Undelivered | ProviderStatus::Failed => 3,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() == 3
    }

    /// Whether a callback saying `self` should replace the recorded `current` status.
    pub fn supersedes(self, current: Option<ProviderStatus>) -> bool {
        current.is_none_or(|c| self.rank() > c.rank())
    }
}

impl fmt::Display for ProviderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderStatus {
    type Err = UnknownProviderStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownProviderStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::ProviderStatus::*;
    use super::*;

    #[test]
    fn moves_only_forward_and_never_leaves_a_final_status() {
        assert!(Queued.supersedes(None));
        assert!(Sent.supersedes(Some(Queued)));
        assert!(Delivered.supersedes(Some(Sent)));
        assert!(!Sent.supersedes(Some(Delivered)));
        assert!(!Sent.supersedes(Some(Sent)));
        assert!(!Undelivered.supersedes(Some(Delivered)));
        assert!(!Failed.supersedes(Some(Undelivered)));
    }

    #[test]
    fn parses_twilios_names_only() {
        for s in ProviderStatus::ALL {
            assert_eq!(s.as_str().parse::<ProviderStatus>(), Ok(s));
        }
        assert!("read".parse::<ProviderStatus>().is_err());
        assert!("Delivered".parse::<ProviderStatus>().is_err());
    }
}
