//! The segment import worker: consumes `segment-imports` (one message per CSV upload, written
//! to the outbox with the upload) and adds the file's rows to the segment in batches.
//!
//! Nothing is lost and nothing stays `processing`: the message is acked only once the upload
//! is finished (or found finished), a crash leaves it unacked (redelivered), and a copy that
//! finds another worker on the upload is requeued until that worker is done. A run after a
//! crash processes the file again from the start; memberships and error rows ignore
//! conflicts and the counts are computed over the whole file, so they come out the same.

use pushfleet_domain::csv_records::{CsvRecord, CsvRecords};
use pushfleet_domain::segment_rows::{MemberRow, SegmentRowReader};
use pushfleet_queue::{settle, Delivery};
use pushfleet_store::{ClaimedUpload, Store, StoreError, UploadClaim, UploadStatus};
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// Rows resolved per query and committed per transaction.
pub const IMPORT_BATCH: usize = 1000;
/// Bytes of the file fed to the CSV reader at a time.
const CHUNK: usize = 64 * 1024;

/// The message: which upload to process.
#[derive(Debug, Deserialize)]
pub struct SegmentImportJob {
    pub upload_id: Uuid,
}

/// What handling one job came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Processed now, ending in this status.
    Finished(UploadStatus),
    /// Already finished (a repeated job), or no such upload.
    NothingToDo,
    /// Another worker holds the upload.
    Busy,
}

pub(crate) struct SegmentImporter {
    pub store: Store,
    pub shutdown: CancellationToken,
}

impl SegmentImporter {
    pub(crate) async fn handle(&self, delivery: Delivery) {
        let job: SegmentImportJob = match serde_json::from_slice(&delivery.data) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "malformed segment import job; dead-lettering it");
                settle::reject(&delivery).await;
                return;
            }
        };
        let span = tracing::info_span!("segment_import", upload_id = %job.upload_id,
                                       redelivered = delivery.redelivered);
        async move {
            match import_upload(&self.store, job.upload_id).await {
                Ok(ImportOutcome::Busy) => {
                    tracing::info!("another worker holds the upload; requeueing");
                    self.pause().await;
                    settle::requeue(&delivery).await;
                }
                Ok(outcome) => {
                    tracing::info!(?outcome, "segment import job done");
                    settle::ack(&delivery).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "segment import not finished; requeueing");
                    self.pause().await;
                    settle::requeue(&delivery).await;
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Keeps a failing dependency or a busy upload from becoming a hot redelivery loop.
    async fn pause(&self) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Processes one upload, if it is still to be processed and no other worker holds it.
pub async fn import_upload(store: &Store, upload_id: Uuid) -> Result<ImportOutcome, StoreError> {
    let mut upload = match store.claim_segment_upload(upload_id).await? {
        UploadClaim::Claimed(u) => u,
        UploadClaim::Busy => return Ok(ImportOutcome::Busy),
        UploadClaim::Done => return Ok(ImportOutcome::NothingToDo),
    };
    let content = std::mem::take(&mut upload.content);
    let mut csv = CsvRecords::new();
    let mut rows = SegmentRowReader::new();
    let mut records = Vec::new();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut chunks = content.chunks(CHUNK);
    let mut at_end = false;
    while !at_end {
        let read = match chunks.next() {
            Some(chunk) => csv.feed(chunk, &mut records),
            None => {
                at_end = true;
                csv.finish(&mut records)
            }
        };
        if let Err(not_csv) = read {
            // The api refuses such files, so this is a file stored before a stricter check:
            // the rows before the bad spot are kept, the upload ends `failed` with the reason.
            flush(&mut upload, &mut batch).await?;
            let counts = upload.counts();
            let status = upload
                .finish(rows.warnings(), Some(&not_csv.to_string()))
                .await?;
            tracing::warn!(error = %not_csv, total = counts.total, "upload is not readable CSV");
            return Ok(ImportOutcome::Finished(status));
        }
        for CsvRecord { line, fields } in records.drain(..) {
            let line = i64::try_from(line).unwrap_or(i64::MAX);
            if let Some(row) = rows.read(line, &fields) {
                batch.push(row);
                if batch.len() >= IMPORT_BATCH {
                    flush(&mut upload, &mut batch).await?;
                }
            }
        }
    }
    flush(&mut upload, &mut batch).await?;
    let counts = upload.counts();
    let status = upload.finish(rows.warnings(), None).await?;
    tracing::info!(
        status = status.as_str(),
        total = counts.total,
        added = counts.added,
        failed = counts.failed,
        "segment upload processed"
    );
    metrics::counter!("pushfleet_segment_upload_rows_total", "result" => "added")
        .increment(counts.added);
    metrics::counter!("pushfleet_segment_upload_rows_total", "result" => "failed")
        .increment(counts.failed);
    Ok(ImportOutcome::Finished(status))
}

async fn flush(upload: &mut ClaimedUpload, batch: &mut Vec<MemberRow>) -> Result<(), StoreError> {
    if !batch.is_empty() {
        upload.record_batch(batch).await?;
        batch.clear();
    }
    Ok(())
}
