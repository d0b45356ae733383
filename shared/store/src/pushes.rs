//! Pushes (seed 000): a conversation template pushed to a fixed list (hand-picked people) or
//! a dynamic one (criteria evaluated on the start day), with a deadline, until closed.
//!
//! The start is `push_start.rs` (the scheduler claims due pushes, freezes a dynamic list
//! and marks them started in one transaction); the notifications through the delivery
//! engine are still to come (docs/pushes.md).

use crate::{Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// The 409 of the seed's rule: the method is fixed once users are assigned.
pub const METHOD_LOCKED: &str = "the user list method cannot change once users are assigned: \
     create a new push to use the other method";
/// The 422 of a template without "Permission to conduct".
pub const NOT_PUSHABLE: &str = "this conversation template may not be pushed: allow \
     \"may be pushed\" (seed: Permission to conduct) in its settings first";
pub const PUSH_CLOSED: &str = "the push is closed: its results stay readable, nothing changes";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStatus {
    Scheduled,
    Started,
    Closed,
}

impl PushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Scheduled => "scheduled",
            PushStatus::Started => "started",
            PushStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Scheduled, Self::Started, Self::Closed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Push {
    pub id: Uuid,
    pub template_id: Uuid,
    pub name: String,
    /// `team_leaders`, `coaches` or `both`: copied from the template at creation.
    pub conducted_by: String,
    pub start_date: NaiveDate,
    pub deadline: NaiveDate,
    /// `fixed` or `dynamic`.
    pub method: String,
    pub criteria: Option<serde_json::Value>,
    pub labels: Vec<String>,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Push {
    pub fn status(&self) -> PushStatus {
        PushStatus::parse(&self.status).unwrap_or(PushStatus::Scheduled)
    }
}

/// A new push; `criteria` (already checked) for a dynamic one, else `person_ids`.
#[derive(Debug, Clone)]
pub struct NewPush {
    pub template_id: Uuid,
    pub name: String,
    pub start_date: NaiveDate,
    pub deadline: NaiveDate,
    pub criteria: Option<serde_json::Value>,
    pub person_ids: Vec<Uuid>,
    pub labels: Vec<String>,
}

/// A change; fields left `None` stay.
#[derive(Debug, Clone, Default)]
pub struct PushChange {
    pub name: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub deadline: Option<NaiveDate>,
    pub labels: Option<Vec<String>>,
    /// Makes (or keeps) the push dynamic: only while scheduled and without users.
    pub criteria: Option<serde_json::Value>,
    /// Makes (or keeps) the push fixed, replacing its list: only while scheduled.
    pub person_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone)]
pub struct PushFilter {
    pub status: Option<PushStatus>,
    pub template_id: Option<Uuid>,
    pub label: Option<String>,
    pub name_contains: Option<String>,
    /// `Some`: only pushes carrying one of these (a caller limited to labels).
    pub visible_labels: Option<Vec<String>>,
    pub before: Option<Uuid>,
    pub limit: i64,
}

const PUSH_COLUMNS: &str = "id, template_id, name, conducted_by, start_date, deadline, method,
    criteria, labels, status, started_at, closed_at, created_at, updated_at";

impl Store {
    /// Creates a push of a template that may be pushed; a fixed push's people (all known
    /// and active) become its users at once.
    #[tracing::instrument(skip_all, fields(people = p.person_ids.len()))]
    pub async fn create_push(&self, p: &NewPush) -> Result<Push, StoreError> {
        let mut tx = self.pool().begin().await?;
        // FOR SHARE: a concurrent PATCH of "may be pushed" waits for this push or sees it.
        let template: Option<(bool, String)> = sqlx::query_as(
            "SELECT may_be_pushed, conducted_by FROM conversation_templates
             WHERE id = $1 FOR SHARE",
        )
        .bind(p.template_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (may_be_pushed, conducted_by) = template.ok_or(StoreError::Invalid {
            field: "template_id",
            message: "no conversation template with this id".into(),
        })?;
        if !may_be_pushed {
            return Err(StoreError::Invalid {
                field: "template_id",
                message: NOT_PUSHABLE.into(),
            });
        }
        check_people(&mut tx, &p.person_ids).await?;
        let method = if p.criteria.is_some() {
            "dynamic"
        } else {
            "fixed"
        };
        let push = sqlx::query_as::<_, Push>(&format!(
            "INSERT INTO pushes (id, template_id, name, conducted_by, start_date, deadline,
                                 method, criteria, labels)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {PUSH_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(p.template_id)
        .bind(&p.name)
        .bind(&conducted_by)
        .bind(p.start_date)
        .bind(p.deadline)
        .bind(method)
        .bind(&p.criteria)
        .bind(&p.labels)
        .fetch_one(&mut *tx)
        .await?;
        insert_users(&mut tx, push.id, &p.person_ids, "list").await?;
        tx.commit().await?;
        Ok(push)
    }

    pub async fn get_push(&self, id: Uuid) -> Result<Push, StoreError> {
        sqlx::query_as::<_, Push>(&format!("SELECT {PUSH_COLUMNS} FROM pushes WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound("push"))
    }

    /// Newest first, in keyset pages (`before` the last id of the previous page).
    pub async fn list_pushes(&self, f: &PushFilter) -> Result<Vec<Push>, StoreError> {
        Ok(sqlx::query_as::<_, Push>(&format!(
            "SELECT {PUSH_COLUMNS} FROM pushes
             WHERE ($1::text IS NULL OR status = $1)
               AND ($2::uuid IS NULL OR template_id = $2)
               AND ($3::text IS NULL OR $3 = ANY(labels))
               AND ($4::text IS NULL OR strpos(lower(name), lower($4)) > 0)
               AND ($5::text[] IS NULL OR labels && $5)
               AND ($6::uuid IS NULL OR id < $6)
             ORDER BY id DESC LIMIT $7"
        ))
        .bind(f.status.map(PushStatus::as_str))
        .bind(f.template_id)
        .bind(&f.label)
        .bind(&f.name_contains)
        .bind(&f.visible_labels)
        .bind(f.before)
        .bind(f.limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Applies a change under the push's row lock, by the rules of seed 000: nothing
    /// changes once closed; the start day and the list only while scheduled; the method
    /// only while no user is assigned.
    #[tracing::instrument(skip(self, c))]
    pub async fn update_push(&self, id: Uuid, c: &PushChange) -> Result<Push, StoreError> {
        let mut tx = self.pool().begin().await?;
        let push = lock_push(&mut tx, id).await?;
        let status = push.status();
        if status == PushStatus::Closed {
            return Err(StoreError::Conflict(PUSH_CLOSED.into()));
        }
        let assigned = has_users(&mut tx, id).await?;
        let wants_dynamic = c.criteria.is_some();
        let wants_fixed = c.person_ids.is_some();
        if (wants_dynamic && push.method == "fixed" || wants_fixed && push.method == "dynamic")
            && assigned
        {
            return Err(StoreError::Conflict(METHOD_LOCKED.into()));
        }
        if status != PushStatus::Scheduled {
            if c.start_date.is_some() {
                return Err(StoreError::Conflict(
                    "the push has started: its start date cannot change".into(),
                ));
            }
            if wants_dynamic || wants_fixed {
                return Err(StoreError::Conflict(
                    "the push has started: its list is set; add users with POST /v1/pushes/{id}/users"
                        .into(),
                ));
            }
        }
        let start_date = c.start_date.unwrap_or(push.start_date);
        let deadline = c.deadline.unwrap_or(push.deadline);
        if deadline < start_date {
            return Err(StoreError::Invalid {
                field: "deadline",
                message: format!("must not be before the start date ({start_date})"),
            });
        }
        let (method, criteria) = match (&c.criteria, wants_fixed) {
            (Some(json), _) => ("dynamic", Some(json.clone())),
            (None, true) => ("fixed", None),
            (None, false) => (push.method.as_str(), push.criteria.clone()),
        };
        if let Some(ids) = &c.person_ids {
            check_people(&mut tx, ids).await?;
            // Replaces the hand-picked list (only before the start, so nobody was told).
            sqlx::query("DELETE FROM push_users WHERE push_id = $1 AND NOT (person_id = ANY($2))")
                .bind(id)
                .bind(ids)
                .execute(&mut *tx)
                .await?;
            insert_users(&mut tx, id, ids, "list").await?;
        }
        let updated = sqlx::query_as::<_, Push>(&format!(
            "UPDATE pushes SET name = $2, start_date = $3, deadline = $4, labels = $5,
                    method = $6, criteria = $7, updated_at = now()
             WHERE id = $1 RETURNING {PUSH_COLUMNS}"
        ))
        .bind(id)
        .bind(c.name.as_deref().unwrap_or(&push.name))
        .bind(start_date)
        .bind(deadline)
        .bind(c.labels.as_ref().unwrap_or(&push.labels))
        .bind(method)
        .bind(&criteria)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Closes a push (409 when it already is). Its users and follow-up stay readable.
    #[tracing::instrument(skip(self))]
    pub async fn close_push(&self, id: Uuid) -> Result<Push, StoreError> {
        let mut tx = self.pool().begin().await?;
        let push = lock_push(&mut tx, id).await?;
        if push.status() == PushStatus::Closed {
            return Err(StoreError::Conflict("the push is already closed".into()));
        }
        let closed = sqlx::query_as::<_, Push>(&format!(
            "UPDATE pushes SET status = 'closed', closed_at = now(), updated_at = now()
             WHERE id = $1 RETURNING {PUSH_COLUMNS}"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(closed)
    }
}

/// The push, locked for the rest of `tx`: changes, additions and the close queue behind
/// one another (and behind the start, which will take the same lock).
pub(crate) async fn lock_push(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Push, StoreError> {
    sqlx::query_as::<_, Push>(&format!(
        "SELECT {PUSH_COLUMNS} FROM pushes WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("push"))
}

async fn has_users(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM push_users WHERE push_id = $1)")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// A hand-picked list must name known, active people: the ids that do not are refused.
async fn check_people(tx: &mut Transaction<'_, Postgres>, ids: &[Uuid]) -> Result<(), StoreError> {
    let unknown: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT i FROM UNNEST($1::uuid[]) AS i
         WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.id = i AND p.active)",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    if !unknown.is_empty() {
        return Err(StoreError::UnknownPeople(unknown));
    }
    Ok(())
}

/// Inserts users (already checked), keeping those already there as they are; the number
/// inserted.
pub(crate) async fn insert_users(
    tx: &mut Transaction<'_, Postgres>,
    push_id: Uuid,
    ids: &[Uuid],
    source: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO push_users (push_id, person_id, source)
         SELECT $1, i, $3 FROM UNNEST($2::uuid[]) AS i
         ON CONFLICT (push_id, person_id) DO NOTHING",
    )
    .bind(push_id)
    .bind(ids)
    .bind(source)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
