//! A campaign's report (seed 001 "Report", issue 13): engagement (clicks, opens) beside the
//! delivery counts of `campaign_progress`, and the recipients one page at a time.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Clicks or opens, people's and scanners' apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Every request a person made (scanners' left out).
    pub total: i64,
    /// Deliveries with at least one (scanners' left out).
    pub unique: i64,
    /// Requests flagged as a link scanner's or a mail proxy's.
    pub scanner: i64,
}

/// Clicks on one of the template's links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkClicks {
    pub link: u16,
    pub counts: EventCounts,
}

/// A campaign's engagement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Engagement {
    pub clicks: EventCounts,
    pub opens: EventCounts,
    pub links: Vec<LinkClicks>,
}

/// One recipient's line of the report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportRecipient {
    pub delivery_id: i64,
    pub person_id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub channel: String,
    pub state: String,
    /// Why it failed, was skipped, or is being tried again.
    pub last_error: Option<String>,
    pub provider_status: Option<String>,
    pub attempts: i32,
    /// When the state was last written (the send, for a sent one).
    pub updated_at: DateTime<Utc>,
    /// When a pending or retrying one is due, if not now.
    pub due_at: Option<DateTime<Utc>>,
    pub clicks: i64,
    pub opened: bool,
}

impl Store {
    /// Clicks and opens of a campaign, overall and per link.
    #[tracing::instrument(skip(self))]
    pub async fn campaign_engagement(&self, campaign_id: Uuid) -> Result<Engagement, StoreError> {
        // Running counts kept by the recorder (`tracking`): a few rows, however many clicks.
        let rows: Vec<(String, i16, i64, i64, i64)> = sqlx::query_as(
            "SELECT kind, link, people, unique_people, scanners
             FROM tracking_counts WHERE campaign_id = $1
             ORDER BY kind, link",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        let mut engagement = Engagement::default();
        for (kind, link, total, unique, scanner) in rows {
            let counts = EventCounts {
                total,
                unique,
                scanner,
            };
            match (kind.as_str(), u16::try_from(link)) {
                ("open", Err(_)) => engagement.opens = counts,
                ("click", Err(_)) => engagement.clicks = counts,
                ("click", Ok(link)) => engagement.links.push(LinkClicks { link, counts }),
                _ => {}
            }
        }
        Ok(engagement)
    }

    /// A page of a campaign's recipients in delivery order, after `after` (a delivery id),
    /// optionally of one state.
    #[tracing::instrument(skip(self))]
    pub async fn report_recipients(
        &self,
        campaign_id: Uuid,
        state: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ReportRecipient>, StoreError> {
        let rows = sqlx::query_as::<_, ReportRecipient>(
            "SELECT d.id AS delivery_id, d.person_id, p.first_name, p.last_name, p.email,
                    d.channel, d.state, d.last_error, d.provider_status, d.attempts,
                    d.updated_at, d.due_at,
                    coalesce(e.clicks, 0) AS clicks, coalesce(e.opened, false) AS opened
             FROM deliveries d
             LEFT JOIN people p ON p.id = d.person_id
             LEFT JOIN LATERAL (
                 SELECT count(*) FILTER (WHERE kind = 'click') AS clicks,
                        bool_or(kind = 'open') AS opened
                 FROM tracking_events t
                 WHERE t.campaign_id = d.campaign_id AND t.delivery_id = d.id
                   AND t.scanner IS NULL
             ) e ON true
             WHERE d.campaign_id = $1 AND d.id > $2 AND ($3::text IS NULL OR d.state = $3)
             ORDER BY d.id
             LIMIT $4",
        )
        .bind(campaign_id)
        .bind(after.unwrap_or(0))
        .bind(state)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }
}
