//! Announcements of opt-outs and deactivations, for the senders: the triggers of migration
//! `20261122000010_opt_out_notices.sql` notify [`OPT_OUT_NOTICES`] in the transaction that
//! makes each change, and a sender that lost its listener reads what changed recently.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::Channel;
use serde::Deserialize;
use uuid::Uuid;

/// The Postgres notification channel the triggers write to.
pub const OPT_OUT_NOTICES: &str = "pushfleet_opt_outs";

/// What one notice says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOutScope {
    /// The person's opt-out of one channel.
    Channel(Channel),
    /// The person's active flag: every channel.
    Deactivation,
}

/// One change: `opted_out` is true when sends to the person (on `scope`) must stop, false
/// when they may resume (an opt-in, a reactivation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptOutNotice {
    pub person_id: Uuid,
    pub scope: OptOutScope,
    pub opted_out: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OptOutNoticeError {
    #[error("not an opt-out notice: {0}")]
    Json(#[from] serde_json::Error),
    #[error("opt-out notice names an unknown channel `{0}`")]
    Channel(String),
}

#[derive(Deserialize)]
struct Payload {
    person_id: Uuid,
    channel: String,
    opted_out: bool,
}

impl OptOutNotice {
    pub fn parse(payload: &str) -> Result<Self, OptOutNoticeError> {
        let p: Payload = serde_json::from_str(payload)?;
        let scope = if p.channel == "all" {
            OptOutScope::Deactivation
        } else {
            OptOutScope::Channel(
                p.channel
                    .parse()
                    .map_err(|_| OptOutNoticeError::Channel(p.channel.clone()))?,
            )
        };
        Ok(Self {
            person_id: p.person_id,
            scope,
            opted_out: p.opted_out,
        })
    }
}

impl Store {
    /// People opted out of `channel` since `since` (earlier opt-outs cannot concern a job
    /// still queued: it would have been skipped when published).
    pub async fn opted_out_since(
        &self,
        channel: Channel,
        since: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT person_id FROM channel_opt_outs WHERE channel = $1 AND opted_out_at >= $2",
        )
        .bind(channel.as_str())
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }

    /// People deactivated since `since` and still inactive.
    pub async fn deactivated_since(&self, since: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM people WHERE NOT active AND deactivated_at >= $1")
                .bind(since)
                .fetch_all(self.pool())
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_as_the_triggers_write_them() {
        let id = Uuid::now_v7();
        let out = format!(
            r#"{{"person_id": "{id}", "channel": "sms", "opted_out": true, "at": "2026-11-22T10:00:00.1+00:00"}}"#
        );
        assert_eq!(
            OptOutNotice::parse(&out).expect("parses"),
            OptOutNotice {
                person_id: id,
                scope: OptOutScope::Channel(Channel::Sms),
                opted_out: true
            }
        );
        let back = format!(r#"{{"person_id": "{id}", "channel": "all", "opted_out": false}}"#);
        assert_eq!(
            OptOutNotice::parse(&back).expect("parses").scope,
            OptOutScope::Deactivation
        );
        assert!(OptOutNotice::parse(r#"{"person_id": "x"}"#).is_err());
        let fax = format!(r#"{{"person_id": "{id}", "channel": "fax", "opted_out": true}}"#);
        assert!(matches!(
            OptOutNotice::parse(&fax),
            Err(OptOutNoticeError::Channel(c)) if c == "fax"
        ));
    }
}
