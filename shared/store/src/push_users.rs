//! A push's users: added by hand, listed with their follow-up and their conductors (the
//! seed's Users tab), and their follow-up set in bulk by the product that holds the
//! conversations.

use crate::pushes::{insert_users, lock_push, PushStatus, PUSH_CLOSED};
use crate::{Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// What `add_push_users` did with each id given.
#[derive(Debug, Clone, Default)]
pub struct AddedUsers {
    pub added: u64,
    pub already_there: u64,
    pub unknown: Vec<Uuid>,
    pub inactive: Vec<Uuid>,
}

/// A team leader or coach of a push user.
#[derive(Debug, Clone, Deserialize)]
pub struct Conductor {
    pub id: Uuid,
    /// `team_leader` or `coach`.
    pub kind: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PushUser {
    pub person_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// `list`, `criteria` or `added`.
    pub source: String,
    pub added_at: DateTime<Utc>,
    pub status: String,
    pub planned_on: Option<NaiveDate>,
    pub conducted_on: Option<NaiveDate>,
    pub conductors: sqlx::types::Json<Vec<Conductor>>,
}

#[derive(Debug, Clone, Default)]
pub struct PushUserFilter {
    pub status: Option<String>,
    pub text: Option<String>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// Completion of a push: its users by follow-up status.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct PushCounts {
    pub users: i64,
    pub not_planned: i64,
    pub planned: i64,
    pub conducted: i64,
}

/// One checked follow-up: `date` is the planned day or the conducted day (none for
/// `not_planned`).
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub person_id: Uuid,
    pub status: &'static str,
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default)]
pub struct FollowUpApplied {
    pub changed: u64,
    pub unchanged: u64,
    /// Ids that are not users of the push.
    pub unknown: Vec<Uuid>,
}

/// The relation kinds that conduct a push's conversations.
pub fn conductor_kinds(conducted_by: &str) -> Vec<String> {
    match conducted_by {
        "team_leaders" => vec!["team_leader".into()],
        "coaches" => vec!["coach".into()],
        _ => vec!["team_leader".into(), "coach".into()],
    }
}

