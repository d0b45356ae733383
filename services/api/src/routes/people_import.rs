//! `POST /v1/people/import`: bulk upsert of the directory from CSV (with a header row), NDJSON
//! or a JSON document. CSV and NDJSON are streamed: rows are parsed as the body arrives and
//! written in batches by a second task, so memory holds a couple of batches whatever the
//! file's size, and parsing overlaps the database's work.

use super::AppState;
use crate::api_error::ErrorBody;
use crate::people_rows::{person_from_json, ColumnMap};
use crate::ApiError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures::StreamExt;
use pushfleet_domain::csv_records::{CsvRecord, CsvRecords};
use pushfleet_store::{ImportCounts, ImportPerson, ImportSession, RowError, Store};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

/// Rows per upsert statement: large enough to amortise the round trip, small enough that
/// two batches in flight stay a few MiB.
pub const BATCH_ROWS: usize = 5_000;
/// Errors listed in the answer; the counts cover them all.
pub const MAX_LISTED_ERRORS: usize = 1_000;

#[derive(Serialize, ToSchema, Debug)]
pub struct ImportReport {
    /// Rows read (not counting the header or blank lines).
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Rows refused; every other row was imported.
    pub failed: u64,
    /// Per-row problems (at most 1,000 listed). A relation naming nobody (an unknown
    /// manager, say) is listed too, but its person was imported.
    pub errors: Vec<RowErrorView>,
    pub errors_truncated: bool,
    pub warnings: Vec<String>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct RowErrorView {
    /// CSV line (1 = the header) or JSON index (0-based).
    pub row: i64,
    pub field: Option<String>,
    pub message: String,
}

/// How many connections write batches side by side: the database's work is the bottleneck,
/// and Postgres runs each connection on one core.
pub const WRITERS: usize = 2;

type WriterResult = Result<(ImportSession, Vec<RowError>), pushfleet_store::StoreError>;

/// The tasks that write batches; the reader hands them rows through bounded channels. A
/// row goes to a writer chosen by its e-mail (else its external id), so rows that meet on an
/// e-mail, the key a directory is usually first loaded by, keep their order in the file.
/// Two rows of one external id with different e-mails (a person whose address changed twice
/// in one file) may run in either order.
struct Writers {
    txs: Vec<mpsc::Sender<Vec<ImportPerson>>>,
    tasks: Vec<JoinHandle<WriterResult>>,
}

impl Writers {
    fn start(store: Store) -> Writers {
        let mut txs = Vec::with_capacity(WRITERS);
        let mut tasks = Vec::with_capacity(WRITERS);
        for _ in 0..WRITERS {
            // One batch waiting per writer: memory holds a few batches, whatever the file size.
            let (tx, mut rx) = mpsc::channel::<Vec<ImportPerson>>(1);
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut session = store.begin_import().await?;
                let mut errors = Vec::new();
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
    async fn finish(self) -> Result<(ImportCounts, Vec<RowError>), ApiError> {
        drop(self.txs);
        let mut sessions = Vec::with_capacity(self.tasks.len());
        let mut errors = Vec::new();
        let mut failure = None;
        for task in self.tasks {
            match task.await {
                Ok(Ok((session, e))) => {
                    sessions.push(session);
                    errors.extend(e);
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
struct Reader {
    batches: Vec<Vec<ImportPerson>>,
    rows: u64,
    errors: Vec<RowError>,
}

impl Reader {
    fn new() -> Self {
        Self {
            batches: (0..WRITERS)
                .map(|_| Vec::with_capacity(BATCH_ROWS))
                .collect(),
            rows: 0,
            errors: Vec::new(),
        }
    }

    fn take(&mut self, parsed: Result<ImportPerson, Vec<RowError>>) {
        self.rows += 1;
        match parsed {
            Ok(p) => self.batches[writer_for(&p)].push(p),
            Err(errors) => self.errors.extend(errors),
        }
    }

    async fn flush_if_full(&mut self, writers: &Writers) -> bool {
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

    async fn report(
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
        errors.extend(store_errors);
        errors.sort_by_key(|e| e.row);
        let imported = counts.inserted + counts.updated;
        let truncated = errors.len() > MAX_LISTED_ERRORS;
        errors.truncate(MAX_LISTED_ERRORS);
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

fn too_large(limit: u64, imported_before: u64) -> ApiError {
    ApiError::Status {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!(
            "the import is larger than {limit} bytes (PEOPLE_IMPORT_MAX_BYTES); the {imported_before} rows read before the limit were imported"
        ),
    }
}

/// Imports people: `text/csv` with a header row, `application/x-ndjson` (one person per
/// line) or `application/json` (`{"people": [...]}`). A person is matched by external id,
/// else by e-mail, and updated; otherwise created. Only the columns given are written.
#[utoipa::path(post, path = "/v1/people/import",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 400, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn import_people(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let report =
        match content_type.as_str() {
            "text/csv" | "application/csv" => import_csv(&state, body).await?,
            "application/x-ndjson" | "application/jsonl" => import_ndjson(&state, body).await?,
            "application/json" => import_json(&state, body).await?,
            _ => return Err(ApiError::Status {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message:
                    "send text/csv (with a header row), application/x-ndjson or application/json"
                        .into(),
            }),
        };
    tracing::info!(
        rows = report.rows,
        inserted = report.inserted,
        updated = report.updated,
        failed = report.failed,
        "people imported"
    );
    Ok((StatusCode::OK, Json(report)))
}

async fn import_csv(state: &AppState, body: Body) -> Result<ImportReport, ApiError> {
    let limit = state.import_max_bytes;
    let mut stream = body.into_data_stream();
    let mut csv = CsvRecords::new();
    let mut records: Vec<CsvRecord> = Vec::new();
    let mut columns: Option<ColumnMap> = None;
    let mut warnings = Vec::new();
    let mut reader = Reader::new();
    let mut writer: Option<Writers> = None;
    let mut seen_bytes: u64 = 0;
    let mut ended = false;
    while !ended {
        let fed = match stream.next().await {
            Some(Ok(chunk)) => {
                seen_bytes += chunk.len() as u64;
                if seen_bytes > limit {
                    let rows = reader.rows;
                    if let Some(w) = writer {
                        reader.report(w, warnings).await?;
                    }
                    return Err(too_large(limit, rows));
                }
                csv.feed(&chunk, &mut records)
            }
            Some(Err(e)) => {
                return Err(ApiError::BadRequest {
                    code: "body_read_failed",
                    message: format!("reading the request body failed: {e}"),
                })
            }
            None => {
                ended = true;
                csv.finish(&mut records)
            }
        };
        for record in records.drain(..) {
            let map = match &columns {
                Some(m) => m,
                None => {
                    let (map, w) = ColumnMap::from_header(&record.fields).map_err(|message| {
                        ApiError::Status {
                            status: StatusCode::UNPROCESSABLE_ENTITY,
                            code: "invalid_header",
                            message,
                        }
                    })?;
                    warnings = w;
                    columns = Some(map);
                    writer = Some(Writers::start(state.store.clone()));
                    continue;
                }
            };
            reader.take(map.person(record.line as i64, &record.fields));
        }
        if let Err(not_csv) = fed {
            // The rows read before the bad bytes are valid and are kept; the answer says so.
            let imported = match writer {
                Some(w) => {
                    let report = reader.report(w, warnings).await?;
                    report.inserted + report.updated
                }
                None => 0,
            };
            return Err(ApiError::BadRequest {
                code: "not_csv",
                message: format!("{not_csv}; {imported} rows before it were imported"),
            });
        }
        if let Some(w) = &writer {
            if !reader.flush_if_full(w).await {
                break;
            }
        }
    }
    match writer {
        Some(w) => reader.report(w, warnings).await,
        None => Err(ApiError::Status {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "empty_file",
            message: "the file has no header row and no rows".into(),
        }),
    }
}

async fn import_ndjson(state: &AppState, body: Body) -> Result<ImportReport, ApiError> {
    let limit = state.import_max_bytes;
    let mut stream = body.into_data_stream();
    let writer = Writers::start(state.store.clone());
    let mut reader = Reader::new();
    let mut line: Vec<u8> = Vec::new();
    let mut index: i64 = 0;
    let mut seen_bytes: u64 = 0;
    let mut take_line = |line: &[u8], reader: &mut Reader| {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let row = index;
        index += 1;
        // Refused, not repaired: a name silently turned into U+FFFD is a wrong record.
        let Ok(text) = std::str::from_utf8(line) else {
            reader.take(Err(vec![RowError {
                row,
                field: None,
                message: "the line is not valid UTF-8".into(),
            }]));
            return;
        };
        let parsed = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => person_from_json(row, &v),
            Err(e) => Err(vec![RowError {
                row,
                field: None,
                message: format!("not a JSON object: {e}"),
            }]),
        };
        reader.take(parsed);
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: "body_read_failed",
            message: format!("reading the request body failed: {e}"),
        })?;
        seen_bytes += chunk.len() as u64;
        if seen_bytes > limit {
            let rows = reader.rows;
            reader.report(writer, Vec::new()).await?;
            return Err(too_large(limit, rows));
        }
        let mut rest: &[u8] = &chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&rest[..pos]);
            take_line(&line, &mut reader);
            line.clear();
            rest = &rest[pos + 1..];
        }
        line.extend_from_slice(rest);
        if line.len() > pushfleet_domain::csv_records::MAX_RECORD_BYTES {
            reader.report(writer, Vec::new()).await?;
            return Err(ApiError::BadRequest {
                code: "line_too_long",
                message: "a line is longer than 1 MiB; is this NDJSON?".into(),
            });
        }
        if !reader.flush_if_full(&writer).await {
            break;
        }
    }
    take_line(&line, &mut reader);
    reader.report(writer, Vec::new()).await
}

async fn import_json(state: &AppState, body: Body) -> Result<ImportReport, ApiError> {
    let bytes = axum::body::to_bytes(body, state.json_import_max_bytes)
        .await
        .map_err(|_| ApiError::Status {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!(
                "a JSON import is at most {} bytes; stream larger ones as text/csv or application/x-ndjson",
                state.json_import_max_bytes
            ),
        })?;
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest {
            code: "invalid_json",
            message: format!("the body is not JSON: {e}"),
        })?;
    let Some(people) = doc.get("people").and_then(|p| p.as_array()) else {
        return Err(ApiError::invalid("people", "required, a list of people"));
    };
    let writer = Writers::start(state.store.clone());
    let mut reader = Reader::new();
    for (i, p) in people.iter().enumerate() {
        reader.take(person_from_json(i as i64, p));
        if !reader.flush_if_full(&writer).await {
            break;
        }
    }
    reader.report(writer, Vec::new()).await
}
