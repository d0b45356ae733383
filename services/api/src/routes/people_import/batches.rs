//! Rows on their way to the database: the reader gathers them into batches, the writer
//! tasks upsert them, each on a connection of its own.

use super::row_errors::RowErrors;
use super::{ImportReport, RowErrorView};
use crate::ApiError;
use pushfleet_store::{ImportCounts, ImportPerson, ImportSession, RowError, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Rows per upsert statement: large enough to amortise the round trip, small enough that
/// two batches in flight stay a few MiB.
pub const BATCH_ROWS: usize = 5_000;

/// How many connections write batches side by side: the database's work is the bottleneck,
/// and Postgres runs each connection on one core.
pub const WRITERS: usize = 2;

type WriterResult = Result<(ImportSession, RowErrors), pushfleet_store::StoreError>;

/// The tasks that write batches; the reader hands them rows through bounded channels. A
/// row goes to a writer chosen by its e-mail (else its external id), so rows that meet on an
/// e-mail, the key a directory is usually first loaded by, keep their order in the file.
/// Two rows of one external id with different e-mails (a person whose address changed twice
/// in one file) may run in either order.
pub(super) struct Writers {
    txs: Vec<mpsc::Sender<Vec<ImportPerson>>>,
    tasks: Vec<JoinHandle<WriterResult>>,
}

impl Writers {
    pub(super) fn start(store: Store) -> Writers {
        let mut txs = Vec::with_capacity(WRITERS);
        let mut tasks = Vec::with_capacity(WRITERS);
        for _ in 0..WRITERS {
            // One batch waiting per writer: memory holds a few batches, whatever the file size.
            let (tx, mut rx) = mpsc::channel::<Vec<ImportPerson>>(1);
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut session = store.begin_import().await?;
                let mut errors = RowErrors::default();
                while let Some(batch) = rx.recv().await {
                    errors.extend(session.upsert(batch).await?);
                }
                Ok((session, errors))
            }));
            txs.push(tx);
        }
        Writers { txs, tasks }
    }

    /// Sends a batch to writer `k`; false when it has stopped (its error comes out of
    /// `finish`).
    async fn send(&self, k: usize, batch: Vec<ImportPerson>) -> bool {
        self.txs[k].send(batch).await.is_ok()
    }

    /// Waits for every batch, then resolves relations (only now is everyone they may name
    /// written).
    async fn finish(self) -> Result<(ImportCounts, RowErrors), ApiError> {
        drop(self.txs);
        let mut sessions = Vec::with_capacity(self.tasks.len());
        let mut errors = RowErrors::default();
        let mut failure = None;
        for task in self.tasks {
            match task.await {
                Ok(Ok((session, e))) => {
                    sessions.push(session);
                    errors.merge(e);
                }
                Ok(Err(e)) => failure = Some(ApiError::from(e)),
                Err(e) => failure = Some(ApiError::Internal(anyhow::anyhow!("import writer: {e}"))),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let mut counts = ImportCounts::default();
        for session in sessions {
            let (c, e) = session.finish().await?;
            counts.inserted += c.inserted;
            counts.updated += c.updated;
            errors.extend(e);
        }
        Ok((counts, errors))
    }
}

/// Which writer a row goes to.
fn writer_for(p: &ImportPerson) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match (&p.email, &p.external_id) {
        (Some(e), _) => e.to_lowercase().hash(&mut h),
        (None, Some(x)) => x.hash(&mut h),
        (None, None) => 0u8.hash(&mut h),
    }
    (h.finish() % WRITERS as u64) as usize
}

/// Rows and errors gathered while reading.
pub(super) struct Reader {
    batches: Vec<Vec<ImportPerson>>,
    pub(super) rows: u64,
    errors: RowErrors,
}

impl Reader {
    pub(super) fn new() -> Self {
        Self {
            batches: (0..WRITERS)
                .map(|_| Vec::with_capacity(BATCH_ROWS))
                .collect(),
            rows: 0,
            errors: RowErrors::default(),
        }
    }

    pub(super) fn take(&mut self, parsed: Result<ImportPerson, Vec<RowError>>) {
        self.rows += 1;
        match parsed {
            Ok(p) => self.batches[writer_for(&p)].push(p),
            Err(errors) => self.errors.extend(errors),
        }
    }

    pub(super) async fn flush_if_full(&mut self, writers: &Writers) -> bool {
        for k in 0..WRITERS {
            if self.batches[k].len() >= BATCH_ROWS {
                let batch = std::mem::replace(&mut self.batches[k], Vec::with_capacity(BATCH_ROWS));
                if !writers.send(k, batch).await {
                    return false;
                }
            }
        }
        true
    }

    pub(super) async fn report(
        mut self,
        writers: Writers,
        warnings: Vec<String>,
    ) -> Result<ImportReport, ApiError> {
        for k in 0..WRITERS {
            let last = std::mem::take(&mut self.batches[k]);
            if !last.is_empty() {
                writers.send(k, last).await;
            }
        }
        let (counts, store_errors) = writers.finish().await?;
        let mut errors = self.errors;
        errors.merge(store_errors);
        let (errors, truncated) = errors.finish();
        let imported = counts.inserted + counts.updated;
        Ok(ImportReport {
            rows: self.rows,
            inserted: counts.inserted,
            updated: counts.updated,
            failed: self.rows.saturating_sub(imported),
            errors: errors
                .into_iter()
                .map(|e| RowErrorView {
                    row: e.row,
                    field: e.field,
                    message: e.message,
                })
                .collect(),
            errors_truncated: truncated,
            warnings,
        })
    }
}