impl Store {
    /// Adds people by hand: to a fixed push until it closes, to a dynamic one after its
    /// start (whether they match its criteria or not). Someone already there stays as they
    /// are; unknown and inactive ids are reported, not added.
    #[tracing::instrument(skip(self, ids), fields(ids = ids.len()))]
    pub async fn add_push_users(
        &self,
        push_id: Uuid,
        ids: &[Uuid],
    ) -> Result<AddedUsers, StoreError> {
        let mut tx = self.pool().begin().await?;
        let push = lock_push(&mut tx, push_id).await?;
        let status = push.status();
        if status == PushStatus::Closed {
            return Err(StoreError::Conflict(PUSH_CLOSED.into()));
        }
        if status == PushStatus::Scheduled && push.method == "dynamic" {
            return Err(StoreError::Conflict(
                "a dynamic push takes its users from its criteria on the start day: change \
                 the criteria now, or add users by hand after the start"
                    .into(),
            ));
        }
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let found: Vec<(Uuid, bool)> =
            sqlx::query_as("SELECT id, active FROM people WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        let mut report = AddedUsers::default();
        let mut addable = Vec::with_capacity(ids.len());
        for id in &ids {
            match found.iter().find(|(f, _)| f == id) {
                None => report.unknown.push(*id),
                Some((_, false)) => report.inactive.push(*id),
                Some((_, true)) => addable.push(*id),
            }
        }
        // Before the start a fixed list is still the hand-picked list; after it, an addition.
        let source = if status == PushStatus::Started {
            "added"
        } else {
            "list"
        };
        report.added = insert_users(&mut tx, push_id, &addable, source).await?;
        report.already_there = addable.len() as u64 - report.added;
        tx.commit().await?;
        Ok(report)
    }

    /// A page of a push's users by id, with their conductors as the push's `conducted_by`
    /// names them (every team leader and/or coach, seed 000).
    pub async fn list_push_users(
        &self,
        push_id: Uuid,
        conducted_by: &str,
        f: &PushUserFilter,
    ) -> Result<Vec<PushUser>, StoreError> {
        Ok(sqlx::query_as::<_, PushUser>(
            "SELECT u.person_id, p.first_name, p.last_name, p.email, u.source, u.added_at,
                    u.status, u.planned_on, u.conducted_on,
                    COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                  'id', c.id, 'kind', r.kind, 'first_name', c.first_name,
                                  'last_name', c.last_name, 'email', c.email)
                                  ORDER BY r.kind DESC, c.last_name, c.id)
                              FROM person_relations r JOIN people c ON c.id = r.related_id
                              WHERE r.person_id = u.person_id AND r.kind = ANY($2)),
                             '[]'::jsonb) AS conductors
             FROM push_users u JOIN people p ON p.id = u.person_id
             WHERE u.push_id = $1
               AND ($3::text IS NULL OR u.status = $3)
               AND ($4::text IS NULL OR strpos(lower(p.first_name || ' ' || p.last_name
                                                     || ' ' || coalesce(p.email, '')),
                                               lower($4)) > 0)
               AND ($5::uuid IS NULL OR u.person_id > $5)
             ORDER BY u.person_id LIMIT $6",
        )
        .bind(push_id)
        .bind(conductor_kinds(conducted_by))
        .bind(&f.status)
        .bind(&f.text)
        .bind(f.after)
        .bind(f.limit)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn push_counts(&self, push_id: Uuid) -> Result<PushCounts, StoreError> {
        Ok(sqlx::query_as::<_, PushCounts>(
            "SELECT count(*) AS users,
                    count(*) FILTER (WHERE status = 'not_planned') AS not_planned,
                    count(*) FILTER (WHERE status = 'planned') AS planned,
                    count(*) FILTER (WHERE status = 'conducted') AS conducted
             FROM push_users WHERE push_id = $1",
        )
        .bind(push_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// Sets follow-up in one statement, all or nothing. A row that sets what is already
    /// there changes nothing (not even a timestamp), so a replayed batch is harmless. A
    /// conducted conversation keeps the day it was planned for.
    #[tracing::instrument(skip(self, updates), fields(updates = updates.len()))]
    pub async fn set_follow_up(
        &self,
        push_id: Uuid,
        updates: &[FollowUp],
    ) -> Result<FollowUpApplied, StoreError> {
        let ids: Vec<Uuid> = updates.iter().map(|u| u.person_id).collect();
        let statuses: Vec<&str> = updates.iter().map(|u| u.status).collect();
        let dates: Vec<Option<NaiveDate>> = updates.iter().map(|u| u.date).collect();
        let mut tx = self.pool().begin().await?;
        let push = lock_push(&mut tx, push_id).await?;
        if push.status() == PushStatus::Closed {
            return Err(StoreError::Conflict(PUSH_CLOSED.into()));
        }
        let unknown: Vec<Uuid> = sqlx::query_scalar(
            "SELECT i FROM UNNEST($2::uuid[]) WITH ORDINALITY AS t(i, n)
             WHERE NOT EXISTS (SELECT 1 FROM push_users u WHERE u.push_id = $1 AND u.person_id = i)
             ORDER BY n",
        )
        .bind(push_id)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let changed = sqlx::query(
            "WITH input AS (
                 SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::date[]) AS i(person_id, status, day)
             ), next AS (
                 SELECT u.person_id, i.status,
                        CASE i.status WHEN 'not_planned' THEN NULL
                                      WHEN 'planned' THEN i.day
                                      ELSE u.planned_on END AS planned_on,
                        CASE i.status WHEN 'conducted' THEN i.day END AS conducted_on
                 FROM input i JOIN push_users u ON u.push_id = $1 AND u.person_id = i.person_id
             )
             UPDATE push_users u
             SET status = n.status, planned_on = n.planned_on, conducted_on = n.conducted_on
             FROM next n
             WHERE u.push_id = $1 AND u.person_id = n.person_id
               AND (u.status, u.planned_on, u.conducted_on)
                   IS DISTINCT FROM (n.status, n.planned_on, n.conducted_on)",
        )
        .bind(push_id)
        .bind(&ids)
        .bind(&statuses)
        .bind(&dates)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(FollowUpApplied {
            changed,
            unchanged: (updates.len() - unknown.len()) as u64 - changed,
            unknown,
        })
    }
}
