//! CSV uploads into a segment: stored by the api with an outbox row in the same transaction,
//! processed by a worker in batches, finished with a status and counts, the file dropped.
//!
//! Processing is idempotent: membership inserts and error rows ignore conflicts, and the
//! counts are computed over the whole file by each run, so a run after a crash (or a second
//! copy of the job) writes the same counts. One worker at a time holds an upload, through a
//! session advisory lock that Postgres releases when the worker's connection dies.

use crate::segments::{add_rows, lock_segment, BatchReport, MemberSource, SegmentRowError};
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use pushfleet_domain::segment_rows::MemberRow;
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Row};
use std::collections::HashSet;
use uuid::Uuid;

/// `segment_uploads.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    Processing,
    Completed,
    CompletedWithErrors,
    /// The file turned out unreadable as a whole.
    Failed,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Processing => "processing",
            UploadStatus::Completed => "completed",
            UploadStatus::CompletedWithErrors => "completed_with_errors",
            UploadStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SegmentUpload {
    pub id: Uuid,
    pub segment_id: Uuid,
    pub filename: Option<String>,
    pub status: String,
    pub total: i32,
    pub added: i32,
    pub failed: i32,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub size_bytes: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const UPLOAD_COLUMNS: &str = "id, segment_id, filename, status, total, added, failed, warnings, \
                              error, octet_length(content) AS size_bytes, created_at, finished_at";

/// Counts so far, as the upload row shows them while it is processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadCounts {
    pub total: u64,
    pub added: u64,
    pub failed: u64,
}

/// An upload held by one worker: its file, and the connection whose advisory lock keeps
/// other workers off it. Dropping it (an error, a crash) closes the connection and so
/// releases the upload.
pub struct ClaimedUpload {
    conn: PoolConnection<Postgres>,
    pub id: Uuid,
    pub segment_id: Uuid,
    pub content: Vec<u8>,
    seen: HashSet<Uuid>,
    counts: UploadCounts,
}

/// What claiming an upload found.
pub enum UploadClaim {
    Claimed(ClaimedUpload),
    /// Another worker holds it (it may be a duplicate job): try again later.
    Busy,
    /// Already finished, or no such upload: nothing to do.
    Done,
}

impl Store {
    /// Stores an uploaded file as a `processing` upload and, in the same transaction, the
    /// outbox message that will hand it to a worker.
    #[tracing::instrument(skip_all, fields(segment_id = %segment_id, bytes = content.len()))]
    pub async fn insert_segment_upload(
        &self,
        segment_id: Uuid,
        filename: Option<&str>,
        content: &[u8],
        routing_key: &str,
    ) -> Result<SegmentUpload, StoreError> {
        let mut tx = self.pool().begin().await?;
        lock_segment(&mut tx, segment_id).await?;
        let id = Uuid::now_v7();
        let upload = sqlx::query_as::<_, SegmentUpload>(&format!(
            "INSERT INTO segment_uploads (id, segment_id, filename, content) VALUES ($1, $2, $3, $4)
             RETURNING {UPLOAD_COLUMNS}"
        ))
        .bind(id)
        .bind(segment_id)
        .bind(filename)
        .bind(content)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO outbox (routing_key, payload) VALUES ($1, $2)")
            .bind(routing_key)
            .bind(serde_json::json!({ "upload_id": id }))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(upload)
    }

    pub async fn get_segment_upload(
        &self,
        segment_id: Uuid,
        upload_id: Uuid,
    ) -> Result<SegmentUpload, StoreError> {
        sqlx::query_as::<_, SegmentUpload>(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM segment_uploads WHERE id = $1 AND segment_id = $2"
        ))
        .bind(upload_id)
        .bind(segment_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("upload"))
    }

    /// The segment's most recent upload, if any.
    pub async fn latest_segment_upload(
        &self,
        segment_id: Uuid,
    ) -> Result<Option<SegmentUpload>, StoreError> {
        Ok(sqlx::query_as::<_, SegmentUpload>(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM segment_uploads WHERE segment_id = $1
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(segment_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// One page of the rows of an upload that added nobody, in file order after row `after`.
    pub async fn upload_errors_page(
        &self,
        upload_id: Uuid,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SegmentRowError>, StoreError> {
        let rows = sqlx::query(
            "SELECT row_number, value, reason FROM segment_upload_errors
             WHERE upload_id = $1 AND ($2::int IS NULL OR row_number > $2)
             ORDER BY row_number LIMIT $3",
        )
        .bind(upload_id)
        .bind(after.map(clamp_i32))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let reason: String = r.try_get("reason")?;
                Ok(SegmentRowError {
                    row: i64::from(r.try_get::<i32, _>("row_number")?),
                    value: r.try_get("value")?,
                    problem: parse_problem(&reason)?,
                })
            })
            .collect()
    }

    /// Takes an upload for processing: its file, with the advisory lock held on a connection
    /// of its own.
    #[tracing::instrument(skip(self))]
    pub async fn claim_segment_upload(&self, upload_id: Uuid) -> Result<UploadClaim, StoreError> {
        let mut conn = self.pool().acquire().await?;
        // Whatever happens next, the lock must not go back to the pool with the connection.
        conn.close_on_drop();
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1::text, 7274))")
                .bind(upload_id)
                .fetch_one(&mut *conn)
                .await?;
        if !locked {
            return Ok(UploadClaim::Busy);
        }
        let row = sqlx::query(
            "SELECT segment_id, content FROM segment_uploads
             WHERE id = $1 AND status = 'processing' AND content IS NOT NULL",
        )
        .bind(upload_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(UploadClaim::Done);
        };
        Ok(UploadClaim::Claimed(ClaimedUpload {
            id: upload_id,
            segment_id: row.try_get("segment_id")?,
            content: row.try_get("content")?,
            conn,
            seen: HashSet::new(),
            counts: UploadCounts::default(),
        }))
    }
}

