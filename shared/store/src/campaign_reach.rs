//! Who a campaign would reach now, per channel (issue 13: "the number of recipients is
//! shown before sending, per channel, with how many cannot be reached on that channel and
//! why"): counts only, no personal data.

use crate::campaign_recipients::{Members, RecipientSource};
use crate::{Store, StoreError};
use chrono::NaiveDate;
use pushfleet_domain::criteria::Criteria;
use pushfleet_domain::Channel;
use sqlx::{Postgres, QueryBuilder};

/// One channel's share of the recipients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelReach {
    pub channel: Option<Channel>,
    /// Would get the message.
    pub reachable: i64,
    /// No address on the channel (for Teams: the bot is not installed).
    pub no_address: i64,
    /// Opted out of the channel.
    pub opted_out: i64,
}

/// The recipients now, and per channel asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub recipients: i64,
    pub channels: Vec<ChannelReach>,
}

fn address_column(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "p.email",
        Channel::Sms => "p.phone",
        Channel::Teams => "p.teams_conversation",
    }
}

impl Store {
    /// Counts, per channel, who of a campaign's recipients (active people: a fixed
    /// audience's or a segment's members, who matches a dynamic audience's criteria on
    /// `as_of`, or everyone with the bot) can get a message, and why the others cannot.
    #[tracing::instrument(skip(self, channels))]
    pub async fn campaign_reach(
        &self,
        source: RecipientSource,
        channels: &[Channel],
        as_of: NaiveDate,
    ) -> Result<Reach, StoreError> {
        let criteria;
        let members = match source {
            RecipientSource::Audience(audience_id) => {
                let audience: Option<(String, Option<serde_json::Value>)> =
                    sqlx::query_as("SELECT kind, criteria FROM audiences WHERE id = $1")
                        .bind(audience_id)
                        .fetch_optional(self.pool())
                        .await?;
                match audience.ok_or(StoreError::NotFound("audience"))? {
                    (kind, criteria_json) if kind == "dynamic" => {
                        criteria = criteria_json
                            .as_ref()
                            .map(Criteria::parse)
                            .and_then(Result::ok)
                            .ok_or_else(|| {
                                StoreError::Corrupt(format!(
                                    "audience {audience_id}: criteria do not parse"
                                ))
                            })?;
                        Members::Matching(&criteria, as_of)
                    }
                    _ => Members::Audience(audience_id),
                }
            }
            RecipientSource::Segment(id) => Members::Segment(id),
            RecipientSource::EveryoneWithBot => Members::EveryoneWithBot,
        };
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT count(*)");
        for channel in channels {
            let column = address_column(*channel);
            let opted_out = format!(
                "EXISTS (SELECT 1 FROM channel_opt_outs o WHERE o.person_id = p.id AND o.channel = '{}')",
                channel.as_str()
            );
            // Columns and channel names come from the enum above, never from input.
            q.push(format!(
                ", count(*) FILTER (WHERE {column} IS NOT NULL AND NOT {opted_out}),
                   count(*) FILTER (WHERE {column} IS NULL),
                   count(*) FILTER (WHERE {column} IS NOT NULL AND {opted_out})"
            ));
        }
        members.push_from(&mut q);
        let row = q.build().fetch_one(self.pool()).await?;
        use sqlx::Row;
        let mut reach = Reach {
            recipients: row.try_get(0)?,
            channels: Vec::with_capacity(channels.len()),
        };
        for (i, channel) in channels.iter().enumerate() {
            reach.channels.push(ChannelReach {
                channel: Some(*channel),
                reachable: row.try_get(1 + 3 * i)?,
                no_address: row.try_get(2 + 3 * i)?,
                opted_out: row.try_get(3 + 3 * i)?,
            });
        }
        Ok(reach)
    }
}
