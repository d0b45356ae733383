//! Replies the Teams bot owes to button presses (seed 004): queued by the api in the
//! transaction of the opt-in or opt-out they confirm, posted by the teams-sender, and marked
//! finished so that a redelivered job does not post again.

use crate::{Store, StoreError};
use pushfleet_domain::BotReplyJob;
use sqlx::PgConnection;

/// A reply to queue with a segment opt-in or opt-out, and the outbox routing key that hands
/// it to the teams-sender.
#[derive(Debug, Clone, Copy)]
pub struct OwedReply<'a> {
    pub job: &'a BotReplyJob,
    pub routing_key: &'a str,
}

/// Records the reply and its outbox row, unless a reply to this activity is already known
/// (the Bot Framework delivered the press twice). Returns whether it was queued now.
pub(crate) async fn queue_reply(
    conn: &mut PgConnection,
    reply: OwedReply<'_>,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_value(reply.job)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a bot reply: {e}")))?;
    let queued = sqlx::query(
        "WITH owed AS (
             INSERT INTO bot_replies (activity_id, conversation_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING
             RETURNING activity_id
         )
         INSERT INTO outbox (routing_key, payload) SELECT $3, $4 FROM owed",
    )
    .bind(&reply.job.activity_id)
    .bind(&reply.job.conversation_id)
    .bind(reply.routing_key)
    .bind(payload)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(queued == 1)
}

impl Store {
    /// Whether the reply to `activity_id` is finished (posted, or given up).
    pub async fn bot_reply_finished(&self, activity_id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM bot_replies
                            WHERE activity_id = $1 AND finished_at IS NOT NULL)",
        )
        .bind(activity_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// Marks the reply finished: posted (with the Connector's id for it), or given up with
    /// `error`.
    pub async fn finish_bot_reply(
        &self,
        activity_id: &str,
        provider_message_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE bot_replies SET finished_at = now(), provider_message_id = $2, error = $3
             WHERE activity_id = $1 AND finished_at IS NULL",
        )
        .bind(activity_id)
        .bind(provider_message_id.map(crate::deliveries::clean_text))
        .bind(error.map(crate::deliveries::clean_text))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