impl ClaimedUpload {
    /// Adds one batch of rows and records its errors and the counts so far, in one
    /// transaction. After an error the claim is spoilt (what the batch saw is half
    /// remembered): drop it and process the upload again from the start.
    pub async fn record_batch(&mut self, rows: &[MemberRow]) -> Result<BatchReport, StoreError> {
        let mut tx = sqlx::Connection::begin(&mut *self.conn).await?;
        lock_segment(&mut tx, self.segment_id).await?;
        let (report, _) = add_rows(
            &mut tx,
            self.segment_id,
            rows,
            MemberSource::Upload,
            &mut self.seen,
        )
        .await?;
        if !report.errors.is_empty() {
            let rows: Vec<i32> = report.errors.iter().map(|e| clamp_i32(e.row)).collect();
            let values: Vec<&str> = report.errors.iter().map(|e| e.value.as_str()).collect();
            let reasons: Vec<&str> = report.errors.iter().map(|e| e.problem.as_str()).collect();
            sqlx::query(
                "INSERT INTO segment_upload_errors (upload_id, row_number, value, reason)
                 SELECT $1, r, v, reason FROM UNNEST($2::int[], $3::text[], $4::text[]) AS t(r, v, reason)
                 ON CONFLICT DO NOTHING",
            )
            .bind(self.id)
            .bind(&rows)
            .bind(&values)
            .bind(&reasons)
            .execute(&mut *tx)
            .await?;
        }
        let counts = UploadCounts {
            total: self.counts.total + rows.len() as u64,
            added: self.counts.added + report.added,
            failed: self.counts.failed + report.errors.len() as u64,
        };
        sqlx::query("UPDATE segment_uploads SET total = $2, added = $3, failed = $4 WHERE id = $1")
            .bind(self.id)
            .bind(clamp_i32(counts.total as i64))
            .bind(clamp_i32(counts.added as i64))
            .bind(clamp_i32(counts.failed as i64))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.counts = counts;
        Ok(report)
    }

    pub fn counts(&self) -> UploadCounts {
        self.counts
    }

    /// Ends processing: the final status and counts, the warnings, and the file dropped.
    /// `error` set means the file was unreadable as a whole (`failed`).
    pub async fn finish(
        mut self,
        warnings: &[String],
        error: Option<&str>,
    ) -> Result<UploadStatus, StoreError> {
        let status = match (error, self.counts.failed) {
            (Some(_), _) => UploadStatus::Failed,
            (None, 0) => UploadStatus::Completed,
            (None, _) => UploadStatus::CompletedWithErrors,
        };
        sqlx::query(
            "UPDATE segment_uploads
             SET status = $2, total = $3, added = $4, failed = $5, warnings = $6, error = $7,
                 content = NULL, finished_at = now()
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(self.id)
        .bind(status.as_str())
        .bind(clamp_i32(self.counts.total as i64))
        .bind(clamp_i32(self.counts.added as i64))
        .bind(clamp_i32(self.counts.failed as i64))
        .bind(warnings)
        .bind(error)
        .execute(&mut *self.conn)
        .await?;
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1::text, 7274))")
            .bind(self.id)
            .execute(&mut *self.conn)
            .await;
        Ok(status)
    }
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(0, i64::from(i32::MAX)) as i32
}

fn parse_problem(reason: &str) -> Result<pushfleet_domain::segment_rows::RowProblem, StoreError> {
    use pushfleet_domain::segment_rows::RowProblem as P;
    [
        P::UnknownPerson,
        P::InvalidEmail,
        P::DuplicateRow,
        P::OptedOut,
        P::Deactivated,
        P::EmptyRow,
    ]
    .into_iter()
    .find(|p| p.as_str() == reason)
    .ok_or_else(|| StoreError::Corrupt(format!("unknown upload error reason {reason:?}")))
}
