//! Segments (seed 004): named sets of people, filled by paste, upload or opt-in.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::segment_rows::{MemberKey, MemberRow, RowProblem};
use sqlx::PgConnection;
use std::collections::HashSet;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Segment {
    pub id: Uuid,
    pub name: String,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
    /// The bot's reply after the opt-in button; `None` for the default.
    pub opt_in_reply: Option<String>,
    /// The bot's reply after the opt-out button; `None` for the default.
    pub opt_out_reply: Option<String>,
    /// Permission labels (seed 003).
    pub labels: Vec<String>,
}

/// The replies of a new segment (`None`: the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentReplies {
    pub opt_in: Option<String>,
    pub opt_out: Option<String>,
}

/// A change to a segment: `None` leaves a field as it is; `Some(None)` puts a reply back to
/// the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentChange {
    pub name: Option<String>,
    pub opt_in_reply: Option<Option<String>>,
    pub opt_out_reply: Option<Option<String>>,
    /// New permission labels.
    pub labels: Option<Vec<String>>,
}

/// The columns of a `Segment`, over `segments s`.
const SEGMENT_COLUMNS: &str =
    "s.id, s.name, s.created_at, s.opt_in_reply, s.opt_out_reply, s.labels,
    (SELECT count(*) FROM segment_members m WHERE m.segment_id = s.id) AS member_count";

/// How a person got into a segment (`segment_members.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberSource {
    Paste,
    Upload,
    OptIn,
    Api,
}

impl MemberSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberSource::Paste => "paste",
            MemberSource::Upload => "upload",
            MemberSource::OptIn => "opt_in",
            MemberSource::Api => "api",
        }
    }
}

/// A row that added nobody, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRowError {
    pub row: i64,
    pub value: String,
    pub problem: RowProblem,
}

/// What one batch of rows did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Rows whose person is a member now (including people who already were).
    pub added: u64,
    pub errors: Vec<SegmentRowError>,
}

/// A member as the member list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SegmentMember {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

/// A person found for a key.
#[derive(Debug, sqlx::FromRow)]
struct Resolved {
    idx: i32,
    person_id: Option<Uuid>,
    active: Option<bool>,
    opted_out: bool,
}

