use crate::campaign_recipients::Members;
use crate::criteria_sql::push_audience_filter;
use crate::{Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use pushfleet_domain::criteria::{Criteria, PersonRef};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Audience {
    pub id: Uuid,
    pub name: String,
    /// `fixed` (a list of people) or `dynamic` (criteria evaluated when asked).
    pub kind: String,
    pub criteria: Option<serde_json::Value>,
    /// Members of a fixed audience; for a dynamic one, None (ask for a preview).
    pub member_count: Option<i64>,
    /// Permission labels (seed 003).
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A person in a preview or snapshot page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AudienceMember {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Preview {
    pub count: i64,
    pub first: Vec<AudienceMember>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Snapshot {
    pub id: Uuid,
    pub audience_id: Uuid,
    pub member_count: i64,
    pub taken_at: DateTime<Utc>,
}

/// The columns of an `AudienceMember`, from `people p`.
const MEMBER_COLUMNS: &str = "p.id, p.first_name, p.last_name, p.email, p.department, p.job_title";

const AUDIENCE_COLUMNS: &str = "a.id, a.name, a.kind, a.criteria, a.labels, a.created_at,
    CASE WHEN a.kind = 'fixed'
         THEN (SELECT count(*) FROM audience_members m WHERE m.audience_id = a.id) END AS member_count";

impl Store {
    /// Creates a fixed list of people. Every id must exist; duplicates in the list are kept once.
    #[tracing::instrument(skip_all, fields(members = person_ids.len()))]
    pub async fn create_audience(
        &self,
        name: &str,
        person_ids: &[Uuid],
        labels: &[String],
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
            "INSERT INTO audiences (id, name, labels) VALUES ($1, $2, $3) RETURNING created_at",
        )
        .bind(id)
        .bind(name)
        .bind(labels)
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
            kind: "fixed".into(),
            criteria: None,
            member_count: Some(inserted as i64),
            labels: labels.to_vec(),
            created_at,
        })
    }

    /// Creates an audience defined by criteria (already parsed and checked).
    #[tracing::instrument(skip_all)]
    pub async fn create_dynamic_audience(
        &self,
        name: &str,
        criteria: &Criteria,
        labels: &[String],
    ) -> Result<Audience, StoreError> {
        let id = Uuid::now_v7();
        let json = criteria.to_json();
        let created_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO audiences (id, name, kind, criteria, labels)
             VALUES ($1, $2, 'dynamic', $3, $4) RETURNING created_at",
        )
        .bind(id)
        .bind(name)
        .bind(&json)
        .bind(labels)
        .fetch_one(self.pool())
        .await?;
        Ok(Audience {
            id,
            name: name.to_owned(),
            kind: "dynamic".into(),
            criteria: Some(json),
            member_count: None,
            labels: labels.to_vec(),
            created_at,
        })
    }

    pub async fn get_audience(&self, id: Uuid) -> Result<Audience, StoreError> {
        sqlx::query_as::<_, Audience>(&format!(
            "SELECT {AUDIENCE_COLUMNS} FROM audiences a WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("audience"))
    }

    /// The references in `criteria` that name nobody now, and the segments that do not exist:
    /// what makes an audience unsaveable.
    pub async fn unknown_references(
        &self,
        criteria: &Criteria,
    ) -> Result<(Vec<String>, Vec<Uuid>), StoreError> {
        let mut people = Vec::new();
        for r in criteria.person_refs() {
            let found: Option<Uuid> = match r {
                PersonRef::Id(id) => {
                    sqlx::query_scalar("SELECT id FROM people WHERE id = $1")
                        .bind(id)
                        .fetch_optional(self.pool())
                        .await?
                }
                PersonRef::Key(k) => {
                    sqlx::query_scalar(
                        "SELECT id FROM people WHERE lower(email) = lower($1) OR external_id = $1 LIMIT 1",
                    )
                    .bind(k)
                    .fetch_optional(self.pool())
                    .await?
                }
            };
            if found.is_none() {
                people.push(match r {
                    PersonRef::Id(id) => id.to_string(),
                    PersonRef::Key(k) => k.clone(),
                });
            }
        }
        let segments = criteria.segment_ids();
        let unknown_segments: Vec<Uuid> = sqlx::query_scalar(
            "SELECT i FROM UNNEST($1::uuid[]) AS i WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.id = i)",
        )
        .bind(&segments)
        .fetch_all(self.pool())
        .await?;
        Ok((people, unknown_segments))
    }

    /// Who matches `criteria` now: the count and the first `limit` people (by id, after
    /// `after` for the next page).
    #[tracing::instrument(skip_all)]
    pub async fn preview_criteria(
        &self,
        criteria: &Criteria,
        as_of: NaiveDate,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Preview, StoreError> {
        let mut count_q: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT count(*) FROM people p WHERE ");
        push_audience_filter(&mut count_q, criteria, as_of);
        let mut page_q: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {MEMBER_COLUMNS} FROM people p WHERE "));
        push_audience_filter(&mut page_q, criteria, as_of);
        if let Some(after) = after {
            page_q.push(" AND p.id > ").push_bind(after);
        }
        page_q.push(" ORDER BY p.id LIMIT ").push_bind(limit);
        // The two run side by side on two connections: the preview answers in the time of
        // the slower one.
        let (count, first) = futures::future::join(
            count_q.build_query_scalar::<i64>().fetch_one(self.pool()),
            page_q
                .build_query_as::<AudienceMember>()
                .fetch_all(self.pool()),
        )
        .await;
        Ok(Preview {
            count: count?,
            first: first?,
        })
    }

    /// The active members of a fixed audience: the count and a page.
    pub async fn preview_fixed(
        &self,
        audience_id: Uuid,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Preview, StoreError> {
        let count = sqlx::query_scalar(
            "SELECT count(*) FROM audience_members m JOIN people p ON p.id = m.person_id
             WHERE m.audience_id = $1 AND p.active",
        )
        .bind(audience_id)
        .fetch_one(self.pool());
        let page_sql = format!(
            "SELECT {MEMBER_COLUMNS}
             FROM audience_members m JOIN people p ON p.id = m.person_id
             WHERE m.audience_id = $1 AND p.active AND ($2::uuid IS NULL OR p.id > $2)
             ORDER BY p.id LIMIT $3"
        );
        let first = sqlx::query_as::<_, AudienceMember>(&page_sql)
            .bind(audience_id)
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool());
        let (count, first) = futures::future::join(count, first).await;
        Ok(Preview {
            count: count?,
            first: first?,
        })
    }

    /// The ids matching `criteria` on `as_of`, in id order (for tests and small audiences).
    pub async fn matching_ids(
        &self,
        criteria: &Criteria,
        as_of: NaiveDate,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT p.id FROM people p WHERE ");
        push_audience_filter(&mut q, criteria, as_of);
        q.push(" ORDER BY p.id");
        Ok(q.build_query_scalar().fetch_all(self.pool()).await?)
    }

    /// Evaluates a dynamic audience now and freezes the result.
    #[tracing::instrument(skip(self))]
    pub async fn freeze_audience(
        &self,
        audience_id: Uuid,
        as_of: NaiveDate,
    ) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool().begin().await?;
        let snapshot = freeze_in(&mut tx, audience_id, as_of).await?;
        tx.commit().await?;
        Ok(snapshot)
    }

    pub async fn get_snapshot(&self, id: Uuid) -> Result<Snapshot, StoreError> {
        sqlx::query_as::<_, Snapshot>(
            "SELECT id, audience_id, member_count, taken_at FROM audience_snapshots WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("snapshot"))
    }

    /// A page of a snapshot's members, by id.
    pub async fn snapshot_members(
        &self,
        id: Uuid,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<AudienceMember>, StoreError> {
        Ok(sqlx::query_as::<_, AudienceMember>(&format!(
            "SELECT {MEMBER_COLUMNS}
             FROM audience_snapshot_members m JOIN people p ON p.id = m.person_id
             WHERE m.snapshot_id = $1 AND ($2::uuid IS NULL OR m.person_id > $2)
             ORDER BY m.person_id LIMIT $3"
        ))
        .bind(id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}

/// Freezes a dynamic audience inside `tx` (the evaluator does it in the transaction that
/// expands a campaign, so the snapshot and the campaign's link to it commit together).
pub(crate) async fn freeze_in(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    audience_id: Uuid,
    as_of: NaiveDate,
) -> Result<Snapshot, StoreError> {
    let row: Option<(String, Option<serde_json::Value>)> =
        sqlx::query_as("SELECT kind, criteria FROM audiences WHERE id = $1")
            .bind(audience_id)
            .fetch_optional(&mut **tx)
            .await?;
    let (kind, criteria) = row.ok_or(StoreError::NotFound("audience"))?;
    let id = Uuid::now_v7();
    let taken_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO audience_snapshots (id, audience_id, criteria, member_count)
         VALUES ($1, $2, $3, 0) RETURNING taken_at",
    )
    .bind(id)
    .bind(audience_id)
    .bind(&criteria)
    .fetch_one(&mut **tx)
    .await?;
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new("INSERT INTO audience_snapshot_members (snapshot_id, person_id) SELECT ");
    q.push_bind(id);
    match (kind.as_str(), criteria) {
        ("dynamic", Some(json)) => {
            let parsed = Criteria::parse(&json).map_err(|e| {
                StoreError::Corrupt(format!("audience {audience_id} criteria: {e:?}"))
            })?;
            q.push(", p.id");
            Members::Matching(&parsed, as_of).push_from(&mut q);
        }
        _ => {
            q.push(", p.id");
            Members::Audience(audience_id).push_from(&mut q);
        }
    }
    let members = q.build().execute(&mut **tx).await?.rows_affected() as i64;
    sqlx::query("UPDATE audience_snapshots SET member_count = $2 WHERE id = $1")
        .bind(id)
        .bind(members)
        .execute(&mut **tx)
        .await?;
    Ok(Snapshot {
        id,
        audience_id,
        member_count: members,
        taken_at,
    })
}
