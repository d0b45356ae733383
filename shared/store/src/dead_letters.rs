use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A delivery that ended in the dead-letter queue: its attempts ran out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadDelivery {
    pub id: i64,
    pub campaign_id: Uuid,
    pub person_id: Uuid,
    pub channel: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Which dead deliveries to replay.
#[derive(Debug, Clone)]
pub enum ReplaySelection {
    Deliveries(Vec<i64>),
    Campaign(Uuid),
}

impl Store {
    /// Dead deliveries, oldest first, optionally of one campaign; `after` pages by id.
    pub async fn dead_deliveries(
        &self,
        campaign: Option<Uuid>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeadDelivery>, StoreError> {
        Ok(sqlx::query_as::<_, DeadDelivery>(
            "SELECT id, campaign_id, person_id, channel, attempts, last_error, updated_at
             FROM deliveries
             WHERE state = 'dead' AND id > $1 AND ($2::uuid IS NULL OR campaign_id = $2)
             ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(campaign)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Puts dead deliveries back to `pending` (unpublished, attempts reset; the last error is
    /// kept for the record) and, in the same transaction, queues an evaluate message per
    /// campaign: the evaluator then publishes exactly the unpublished rows. Replaying a
    /// campaign whose evaluation was given up (`evaluation_error`) also evaluates it again.
    /// Returns how many deliveries (and given-up evaluations) were replayed.
    #[tracing::instrument(skip(self))]
    pub async fn replay_dead(
        &self,
        selection: &ReplaySelection,
        routing_key: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let (ids, campaign): (Option<Vec<i64>>, Option<Uuid>) = match selection {
            ReplaySelection::Deliveries(ids) => (Some(ids.clone()), None),
            ReplaySelection::Campaign(c) => (None, Some(*c)),
        };
        let campaigns: Vec<Uuid> = sqlx::query_scalar(
            "WITH replayed AS (
                 UPDATE deliveries
                 SET state = 'pending', attempts = 0, published_at = NULL, updated_at = now()
                 WHERE state = 'dead'
                   AND ($1::bigint[] IS NULL OR id = ANY($1))
                   AND ($2::uuid IS NULL OR campaign_id = $2)
                 RETURNING campaign_id
             )
             SELECT campaign_id FROM replayed",
        )
        .bind(&ids)
        .bind(campaign)
        .fetch_all(&mut *tx)
        .await?;
        // A campaign whose evaluation was given up is evaluated again too.
        let given_up: Vec<Uuid> = match selection {
            ReplaySelection::Campaign(c) => {
                sqlx::query_scalar(
                    "UPDATE campaigns SET evaluation_error = NULL
                 WHERE id = $1 AND evaluation_error IS NOT NULL RETURNING id",
                )
                .bind(c)
                .fetch_all(&mut *tx)
                .await?
            }
            ReplaySelection::Deliveries(_) => Vec::new(),
        };
        let mut distinct = campaigns.clone();
        distinct.extend(&given_up);
        distinct.sort();
        distinct.dedup();
        sqlx::query(
            "INSERT INTO outbox (routing_key, payload)
             SELECT $1, jsonb_build_object('campaign_id', c) FROM UNNEST($2::uuid[]) AS c",
        )
        .bind(routing_key)
        .bind(&distinct)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(campaigns.len() as u64 + given_up.len() as u64)
    }
}
