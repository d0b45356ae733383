use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Audience {
    pub id: Uuid,
    pub name: String,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Creates a fixed list of people. Every id must exist; duplicates in the list are kept once.
    #[tracing::instrument(skip_all, fields(members = person_ids.len()))]
    pub async fn create_audience(
        &self,
        name: &str,
        person_ids: &[Uuid],
    ) -> Result<Audience, StoreError> {
        let mut tx = self.pool().begin().await?;
        let unknown: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT i FROM UNNEST($1::uuid[]) AS i
             WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.id = i)",
        )
        .bind(person_ids)
        .fetch_all(&mut *tx)
        .await?;
        if !unknown.is_empty() {
            return Err(StoreError::UnknownPeople(unknown));
        }
        let id = Uuid::now_v7();
        let created_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO audiences (id, name) VALUES ($1, $2) RETURNING created_at",
        )
        .bind(id)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO audience_members (audience_id, person_id)
             SELECT $1, i FROM UNNEST($2::uuid[]) AS i ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(person_ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Audience {
            id,
            name: name.to_owned(),
            member_count: inserted as i64,
            created_at,
        })
    }

    pub async fn get_audience(&self, id: Uuid) -> Result<Audience, StoreError> {
        sqlx::query_as::<_, Audience>(
            "SELECT a.id, a.name, a.created_at,
                    (SELECT count(*) FROM audience_members m WHERE m.audience_id = a.id) AS member_count
             FROM audiences a WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("audience"))
    }
}
