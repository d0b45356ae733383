use crate::{Store, StoreError};
use pushfleet_domain::{Channel, ProviderStatus};

/// One status report from a provider about a message it accepted (a Twilio status callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatusReport {
    pub channel: Channel,
    /// The provider's id of the message (Twilio's `MessageSid`).
    pub provider_message_id: String,
    pub status: ProviderStatus,
    /// The provider's error code (Twilio's `ErrorCode`, e.g. 30003), when it gave one.
    pub error_code: Option<String>,
}

/// What applying a status report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApplied {
    /// The delivery now has this status.
    Applied,
    /// The delivery already had this status or a later one: nothing changed (a repeat, or a
    /// report that arrived out of order).
    Stale,
    /// No delivery has this message id yet. The report is kept and applied when a sender
    /// records the id; one whose id never shows up is forgotten after a day.
    Parked,
}

impl StatusApplied {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusApplied::Applied => "applied",
            StatusApplied::Stale => "stale",
            StatusApplied::Parked => "parked",
        }
    }
}

impl Store {
    /// Applies a status report to the delivery with that provider message id. Statuses only
    /// move forward (see [`ProviderStatus::supersedes`]), so repeated and out-of-order
    /// reports are harmless.
    #[tracing::instrument(skip_all, fields(sid = %report.provider_message_id, status = %report.status))]
    pub async fn apply_provider_status(
        &self,
        report: &ProviderStatusReport,
    ) -> Result<StatusApplied, StoreError> {
        let mut tx = self.pool().begin().await?;
        // The row lock orders concurrent reports for one message.
        let current: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT id, provider_status FROM deliveries
             WHERE provider_message_id = $1 AND channel = $2
             FOR UPDATE",
        )
        .bind(&report.provider_message_id)
        .bind(report.channel.as_str())
        .fetch_all(&mut *tx)
        .await?;
        if current.is_empty() {
            tx.rollback().await?;
            return self.park(report).await;
        }
        let mut ids = Vec::new();
        for (id, status) in current {
            let status = status
                .as_deref()
                .map(str::parse::<ProviderStatus>)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("delivery {id}: {e}")))?;
            if report.status.supersedes(status) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok(StatusApplied::Stale);
        }
        sqlx::query(
            "UPDATE deliveries
             SET provider_status = $2, provider_error_code = $3, provider_status_at = now()
             WHERE id = ANY($1)",
        )
        .bind(&ids)
        .bind(report.status.as_str())
        .bind(report.error_code.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StatusApplied::Applied)
    }

    /// Keeps a report whose message id no delivery has yet, then looks again.
    ///
    /// The sender does the mirror image: it commits the id, then adopts parked reports
    /// (`adopt_parked_statuses`). Each side writes, commits, then reads what the other
    /// committed, so whichever runs second sees the first and the report is never lost.
    async fn park(&self, report: &ProviderStatusReport) -> Result<StatusApplied, StoreError> {
        sqlx::query(
            "INSERT INTO provider_status_inbox (channel, provider_message_id, status, error_code)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (provider_message_id, channel) DO UPDATE
             SET status = excluded.status, error_code = excluded.error_code, status_at = now()
             WHERE provider_status_rank(provider_status_inbox.status)
                   < provider_status_rank(excluded.status)",
        )
        .bind(report.channel.as_str())
        .bind(&report.provider_message_id)
        .bind(report.status.as_str())
        .bind(report.error_code.as_deref())
        .execute(self.pool())
        .await?;
        // Reports for messages this fleet never recorded (sent by another system on the same
        // account) must not pile up.
        sqlx::query("DELETE FROM provider_status_inbox WHERE status_at < now() - interval '1 day'")
            .execute(self.pool())
            .await?;
        let adopted = self
            .adopt_parked_statuses(&[report.provider_message_id.as_str()])
            .await?;
        Ok(if adopted > 0 {
            StatusApplied::Applied
        } else {
            StatusApplied::Parked
        })
    }

    /// Moves parked reports for these message ids onto their deliveries (forward only) and
    /// removes them from the inbox. Returns how many parked reports found their delivery.
    pub(crate) async fn adopt_parked_statuses(
        &self,
        provider_message_ids: &[&str],
    ) -> Result<u64, StoreError> {
        if provider_message_ids.is_empty() {
            return Ok(0);
        }
        let adopted: i64 = sqlx::query_scalar(
            "WITH adopted AS (
                 DELETE FROM provider_status_inbox i
                 USING deliveries d
                 WHERE i.provider_message_id = ANY($1)
                   AND d.provider_message_id = i.provider_message_id AND d.channel = i.channel
                 RETURNING i.channel, i.provider_message_id, i.status, i.error_code, i.status_at
             ), applied AS (
                 UPDATE deliveries d
                 SET provider_status = a.status, provider_error_code = a.error_code,
                     provider_status_at = a.status_at
                 FROM adopted a
                 WHERE d.provider_message_id = a.provider_message_id AND d.channel = a.channel
                   AND provider_status_rank(d.provider_status) < provider_status_rank(a.status)
                 RETURNING d.id
             )
             SELECT count(*) FROM adopted",
        )
        .bind(provider_message_ids)
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(adopted).unwrap_or(0))
    }
}
