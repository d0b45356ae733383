use crate::{Store, StoreError};
use sqlx::{Postgres, Transaction};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub routing_key: String,
    pub payload: serde_json::Value,
}

/// Outbox rows locked by one relay. Publish them, then `complete`; dropping the batch
/// instead (an error, a crash) releases the rows for the next relay.
pub struct OutboxBatch {
    tx: Transaction<'static, Postgres>,
    pub messages: Vec<OutboxMessage>,
}

impl OutboxBatch {
    /// Deletes the published rows and commits.
    pub async fn complete(mut self) -> Result<(), StoreError> {
        let ids: Vec<i64> = self.messages.iter().map(|m| m.id).collect();
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Locks up to `limit` outbox rows that no other relay holds.
    pub async fn claim_outbox(&self, limit: i64) -> Result<OutboxBatch, StoreError> {
        let mut tx = self.pool().begin().await?;
        let messages = sqlx::query_as::<_, OutboxMessage>(
            "SELECT id, routing_key, payload FROM outbox ORDER BY id LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        Ok(OutboxBatch { tx, messages })
    }
}
