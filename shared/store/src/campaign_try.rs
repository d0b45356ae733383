//! Try (seed 001: "Enter your e-mail address to check the efficiency of your campaign"):
//! the campaign's message sent now to one person, on each of the campaign's channels that
//! person can receive. A try is a campaign of its own (`is_try`), sent by the engine like
//! any other, listed nowhere and counted in no report but its own.

use crate::campaigns::{Actor, Campaign, CAMPAIGN_COLUMNS};
use crate::{Store, StoreError};
use pushfleet_domain::Channel;
use uuid::Uuid;

/// Why a person cannot get a try on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub channel: Channel,
    pub reason: &'static str,
}

/// A try that was started, and the channels it leaves out.
#[derive(Debug, Clone)]
pub struct Try {
    pub campaign: Campaign,
    pub unreachable: Vec<Unreachable>,
}

/// Why no try was started.
#[derive(Debug, thiserror::Error)]
pub enum TryError {
    #[error("no active person has this e-mail address")]
    NoSuchPerson,
    #[error("the campaign has no message yet")]
    NoMessage,
    #[error("the person cannot receive the campaign on any of its channels")]
    Unreachable(Vec<Unreachable>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TryError {
    fn from(e: sqlx::Error) -> Self {
        TryError::Store(e.into())
    }
}

/// What a try takes of the campaign: name, template chosen, channels, labels, survey.
type TriedCampaign = (String, Option<Uuid>, Vec<String>, Vec<String>, Option<Uuid>);

impl Store {
    /// Starts a try of campaign `id` for the person with `email`.
    #[tracing::instrument(skip(self, email, actor))]
    pub async fn try_campaign(
        &self,
        id: Uuid,
        email: &str,
        actor: &Actor,
    ) -> Result<Try, TryError> {
        let mut tx = self.pool().begin().await?;
        let original: Option<TriedCampaign> = sqlx::query_as(
            "SELECT name,
                    CASE WHEN survey_id IS NULL THEN coalesce(source_template_id, template_id) END,
                    channels, labels, survey_id
             FROM campaigns WHERE id = $1 AND deleted_at IS NULL AND NOT is_try FOR SHARE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let (name, template_id, channels, labels, survey_id) =
            original.ok_or(StoreError::NotFound("campaign"))?;
        // A survey's try gets its own card (built when the try is broadcast), whose answers
        // are the try's, not the campaign's.
        if template_id.is_none() && survey_id.is_none() {
            return Err(TryError::NoMessage);
        }
        let person: Option<(Uuid, bool, bool, bool)> = sqlx::query_as(
            "SELECT id, email IS NOT NULL, phone IS NOT NULL, teams_conversation IS NOT NULL
             FROM people WHERE lower(email) = lower($1) AND active
             ORDER BY created_at LIMIT 1",
        )
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?;
        let (person_id, has_email, has_phone, has_teams) = person.ok_or(TryError::NoSuchPerson)?;
        let mut reachable = Vec::new();
        let mut unreachable = Vec::new();
        for channel in channels.iter().filter_map(|c| c.parse::<Channel>().ok()) {
            let reason = match channel {
                Channel::Email if !has_email => Some("the person has no e-mail address"),
                Channel::Sms if !has_phone => Some("the person has no phone number"),
                Channel::Teams if !has_teams => {
                    Some("the person has not installed the bot in Microsoft Teams")
                }
                _ => None,
            };
            match reason {
                Some(reason) => unreachable.push(Unreachable { channel, reason }),
                None => reachable.push(channel.as_str()),
            }
        }
        if reachable.is_empty() {
            return Err(TryError::Unreachable(unreachable));
        }
        let audience_id = Uuid::now_v7();
        sqlx::query("INSERT INTO audiences (id, name, labels) VALUES ($1, $2, $3)")
            .bind(audience_id)
            .bind(format!("try of {name}"))
            .bind(&labels)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO audience_members (audience_id, person_id) VALUES ($1, $2)")
            .bind(audience_id)
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        let campaign = sqlx::query_as::<_, Campaign>(&format!(
            "INSERT INTO campaigns (id, name, status, audience_id, template_id, channels,
                                    start_at, labels, is_try, try_of,
                                    created_by_id, created_by_name, updated_by_id, updated_by_name,
                                    survey_id)
             VALUES ($1, $2, 'scheduled', $3, $4, $5, now(), $6, true, $7, $8, $9, $8, $9, $10)
             RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(format!("try: {name}"))
        .bind(audience_id)
        .bind(template_id)
        .bind(&reachable)
        .bind(&labels)
        .bind(id)
        .bind(actor.id)
        .bind(&actor.name)
        .bind(survey_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Try {
            campaign,
            unreachable,
        })
    }
}
