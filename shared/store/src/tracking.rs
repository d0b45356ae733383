//! Clicks and opens (issue 13): the api's recorder writes them in batches; the report reads
//! them (`campaign_report`).

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a recipient did, as the redirect or the pixel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrackingEvent {
    /// Made when the request arrived: writing the same event twice adds it once.
    pub event_id: Uuid,
    pub campaign_id: Uuid,
    pub delivery_id: i64,
    /// `None` for an open; the link's position for a click.
    pub link: Option<u16>,
    pub occurred_at: DateTime<Utc>,
    /// Why the request looks like a scanner's, as far as the request alone tells (HEAD, a
    /// known user agent). The insert adds "within a second of delivery".
    pub scanner: Option<&'static str>,
    pub user_agent: Option<String>,
}

/// What a campaign's links lead to: the campaign and its (frozen) template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkedCampaign {
    pub campaign_id: Uuid,
    pub template_id: Option<Uuid>,
}

/// The scanner reason the insert gives a request that came too soon to be a person's.
pub const TOO_SOON: &str = "within a second of delivery";

impl Store {
    /// Writes a batch of events in one statement. An event naming a delivery that is not
    /// its campaign's is dropped (a token is authenticated, so only a bug could make one).
    #[tracing::instrument(skip_all, fields(count = events.len()))]
    pub async fn record_tracking_events(
        &self,
        events: &[NewTrackingEvent],
    ) -> Result<u64, StoreError> {
        let mut ids = Vec::with_capacity(events.len());
        let mut campaigns = Vec::with_capacity(events.len());
        let mut deliveries = Vec::with_capacity(events.len());
        let mut links: Vec<Option<i16>> = Vec::with_capacity(events.len());
        let mut at = Vec::with_capacity(events.len());
        let mut scanners: Vec<Option<&str>> = Vec::with_capacity(events.len());
        let mut agents: Vec<Option<&str>> = Vec::with_capacity(events.len());
        for e in events {
            ids.push(e.event_id);
            campaigns.push(e.campaign_id);
            deliveries.push(e.delivery_id);
            links.push(e.link.and_then(|l| i16::try_from(l).ok()));
            at.push(e.occurred_at);
            scanners.push(e.scanner);
            agents.push(e.user_agent.as_deref());
        }
        // A delivery not yet recorded as sent, or sent less than a second before, was
        // fetched by a machine: a mail gateway's link check, not its recipient.
        // One statement: the events (a replayed one conflicts and counts no more), then
        // the running counts from what was inserted (`tracking_counts`, `tracking_firsts`).
        let written: i64 = sqlx::query_scalar(
            "WITH inserted AS (
                 INSERT INTO tracking_events
                     (event_id, campaign_id, delivery_id, kind, link, occurred_at, scanner, user_agent)
                 SELECT u.event_id, u.campaign_id, u.delivery_id,
                        CASE WHEN u.link IS NULL THEN 'open' ELSE 'click' END,
                        u.link, u.occurred_at,
                        coalesce(u.scanner, CASE WHEN d.state <> 'sent'
                                                  OR u.occurred_at < d.updated_at + interval '1 second'
                                                 THEN $8 END),
                        u.user_agent
                 FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::smallint[],
                             $5::timestamptz[], $6::text[], $7::text[])
                      AS u(event_id, campaign_id, delivery_id, link, occurred_at, scanner, user_agent)
                 JOIN deliveries d ON d.id = u.delivery_id AND d.campaign_id = u.campaign_id
                 ON CONFLICT (event_id) DO NOTHING
                 RETURNING campaign_id, delivery_id, kind, link, scanner
             ),
             -- Each event counts for its link and for all of its kind (-1).
             keyed AS (
                 SELECT i.campaign_id, i.delivery_id, i.kind, k.link, i.scanner
                 FROM inserted i
                 CROSS JOIN LATERAL (VALUES (coalesce(i.link, -1::smallint)),
                                            (CASE WHEN i.link IS NOT NULL THEN -1::smallint END)) AS k(link)
                 WHERE k.link IS NOT NULL
             ),
             firsts AS (
                 INSERT INTO tracking_firsts (campaign_id, kind, link, delivery_id)
                 SELECT DISTINCT campaign_id, kind, link, delivery_id FROM keyed WHERE scanner IS NULL
                 ON CONFLICT DO NOTHING
                 RETURNING campaign_id, kind, link
             ),
             uniques AS (
                 SELECT campaign_id, kind, link, count(*) AS n FROM firsts GROUP BY 1, 2, 3
             ),
             deltas AS (
                 SELECT campaign_id, kind, link,
                        count(*) FILTER (WHERE scanner IS NULL) AS people,
                        count(*) FILTER (WHERE scanner IS NOT NULL) AS scanners
                 FROM keyed GROUP BY 1, 2, 3
             ),
             counted AS (
                 INSERT INTO tracking_counts (campaign_id, kind, link, people, unique_people, scanners)
                 SELECT d.campaign_id, d.kind, d.link, d.people, coalesce(u.n, 0), d.scanners
                 FROM deltas d LEFT JOIN uniques u USING (campaign_id, kind, link)
                 ORDER BY 1, 2, 3
                 ON CONFLICT (campaign_id, kind, link) DO UPDATE
                 SET people = tracking_counts.people + EXCLUDED.people,
                     unique_people = tracking_counts.unique_people + EXCLUDED.unique_people,
                     scanners = tracking_counts.scanners + EXCLUDED.scanners
             )
             SELECT count(*) FROM inserted",
        )
        .bind(&ids)
        .bind(&campaigns)
        .bind(&deliveries)
        .bind(&links)
        .bind(&at)
        .bind(&scanners)
        .bind(&agents)
        .bind(TOO_SOON)
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(written).unwrap_or(0))
    }

    /// The campaign a tracking token's link key names.
    pub async fn campaign_by_link_key(&self, link_key: i64) -> Result<LinkedCampaign, StoreError> {
        let row: Option<(Uuid, Option<Uuid>)> =
            sqlx::query_as("SELECT id, template_id FROM campaigns WHERE link_key = $1")
                .bind(link_key)
                .fetch_optional(self.pool())
                .await?;
        let (campaign_id, template_id) = row.ok_or(StoreError::NotFound("campaign"))?;
        Ok(LinkedCampaign {
            campaign_id,
            template_id,
        })
    }
}
