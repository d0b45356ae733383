//! Where a campaign's recipients come from (seed 001: "an existing distribution list ... or
//! all users: users who have the chatbot application on their Teams"): an audience, a
//! segment, or everyone with the bot installed. Who they are is one SQL fragment per source
//! (`Members::push_from`), read by the count before sending (`campaign_reach`) and by the
//! broadcast's expansion (`deliveries`), so the two cannot disagree.

use crate::criteria_sql::push_audience_filter;
use crate::StoreError;
use chrono::NaiveDate;
use pushfleet_domain::criteria::Criteria;
use pushfleet_domain::Channel;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

/// A campaign's one source of recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientSource {
    Audience(Uuid),
    Segment(Uuid),
    /// Everyone active with a Teams conversation reference (Teams campaigns only).
    EveryoneWithBot,
}

/// The recipient fields of a campaign, as stored or as a change leaves them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recipients {
    pub audience_id: Option<Uuid>,
    pub segment_id: Option<Uuid>,
    pub all_bot_users: bool,
}

impl Recipients {
    /// The one source named; `None` when none is; `Invalid` naming a field when several are.
    pub fn source(&self) -> Result<Option<RecipientSource>, StoreError> {
        let given = [
            self.audience_id.map(RecipientSource::Audience),
            self.segment_id.map(RecipientSource::Segment),
            self.all_bot_users
                .then_some(RecipientSource::EveryoneWithBot),
        ];
        let mut named = given.into_iter().flatten();
        let first = named.next();
        match named.next() {
            None => Ok(first),
            Some(second) => Err(StoreError::Invalid {
                field: match second {
                    RecipientSource::Segment(_) => "segment_id",
                    _ => "all_bot_users",
                },
                message: "give one source of recipients: audience_id, segment_id or \
                          all_bot_users"
                    .into(),
            }),
        }
    }

    /// These recipients after a change: a source given replaces the others (the choice is
    /// one); `all_bot_users: false` alone only clears that source.
    pub fn changed(self, change: Recipients, bot_given: Option<bool>) -> Recipients {
        match (change.audience_id, change.segment_id, bot_given) {
            (None, None, None) => self,
            (None, None, Some(false)) => Recipients {
                all_bot_users: false,
                ..self
            },
            _ => Recipients {
                all_bot_users: bot_given.unwrap_or(false),
                ..change
            },
        }
    }
}

/// Who the members are, at the moment a query reads them.
pub(crate) enum Members<'a> {
    /// A fixed audience's active members.
    Audience(Uuid),
    /// Who matches a dynamic audience's criteria on a day (a count before the broadcast).
    Matching(&'a Criteria, NaiveDate),
    /// A dynamic audience as frozen at the broadcast.
    Snapshot(Uuid),
    /// A segment's active members; who left it on their own is not one (an opt-out
    /// removes the membership; checked again here so an upload racing it cannot add back).
    Segment(Uuid),
    /// Everyone active with a Teams conversation reference: the bot is installed.
    EveryoneWithBot,
}

impl Members<'_> {
    /// Appends ` FROM ... WHERE ...` over `people p`, values as bind parameters.
    pub(crate) fn push_from<'q>(&self, q: &mut QueryBuilder<'q, Postgres>) {
        match self {
            Members::Audience(id) => {
                q.push(
                    " FROM audience_members m JOIN people p ON p.id = m.person_id
                     WHERE p.active AND m.audience_id = ",
                )
                .push_bind(*id);
            }
            Members::Matching(criteria, as_of) => {
                q.push(" FROM people p WHERE ");
                push_audience_filter(q, criteria, *as_of);
            }
            Members::Snapshot(id) => {
                q.push(
                    " FROM audience_snapshot_members m JOIN people p ON p.id = m.person_id
                     WHERE m.snapshot_id = ",
                )
                .push_bind(*id);
            }
            Members::Segment(id) => {
                q.push(
                    " FROM segment_members m JOIN people p ON p.id = m.person_id
                     WHERE p.active AND NOT EXISTS (
                         SELECT 1 FROM segment_opt_outs o
                         WHERE o.segment_id = m.segment_id AND o.person_id = m.person_id)
                       AND m.segment_id = ",
                )
                .push_bind(*id);
            }
            Members::EveryoneWithBot => {
                q.push(" FROM people p WHERE p.active AND p.teams_conversation IS NOT NULL");
            }
        }
    }
}

