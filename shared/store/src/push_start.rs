//! The start of a push (seed 000): on its start day the scheduler claims it, freezes a
//! dynamic push's criteria into its users (a person who matches later is not added by
//! itself) and marks it started, all in one transaction. Any number of scheduler replicas
//! run this at once: `FOR UPDATE SKIP LOCKED` gives each due push to exactly one, and a
//! crash before the commit leaves it due for the next tick.

use crate::campaign_recipients::Members;
use crate::{Store, StoreError};
use chrono::NaiveDate;
use pushfleet_domain::criteria::Criteria;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

/// A push the start has just taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedPush {
    pub id: Uuid,
    /// People frozen from the criteria (0 for a fixed push).
    pub frozen: u64,
}

impl Store {
    /// Starts up to `limit` scheduled pushes whose start day is `today` or earlier.
    #[tracing::instrument(skip(self))]
    pub async fn start_due_pushes(
        &self,
        today: NaiveDate,
        limit: i64,
    ) -> Result<Vec<StartedPush>, StoreError> {
        let mut tx = self.pool().begin().await?;
        // The push's row lock is what every change of a push takes first (pushes.rs): a
        // PATCH of the criteria waits for the start, or the start for it.
        let due: Vec<(Uuid, String, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT id, method, criteria FROM pushes
             WHERE status = 'scheduled' AND start_date <= $1
             ORDER BY start_date, id
             LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(today)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut started = Vec::with_capacity(due.len());
        for (id, method, criteria) in due {
            let frozen = match (method.as_str(), criteria) {
                ("dynamic", Some(json)) => {
                    let criteria = Criteria::parse(&json)
                        .map_err(|e| StoreError::Corrupt(format!("push {id} criteria: {e:?}")))?;
                    // One INSERT ... SELECT: the matches are streamed inside Postgres,
                    // never held here, however many they are.
                    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                        "INSERT INTO push_users (push_id, person_id, source) SELECT ",
                    );
                    q.push_bind(id).push(", p.id, 'criteria'");
                    Members::Matching(&criteria, today).push_from(&mut q);
                    q.push(" ON CONFLICT (push_id, person_id) DO NOTHING");
                    q.build().execute(&mut *tx).await?.rows_affected()
                }
                _ => 0,
            };
            sqlx::query(
                "UPDATE pushes SET status = 'started', started_at = now(), updated_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            started.push(StartedPush { id, frozen });
        }
        tx.commit().await?;
        Ok(started)
    }
}
