//! Opting in and out: of a channel (e-mail link, SMS keyword, Teams button; honoured by
//! every later send) and of a segment (Teams buttons; an admin's upload does not put
//! someone who left back in).

use crate::bot_replies::{queue_reply, OwedReply};
use crate::{Store, StoreError};
use pushfleet_domain::Channel;
use sqlx::PgConnection;
use uuid::Uuid;

impl Store {
    /// Records that `person_id` wants nothing more on `channel`. Returns false when they
    /// had already opted out (the first record is kept).
    #[tracing::instrument(skip(self))]
    pub async fn opt_out_of_channel(
        &self,
        person_id: Uuid,
        channel: Channel,
        source: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO channel_opt_outs (person_id, channel, source)
             SELECT id, $2, $3 FROM people WHERE id = $1
             ON CONFLICT DO NOTHING",
        )
        .bind(person_id)
        .bind(channel.as_str())
        .bind(source)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Lifts a channel opt-out. Returns false when there was none.
    #[tracing::instrument(skip(self))]
    pub async fn opt_in_to_channel(
        &self,
        person_id: Uuid,
        channel: Channel,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM channel_opt_outs WHERE person_id = $1 AND channel = $2")
            .bind(person_id)
            .bind(channel.as_str())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The channels `person_id` opted out of.
    pub async fn channel_opt_outs(&self, person_id: Uuid) -> Result<Vec<Channel>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT channel FROM channel_opt_outs WHERE person_id = $1 ORDER BY channel",
        )
        .bind(person_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|c| c.parse().map_err(|e| StoreError::Corrupt(format!("{e}"))))
            .collect()
    }

    /// The person a delivery went to.
    pub async fn delivery_person(&self, delivery_id: i64) -> Result<Uuid, StoreError> {
        sqlx::query_scalar("SELECT person_id FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound("delivery"))
    }

    /// People with this E.164 phone number (an SMS keyword speaks for the number).
    pub async fn people_by_phone(&self, phone: &str) -> Result<Vec<Uuid>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM people WHERE phone = $1 ORDER BY id")
                .bind(phone)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The person whose stored Teams user id is one of `user_ids` (a Bot Framework
    /// activity names its sender by AAD object id and by channel account id).
    pub async fn person_by_teams_user(
        &self,
        user_ids: &[String],
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM people
             WHERE teams_conversation IS NOT NULL -- the index is partial
               AND teams_conversation->>'user_id' = ANY($1)
             ORDER BY active DESC, id LIMIT 1",
        )
        .bind(user_ids)
        .fetch_optional(self.pool())
        .await?)
    }

    /// `person_id` leaves the segment on their own: membership removed and remembered, so
    /// an upload does not add them back. Idempotent. `reply`, the bot's answer, is queued in
    /// the same transaction; returns whether it was (not when this activity already has one).
    #[tracing::instrument(skip(self, reply))]
    pub async fn opt_out_of_segment(
        &self,
        segment_id: Uuid,
        person_id: Uuid,
        source: &str,
        reply: Option<OwedReply<'_>>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        lock_segment_exclusive(&mut tx, segment_id).await?;
        sqlx::query(
            "INSERT INTO segment_opt_outs (segment_id, person_id, source) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(segment_id)
        .bind(person_id)
        .bind(source)
        .execute(&mut *tx)
        .await
        .map_err(not_found_on_fk)?;
        sqlx::query("DELETE FROM segment_members WHERE segment_id = $1 AND person_id = $2")
            .bind(segment_id)
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        let queued = match reply {
            Some(reply) => queue_reply(&mut tx, reply).await?,
            None => false,
        };
        tx.commit().await?;
        Ok(queued)
    }

    /// `person_id` joins the segment on their own, lifting an earlier opt-out. Idempotent.
    /// `reply`, the bot's answer, is queued in the same transaction; returns whether it was
    /// (not when this activity already has one).
    #[tracing::instrument(skip(self, reply))]
    pub async fn opt_in_to_segment(
        &self,
        segment_id: Uuid,
        person_id: Uuid,
        reply: Option<OwedReply<'_>>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        lock_segment_exclusive(&mut tx, segment_id).await?;
        sqlx::query("DELETE FROM segment_opt_outs WHERE segment_id = $1 AND person_id = $2")
            .bind(segment_id)
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO segment_members (segment_id, person_id, source) VALUES ($1, $2, 'opt_in')
             ON CONFLICT DO NOTHING",
        )
        .bind(segment_id)
        .bind(person_id)
        .execute(&mut *tx)
        .await
        .map_err(not_found_on_fk)?;
        let queued = match reply {
            Some(reply) => queue_reply(&mut tx, reply).await?,
            None => false,
        };
        tx.commit().await?;
        Ok(queued)
    }

    /// Whether `person_id` left the segment on their own.
    pub async fn is_segment_opted_out(
        &self,
        segment_id: Uuid,
        person_id: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM segment_opt_outs WHERE segment_id = $1 AND person_id = $2)",
        )
        .bind(segment_id)
        .bind(person_id)
        .fetch_one(self.pool())
        .await?)
    }
}

/// Waits for batches adding members (which hold the segment `FOR SHARE`) to commit, so an
/// opt-out cannot interleave with a batch that resolved the person before it.
async fn lock_segment_exclusive(
    conn: &mut PgConnection,
    segment_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query_scalar::<_, Uuid>("SELECT id FROM segments WHERE id = $1 FOR NO KEY UPDATE")
        .bind(segment_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("segment"))?;
    Ok(())
}

fn not_found_on_fk(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_foreign_key_violation() {
            return StoreError::NotFound("person");
        }
    }
    StoreError::Database(e)
}
