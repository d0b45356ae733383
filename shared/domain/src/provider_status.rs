use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What the provider last said about a message it accepted (Twilio's `MessageStatus`, see
/// [`TwilioStatus`] for how Twilio's names map onto these).
///
/// Statuses only move forward: `Queued` < `Sent` < a final one (`Delivered`, `Undelivered`,
/// `Failed`, `Canceled`). Callbacks can arrive out of order or twice, so a status is applied
/// only when it ranks above the recorded one, and a final status is never replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderStatus {
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    /// Canceled before it left the provider (a scheduled message canceled): final, not sent.
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider status `{0}`: expected queued, sent, delivered, undelivered, failed or canceled")]
pub struct UnknownProviderStatus(pub String);

impl ProviderStatus {
    pub const ALL: [ProviderStatus; 6] = [
        ProviderStatus::Queued,
        ProviderStatus::Sent,
        ProviderStatus::Delivered,
        ProviderStatus::Undelivered,
        ProviderStatus::Failed,
        ProviderStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Queued => "queued",
            ProviderStatus::Sent => "sent",
            ProviderStatus::Delivered => "delivered",
            ProviderStatus::Undelivered => "undelivered",
            ProviderStatus::Failed => "failed",
            ProviderStatus::Canceled => "canceled",
        }
    }

    /// Position in the forward-only order; the store's `provider_status_rank()` SQL function
    /// must agree with it.
    pub fn rank(self) -> u8 {
        match self {
            ProviderStatus::Queued => 1,
            ProviderStatus::Sent => 2,
            ProviderStatus::Delivered
            | ProviderStatus::Undelivered
            | ProviderStatus::Failed
            | ProviderStatus::Canceled => 3,
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

/// What a Twilio `MessageStatus` means for a message the fleet sent. Twilio documents
/// thirteen statuses; a signed callback with any of them is answered 2xx (an error answer
/// only makes Twilio log, and with retry settings repeat, a callback we cannot use better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioStatus {
    /// Moves the delivery's provider status (forward only).
    Apply(ProviderStatus),
    /// A status about something else than an outgoing message's fate (`receiving`,
    /// `received`: inbound messages): nothing to record.
    Ignore,
    /// Not a status Twilio documents: nothing to record; logged and counted.
    Unknown,
}

impl TwilioStatus {
    /// `accepted` and `scheduled` (before queueing) are queued; `sending` is sent; `read`
    /// (after delivered, WhatsApp/RCS) is delivered; `partially_delivered` claims no full
    /// delivery, so it counts as sent and a final status may still follow; `canceled` is
    /// final, like failed.
    pub fn parse(s: &str) -> TwilioStatus {
        use ProviderStatus::*;
        match s {
            "accepted" | "scheduled" | "queued" => TwilioStatus::Apply(Queued),
            "sending" | "sent" | "partially_delivered" => TwilioStatus::Apply(Sent),
            "delivered" | "read" => TwilioStatus::Apply(Delivered),
            "undelivered" => TwilioStatus::Apply(Undelivered),
            "failed" => TwilioStatus::Apply(Failed),
            "canceled" => TwilioStatus::Apply(Canceled),
            "receiving" | "received" => TwilioStatus::Ignore,
            _ => TwilioStatus::Unknown,
        }
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
        assert!("cancelled".parse::<ProviderStatus>().is_err());
        assert!("Delivered".parse::<ProviderStatus>().is_err());
    }
}

#[cfg(test)]
mod twilio_tests {
    use super::ProviderStatus::*;
    use super::TwilioStatus;

    #[test]
    fn every_documented_twilio_status_has_a_meaning() {
        for (name, meaning) in [
            ("accepted", TwilioStatus::Apply(Queued)),
            ("scheduled", TwilioStatus::Apply(Queued)),
            ("queued", TwilioStatus::Apply(Queued)),
            ("sending", TwilioStatus::Apply(Sent)),
            ("sent", TwilioStatus::Apply(Sent)),
            ("partially_delivered", TwilioStatus::Apply(Sent)),
            ("delivered", TwilioStatus::Apply(Delivered)),
            ("read", TwilioStatus::Apply(Delivered)),
            ("undelivered", TwilioStatus::Apply(Undelivered)),
            ("failed", TwilioStatus::Apply(Failed)),
            ("canceled", TwilioStatus::Apply(Canceled)),
            ("receiving", TwilioStatus::Ignore),
            ("received", TwilioStatus::Ignore),
            ("Delivered", TwilioStatus::Unknown),
            ("exploded", TwilioStatus::Unknown),
        ] {
            assert_eq!(TwilioStatus::parse(name), meaning, "{name}");
        }
    }
}
