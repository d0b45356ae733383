//! Due times of a campaign with a send window (seed 001: sends go out at random within the
//! working hours of the days given). The evaluator gives them after expanding; a resume
//! gives them again to what the pause held back, so that nothing goes out at night because
//! the campaign was resumed then.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::SendWindow;
use uuid::Uuid;

/// Rows given their times per statement.
const BATCH: i64 = 5000;

impl Store {
    /// Gives every unpublished open delivery of the campaign without a due time a random
    /// one in its recipient's allowed window (now when the window has passed). Deliveries
    /// due now are published by the evaluator; later ones wait for the scheduler. Each batch
    /// commits on its own: a repeated evaluation carries on where this one stopped.
    pub async fn spread_due_times(
        &self,
        campaign_id: Uuid,
        window: &SendWindow,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        spread_in(&mut conn, campaign_id, window).await
    }
}

/// `spread_due_times` on a connection, e.g. inside the transaction of a resume.
pub(crate) async fn spread_in(
    conn: &mut sqlx::PgConnection,
    campaign_id: Uuid,
    window: &SendWindow,
) -> Result<(), StoreError> {
    loop {
        let batch: Vec<(i64, String)> = sqlx::query_as(
            "SELECT d.id, p.time_zone FROM deliveries d JOIN people p ON p.id = d.person_id
             WHERE d.campaign_id = $1 AND d.due_at IS NULL
               AND d.state IN ('pending', 'retrying') AND d.published_at IS NULL
             ORDER BY d.id LIMIT $2",
        )
        .bind(campaign_id)
        .bind(BATCH)
        .fetch_all(&mut *conn)
        .await?;
        if batch.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let (ids, times): (Vec<i64>, Vec<DateTime<Utc>>) = {
            let mut rng = rand::rng();
            batch
                .into_iter()
                .map(|(id, zone)| {
                    let tz = window.zone_for(Some(&zone));
                    // No allowed time left (the window has passed): send now.
                    (id, window.pick(tz, now, &mut rng).unwrap_or(now))
                })
                .unzip()
        };
        sqlx::query(
            "UPDATE deliveries d SET due_at = u.due_at
             FROM UNNEST($1::bigint[], $2::timestamptz[]) AS u(id, due_at)
             WHERE d.id = u.id AND d.due_at IS NULL",
        )
        .bind(&ids)
        .bind(&times)
        .execute(&mut *conn)
        .await?;
    }
}