impl Store {
    pub async fn create_segment(
        &self,
        name: &str,
        replies: &SegmentReplies,
        labels: &[String],
    ) -> Result<Segment, StoreError> {
        let id = Uuid::now_v7();
        let created_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO segments (id, name, opt_in_reply, opt_out_reply, labels)
             VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
        )
        .bind(id)
        .bind(name)
        .bind(&replies.opt_in)
        .bind(&replies.opt_out)
        .bind(labels)
        .fetch_one(self.pool())
        .await?;
        Ok(Segment {
            id,
            name: name.to_owned(),
            member_count: 0,
            created_at,
            opt_in_reply: replies.opt_in.clone(),
            opt_out_reply: replies.opt_out.clone(),
            labels: labels.to_vec(),
        })
    }

    pub async fn get_segment(&self, id: Uuid) -> Result<Segment, StoreError> {
        sqlx::query_as::<_, Segment>(&format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments s WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("segment"))
    }

    /// Renames a segment or changes its replies; returns it as it is now.
    #[tracing::instrument(skip(self, change))]
    pub async fn update_segment(
        &self,
        id: Uuid,
        change: &SegmentChange,
    ) -> Result<Segment, StoreError> {
        let found = sqlx::query(
            "UPDATE segments SET name = coalesce($2, name),
                    opt_in_reply = CASE WHEN $3 THEN $4 ELSE opt_in_reply END,
                    opt_out_reply = CASE WHEN $5 THEN $6 ELSE opt_out_reply END,
                    labels = coalesce($7, labels)
             WHERE id = $1",
        )
        .bind(id)
        .bind(&change.name)
        .bind(change.opt_in_reply.is_some())
        .bind(change.opt_in_reply.clone().flatten())
        .bind(change.opt_out_reply.is_some())
        .bind(change.opt_out_reply.clone().flatten())
        .bind(&change.labels)
        .execute(self.pool())
        .await?
        .rows_affected();
        if found == 0 {
            return Err(StoreError::NotFound("segment"));
        }
        self.get_segment(id).await
    }

    /// Segments, newest first, `limit` of them created before `before` (a page cursor).
    pub async fn list_segments(
        &self,
        limit: i64,
        before: Option<Uuid>,
        labels: Option<&[String]>,
    ) -> Result<Vec<Segment>, StoreError> {
        Ok(sqlx::query_as::<_, Segment>(&format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments s
             WHERE ($2::uuid IS NULL OR s.id < $2)
               AND ($3::text[] IS NULL OR s.labels && $3)
             ORDER BY s.id DESC LIMIT $1"
        ))
        .bind(limit)
        .bind(before)
        .bind(labels)
        .fetch_all(self.pool())
        .await?)
    }

    /// Resolves a batch of rows to people with one query and adds the people found, in one
    /// transaction. Rows already carrying a problem are reported as they are; the others may
    /// name nobody (`unknown_person`), a deactivated person, someone who left this segment on
    /// their own (`opted_out`: an admin's list does not put them back), or a person an
    /// earlier row already named (`duplicate_row`; `seen` carries them across batches).
    #[tracing::instrument(skip_all, fields(segment_id = %segment_id, rows = rows.len()))]
    pub async fn add_segment_rows(
        &self,
        segment_id: Uuid,
        rows: &[MemberRow],
        source: MemberSource,
        seen: &mut HashSet<Uuid>,
    ) -> Result<BatchReport, StoreError> {
        let mut tx = self.pool().begin().await?;
        lock_segment(&mut tx, segment_id).await?;
        let (report, _) = add_rows(&mut tx, segment_id, rows, source, seen).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// One page of the members, with their name and e-mail, in person id order after
    /// `after` (the last id of the previous page).
    pub async fn segment_members_page(
        &self,
        segment_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<SegmentMember>, StoreError> {
        Ok(sqlx::query_as::<_, SegmentMember>(
            "SELECT p.id, p.first_name, p.last_name, p.email
             FROM segment_members m JOIN people p ON p.id = m.person_id
             WHERE m.segment_id = $1 AND ($2::uuid IS NULL OR m.person_id > $2)
             ORDER BY m.person_id LIMIT $3",
        )
        .bind(segment_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Whether `person_id` is in the segment.
    pub async fn is_segment_member(
        &self,
        segment_id: Uuid,
        person_id: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM segment_members WHERE segment_id = $1 AND person_id = $2)",
        )
        .bind(segment_id)
        .bind(person_id)
        .fetch_one(self.pool())
        .await?)
    }
}

/// Takes the segment's row lock (so a concurrent opt-out and add do not cross), and checks
/// that it exists.
pub(crate) async fn lock_segment(
    conn: &mut PgConnection,
    segment_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query_scalar::<_, Uuid>("SELECT id FROM segments WHERE id = $1 FOR SHARE")
        .bind(segment_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("segment"))?;
    Ok(())
}

/// The body of [`Store::add_segment_rows`], on a connection the caller owns (the upload
/// worker adds its progress to the same transaction). Returns the report and how many
/// memberships were new.
pub(crate) async fn add_rows(
    conn: &mut PgConnection,
    segment_id: Uuid,
    rows: &[MemberRow],
    source: MemberSource,
    seen: &mut HashSet<Uuid>,
) -> Result<(BatchReport, u64), StoreError> {
    let mut idx = Vec::new();
    let mut emails: Vec<Option<String>> = Vec::new();
    let mut ext_ids: Vec<Option<String>> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match &row.key {
            Ok(MemberKey::Email(e)) => {
                idx.push(i as i32);
                emails.push(Some(e.as_str().to_lowercase()));
                ext_ids.push(None);
            }
            Ok(MemberKey::ExternalId(x)) => {
                idx.push(i as i32);
                emails.push(None);
                ext_ids.push(Some(x.clone()));
            }
            Err(_) => {}
        }
    }
    let resolved: Vec<Resolved> = if idx.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT i.idx, p.id AS person_id, p.active,
                    (p.id IS NOT NULL AND EXISTS (SELECT 1 FROM segment_opt_outs o
                                 WHERE o.segment_id = $4 AND o.person_id = p.id)) AS opted_out
             FROM UNNEST($1::int[], $2::text[], $3::text[]) AS i(idx, email, external_id)
             LEFT JOIN LATERAL (
                 SELECT id, active FROM people WHERE i.email IS NOT NULL AND lower(email) = i.email
                 UNION ALL
                 SELECT id, active FROM people WHERE i.external_id IS NOT NULL AND external_id = i.external_id
                 LIMIT 1
             ) p ON true",
        )
        .bind(&idx)
        .bind(&emails)
        .bind(&ext_ids)
        .bind(segment_id)
        .fetch_all(&mut *conn)
        .await?
    };
    let mut outcome: Vec<Option<Result<Uuid, RowProblem>>> = vec![None; rows.len()];
    for r in resolved {
        let verdict = match (r.person_id, r.active) {
            (None, _) => Err(RowProblem::UnknownPerson),
            (Some(_), Some(false)) => Err(RowProblem::Deactivated),
            (Some(_), _) if r.opted_out => Err(RowProblem::OptedOut),
            (Some(id), _) => Ok(id),
        };
        if let Some(slot) = outcome.get_mut(r.idx as usize) {
            *slot = Some(verdict);
        }
    }
    let mut report = BatchReport::default();
    let mut members = Vec::new();
    for (row, verdict) in rows.iter().zip(outcome) {
        let verdict = match (&row.key, verdict) {
            (Err(problem), _) => Err(*problem),
            (Ok(_), Some(v)) => v,
            (Ok(_), None) => Err(RowProblem::UnknownPerson),
        };
        match verdict {
            Ok(id) if seen.insert(id) => {
                report.added += 1;
                members.push(id);
            }
            Ok(_) => report.errors.push(row_error(row, RowProblem::DuplicateRow)),
            Err(problem) => report.errors.push(row_error(row, problem)),
        }
    }
    let inserted = if members.is_empty() {
        0
    } else {
        sqlx::query(
            "INSERT INTO segment_members (segment_id, person_id, source)
             SELECT $1, p, $3 FROM UNNEST($2::uuid[]) AS p
             ON CONFLICT DO NOTHING",
        )
        .bind(segment_id)
        .bind(&members)
        .bind(source.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    };
    Ok((report, inserted))
}

fn row_error(row: &MemberRow, problem: RowProblem) -> SegmentRowError {
    SegmentRowError {
        row: row.row,
        value: row.value.clone(),
        problem,
    }
}