/// Checks a campaign's recipients under a share lock until the transaction ends: at most
/// one source; the one named exists; everyone with the bot only on Teams; to be broadcast,
/// a source is named and a fixed audience or a segment has members (a dynamic audience is
/// evaluated on the start day, when who matches may differ from now).
pub(crate) async fn check_recipients(
    tx: &mut PgConnection,
    recipients: Recipients,
    channels: &[impl AsRef<str>],
    broadcast: bool,
) -> Result<(), StoreError> {
    let members: Option<i64> = match recipients.source()? {
        None if broadcast => return Err(StoreError::Missing("audience_id")),
        None => return Ok(()),
        Some(RecipientSource::EveryoneWithBot) => {
            if channels.iter().any(|c| c.as_ref() != Channel::Teams.as_str()) {
                return Err(StoreError::Invalid {
                    field: "all_bot_users",
                    message: "everyone with the bot is reached on Teams only: the campaign's \
                              channels must be just teams"
                        .into(),
                });
            }
            return Ok(());
        }
        Some(RecipientSource::Audience(id)) => sqlx::query_scalar(
            "SELECT CASE WHEN a.kind = 'dynamic' THEN -1
                         ELSE (SELECT count(*) FROM audience_members m WHERE m.audience_id = a.id) END
             FROM audiences a WHERE a.id = $1 FOR SHARE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(Some)
        .ok_or(StoreError::NotFound("audience"))?,
        Some(RecipientSource::Segment(id)) => sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM segment_members m WHERE m.segment_id = s.id)
             FROM segments s WHERE s.id = $1 FOR SHARE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(Some)
        .ok_or(StoreError::NotFound("segment"))?,
    };
    match (members, recipients.segment_id) {
        (Some(0), None) if broadcast => {
            Err(StoreError::Conflict("the audience has no members".into()))
        }
        (Some(0), Some(_)) if broadcast => {
            Err(StoreError::Conflict("the segment has no members".into()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_at_most() {
        let a = Uuid::now_v7();
        let s = Uuid::now_v7();
        let two = Recipients {
            audience_id: Some(a),
            segment_id: Some(s),
            all_bot_users: false,
        };
        assert!(matches!(
            two.source(),
            Err(StoreError::Invalid {
                field: "segment_id",
                ..
            })
        ));
        let bot = Recipients {
            all_bot_users: true,
            ..Default::default()
        };
        assert_eq!(
            bot.source().ok(),
            Some(Some(RecipientSource::EveryoneWithBot))
        );
        assert_eq!(Recipients::default().source().ok(), Some(None));
    }

    #[test]
    fn a_source_given_replaces_the_others() {
        let a = Uuid::now_v7();
        let s = Uuid::now_v7();
        let audience = Recipients {
            audience_id: Some(a),
            ..Default::default()
        };
        let segment = Recipients {
            segment_id: Some(s),
            ..Default::default()
        };
        assert_eq!(audience.changed(segment, None), segment);
        assert_eq!(audience.changed(Recipients::default(), None), audience);
        let bot = audience.changed(Recipients::default(), Some(true));
        assert_eq!(
            bot.source().ok(),
            Some(Some(RecipientSource::EveryoneWithBot))
        );
        let cleared = bot.changed(Recipients::default(), Some(false));
        assert_eq!(cleared, Recipients::default());
        // Two given at once stay two: the check refuses them.
        let both = Recipients {
            audience_id: Some(a),
            segment_id: Some(s),
            all_bot_users: false,
        };
        assert!(Recipients::default().changed(both, None).source().is_err());
    }
}
