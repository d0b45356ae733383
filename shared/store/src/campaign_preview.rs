//! A person as a campaign's preview renders for them (seed 001's "refresh Preview"): the
//! recipient built from the same columns and code as a send job's, and why a channel
//! would not reach them.

use crate::deliveries::{recipient_columns, RecipientRow};
use crate::{Store, StoreError};
use pushfleet_domain::{Channel, Recipient};
use uuid::Uuid;

/// How the caller names the person.
#[derive(Debug, Clone, Copy)]
pub enum PersonKey<'a> {
    Id(Uuid),
    /// Case-insensitive, as the directory stores it.
    Email(&'a str),
}

/// The person a preview is rendered for.
#[derive(Debug, Clone)]
pub struct PreviewPerson {
    pub person_id: Uuid,
    /// Exactly what a send job would carry.
    pub recipient: Recipient,
    /// The channels the person opted out of.
    pub opted_out: Vec<Channel>,
}

impl PreviewPerson {
    /// Why `channel` would not reach the person now, `None` when it would.
    pub fn unreachable_reason(&self, channel: Channel) -> Option<&'static str> {
        let r = &self.recipient;
        let missing = match channel {
            Channel::Email => r.email.is_none(),
            Channel::Sms => r.phone.is_none(),
            Channel::Teams => r.teams.is_none(),
        };
        if missing {
            return Some(match channel {
                Channel::Email => "the person has no e-mail address",
                Channel::Sms => "the person has no phone number",
                Channel::Teams => "the person has not installed the bot in Microsoft Teams",
            });
        }
        if self.opted_out.contains(&channel) {
            return Some("the person opted out of this channel");
        }
        None
    }
}

#[derive(sqlx::FromRow)]
struct PreviewRow {
    #[sqlx(flatten)]
    person: RecipientRow,
    opted_out: Vec<String>,
}

impl Store {
    /// The active person named by `key`, as a send job would carry them; `NotFound` for
    /// nobody or a deactivated person (no campaign reaches them).
    #[tracing::instrument(skip(self))]
    pub async fn preview_person(&self, key: PersonKey<'_>) -> Result<PreviewPerson, StoreError> {
        let (id, email) = match key {
            PersonKey::Id(id) => (Some(id), None),
            PersonKey::Email(email) => (None, Some(email)),
        };
        let row: Option<PreviewRow> = sqlx::query_as(concat!(
            "SELECT ",
            recipient_columns!(),
            ", array(SELECT o.channel FROM channel_opt_outs o WHERE o.person_id = p.id
                     ORDER BY o.channel) AS opted_out
             FROM people p
             WHERE p.active AND (p.id = $1 OR lower(p.email) = lower($2))
             ORDER BY p.created_at LIMIT 1"
        ))
        .bind(id)
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        let row = row.ok_or(StoreError::NotFound("person"))?;
        let person_id = row.person.person_id.ok_or(StoreError::NotFound("person"))?;
        // No channel of its own: an address that does not parse is left out, and the
        // channel then says it has none, as a send would fail it.
        let recipient = row
            .person
            .into_recipient(None, None)
            .map_err(StoreError::Corrupt)?;
        Ok(PreviewPerson {
            person_id,
            recipient,
            opted_out: row
                .opted_out
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
        })
    }
}
