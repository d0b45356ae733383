//! The emergency stop (beyond seed 001, which cannot stop a started campaign): pause,
//! resume and cancel a broadcast campaign. Each is one transaction on the campaign's row;
//! the senders learn of it by polling [`Store::halted_campaigns`] a few times a second and
//! do the rest (see `pushfleet_sender::campaign_watch`).
//!
//! - Pause: the senders stop calling the provider for the campaign; each job of it that
//!   reaches a sender is *parked*: unpublished, with no due time, no attempt spent. The
//!   evaluator publishes nothing more of it.
//! - Resume: every parked or unpublished delivery of the campaign is due now, and the
//!   scheduler publishes it again; deliveries spread later keep their times.
//! - Cancel: every unsent delivery ends `cancelled`, in the same transaction.

use crate::campaigns::{Actor, Campaign, CAMPAIGN_COLUMNS};
use crate::{Store, StoreError};
use uuid::Uuid;

/// How long a cancelled campaign is still reported to the senders: longer than any job
/// waits in a queue (`SENDER_OPT_OUT_HORIZON_HOURS`, 7 days by default).
const CANCELLED_REPORTED_DAYS: i32 = 8;

/// Why a campaign's jobs must not be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    Paused,
    Cancelled,
}

impl Store {
    /// Pauses a broadcast campaign (evaluating or sending).
    #[tracing::instrument(skip(self, actor))]
    pub async fn pause_campaign(&self, id: Uuid, actor: &Actor) -> Result<Campaign, StoreError> {
        self.change_status(id, &["evaluating", "sending"], "paused", actor)
            .await
    }

    /// Resumes a paused campaign where it stopped.
    #[tracing::instrument(skip(self, actor))]
    pub async fn resume_campaign(&self, id: Uuid, actor: &Actor) -> Result<Campaign, StoreError> {
        let mut tx = self.pool().begin().await?;
        let campaign = change_status_in(&mut tx, id, &["paused"], "sending", actor).await?;
        // Parked and never-published deliveries are due now; the scheduler publishes them.
        // (A campaign paused while it was being evaluated is evaluated on: its evaluator
        // publishes nothing while paused and finds its rows due here.) With a send window
        // they get new times in it instead: resumed at night, they wait for the morning.
        let window = campaign.send_window.as_ref().map(|w| w.0.clone());
        sqlx::query(
            "UPDATE deliveries SET due_at = CASE WHEN $2 THEN NULL ELSE now() END,
                                   updated_at = now()
             WHERE campaign_id = $1 AND published_at IS NULL
               AND state IN ('pending', 'retrying') AND (due_at IS NULL OR due_at < now())",
        )
        .bind(id)
        .bind(window.is_some())
        .execute(&mut *tx)
        .await?;
        if let Some(window) = &window {
            // In the transaction: no row is left without a time if this process dies.
            crate::due_times::spread_in(&mut tx, id, window).await?;
        }
        tx.commit().await?;
        Ok(campaign)
    }

    /// Cancels a campaign not yet finished: every unsent delivery ends `cancelled`. A call
    /// already under way when this commits may still be sent (and is then recorded so).
    #[tracing::instrument(skip(self, actor))]
    pub async fn cancel_campaign(
        &self,
        id: Uuid,
        actor: &Actor,
    ) -> Result<(Campaign, u64), StoreError> {
        let mut tx = self.pool().begin().await?;
        let campaign = change_status_in(
            &mut tx,
            id,
            &["scheduled", "evaluating", "sending", "paused"],
            "cancelled",
            actor,
        )
        .await?;
        let cancelled = sqlx::query(
            "UPDATE deliveries
             SET state = 'cancelled', last_error = 'the campaign was cancelled', updated_at = now()
             WHERE campaign_id = $1 AND state IN ('pending', 'retrying')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((campaign, cancelled))
    }

    async fn change_status(
        &self,
        id: Uuid,
        from: &[&str],
        to: &str,
        actor: &Actor,
    ) -> Result<Campaign, StoreError> {
        let mut tx = self.pool().begin().await?;
        let campaign = change_status_in(&mut tx, id, from, to, actor).await?;
        tx.commit().await?;
        Ok(campaign)
    }

    /// The campaigns whose jobs must not be sent now: the paused ones, and those cancelled
    /// recently enough that a job of theirs may still be queued.
    pub async fn halted_campaigns(&self) -> Result<Vec<(Uuid, Halt)>, StoreError> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, status FROM campaigns
             WHERE status = 'paused'
                OR (status = 'cancelled' AND updated_at > now() - make_interval(days => $1))",
        )
        .bind(CANCELLED_REPORTED_DAYS)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, status)| {
                let halt = if status == "paused" {
                    Halt::Paused
                } else {
                    Halt::Cancelled
                };
                (id, halt)
            })
            .collect())
    }
}

/// Moves the campaign from one of `from` to `to`, under its row lock; 409 from any other
/// status, naming it.
async fn change_status_in(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    from: &[&str],
    to: &str,
    actor: &Actor,
) -> Result<Campaign, StoreError> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM campaigns WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let status = status.ok_or(StoreError::NotFound("campaign"))?;
    if !from.contains(&status.as_str()) {
        return Err(StoreError::Conflict(format!(
            "a campaign is {to} only from {}; this one is {status}",
            from.join(" or ")
        )));
    }
    Ok(sqlx::query_as::<_, Campaign>(&format!(
        "UPDATE campaigns SET status = $2, updated_by_id = $3, updated_by_name = $4,
                updated_at = now()
         WHERE id = $1 RETURNING {CAMPAIGN_COLUMNS}"
    ))
    .bind(id)
    .bind(to)
    .bind(actor.id)
    .bind(&actor.name)
    .fetch_one(&mut *tx)
    .await?)
}
