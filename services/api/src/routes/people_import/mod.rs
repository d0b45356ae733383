//! `POST /v1/people/import`: bulk upsert of the directory from CSV (with a header row), NDJSON
//! or a JSON document. The body is first spooled to a temporary file (`spool`), so that no
//! database connection waits on a slow client; then CSV and NDJSON rows are parsed from it
//! in chunks and written in batches by writer tasks, so memory holds a couple of batches
//! whatever the file's size, and parsing overlaps the database's work. At most
//! `IMPORT_CONCURRENCY` imports run at once per replica; one more gets 503 with
//! `Retry-After`.

mod batches;
mod row_errors;
mod spool;

use batches::{Reader, Writers};

use super::AppState;
use crate::api_error::ErrorBody;
use crate::people_rows::{person_from_json, ColumnMap};
use crate::ApiError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use pushfleet_domain::csv_records::{CsvRecord, CsvRecords};
use pushfleet_store::RowError;
use serde::Serialize;
use spool::spool;
use utoipa::ToSchema;

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

/// Seconds a client is told to wait when every import slot of this replica is busy.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// The answer when `IMPORT_CONCURRENCY` imports already run here.
fn busy() -> Response {
    let mut response = ApiError::Status {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "too_many_imports",
        message: "every import slot of this replica is busy; try again shortly".into(),
    }
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(BUSY_RETRY_AFTER_SECS),
    );
    response
}

/// Imports people: `text/csv` with a header row, `application/x-ndjson` (one person per
/// line) or `application/json` (`{"people": [...]}`). A person is matched by external id,
/// else by e-mail, and updated; otherwise created. Only the columns given are written.
#[utoipa::path(post, path = "/v1/people/import",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 400, body = ErrorBody),
              (status = 408, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn import_people(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Taken before the body is read, and held to the end: the slots bound the temporary
    // files and, above all, the database connections (two writers each).
    let Ok(_slot) = state.import_slots.clone().try_acquire_owned() else {
        metrics::counter!("pushfleet_api_imports_refused_total").increment(1);
        return busy();
    };
    match import(&state, &headers, body).await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn import(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<ImportReport, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let limit = state.import_max_bytes;
    let report =
        match content_type.as_str() {
            "text/csv" | "application/csv" => {
                let body = spool(body, limit, "the import").await?;
                import_csv(state, body.into_stream().await?).await?
            }
            "application/x-ndjson" | "application/jsonl" => {
                let body = spool(body, limit, "the import").await?;
                import_ndjson(state, body.into_stream().await?).await?
            }
            "application/json" => {
                let max = state.json_import_max_bytes as u64;
                let what = "a JSON import (stream larger ones as text/csv or application/x-ndjson)";
                let body = spool(body, max, what).await?;
                import_json(state, &body.into_bytes().await?).await?
            }
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
    Ok(report)
}

async fn import_csv(
    state: &AppState,
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send,
) -> Result<ImportReport, ApiError> {
    let mut stream = std::pin::pin!(stream);
    let mut csv = CsvRecords::new();
    let mut records: Vec<CsvRecord> = Vec::new();
    let mut columns: Option<ColumnMap> = None;
    let mut warnings = Vec::new();
    let mut reader = Reader::new();
    let mut writer: Option<Writers> = None;
    let mut ended = false;
    while !ended {
        let fed = match stream.next().await {
            Some(Ok(chunk)) => csv.feed(&chunk, &mut records),
            Some(Err(e)) => {
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "reading the spooled import: {e}"
                )))
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

async fn import_ndjson(
    state: &AppState,
    stream: impl Stream<Item = std::io::Result<Bytes>> + Send,
) -> Result<ImportReport, ApiError> {
    let mut stream = std::pin::pin!(stream);
    let writer = Writers::start(state.store.clone());
    let mut reader = Reader::new();
    let mut line: Vec<u8> = Vec::new();
    let mut index: i64 = 0;
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
        let chunk = chunk
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the spooled import: {e}")))?;
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

async fn import_json(state: &AppState, bytes: &[u8]) -> Result<ImportReport, ApiError> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
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
