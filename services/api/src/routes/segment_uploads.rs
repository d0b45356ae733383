//! CSV uploads into a segment: stored and answered at once (202), processed by the
//! evaluator's import worker; status, counts and a per-row error report.

use super::AppState;
use crate::api_error::ErrorBody;
use crate::csv_response::{csv_download, line, PageFn};
use crate::extract::{ApiBytes, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use pushfleet_domain::csv_records::{CsvRecords, NotCsv};
use pushfleet_domain::Text;
use pushfleet_queue::Topology;
use pushfleet_store::{Labelled, SegmentUpload};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// An upload and what processing it did so far.
#[derive(Serialize, ToSchema)]
pub struct UploadView {
    pub id: Uuid,
    pub segment_id: Uuid,
    pub filename: Option<String>,
    /// processing, completed, completed_with_errors, or failed (the file was unreadable).
    #[schema(value_type = pushfleet_store::UploadStatus)]
    pub status: String,
    /// Rows read (header and blank lines not counted).
    pub total: i32,
    /// Rows whose person is a member now.
    pub added: i32,
    /// Rows that added nobody; see `errors_url`.
    pub failed: i32,
    /// About the file as a whole, e.g. ignored columns.
    pub warnings: Vec<String>,
    /// Why a `failed` upload could not be read.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The per-row error report (CSV: row, value, reason).
    pub errors_url: String,
}

impl From<SegmentUpload> for UploadView {
    fn from(u: SegmentUpload) -> Self {
        Self {
            errors_url: format!("/v1/segments/{}/uploads/{}/errors.csv", u.segment_id, u.id),
            id: u.id,
            segment_id: u.segment_id,
            filename: u.filename,
            status: u.status,
            total: u.total,
            added: u.added,
            failed: u.failed,
            warnings: u.warnings,
            error: u.error,
            created_at: u.created_at,
            finished_at: u.finished_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, as the admin picked it (shown back in the status).
    #[param(value_type = Option<String>)]
    pub filename: Option<Text>,
}

/// Content types a CSV file arrives with (browsers on Windows call it an Excel file).
const CSV_TYPES: [&str; 5] = [
    "text/csv",
    "application/csv",
    "text/plain",
    "application/vnd.ms-excel",
    "application/octet-stream",
];

/// Uploads a CSV of e-mails and/or external ids (the file is the request body). Answers at
/// once with the upload in `processing`; a worker adds the members.
#[utoipa::path(post, path = "/v1/segments/{id}/uploads", params(("id" = Uuid, Path, description = "The resource's id"), UploadQuery),
    request_body(content = String, content_type = "text/csv",
                 description = "One column of e-mails and/or external ids; header optional"),
    responses((status = 202, body = UploadView),
              (status = 400, body = ErrorBody, description = "empty file, or not a CSV text file"),
              (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody, description = "larger than SEGMENT_UPLOAD_MAX_BYTES"),
              (status = 415, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn upload_csv(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<UploadView>), ApiError> {
    principal
        .visible(&state.store, Labelled::Segment, id)
        .await?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest {
        code: "invalid_query",
        message: e.body_text(),
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !CSV_TYPES.iter().any(|t| content_type.starts_with(t)) {
        return Err(ApiError::Status {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "send the CSV file itself as the body, with Content-Type: text/csv".into(),
        });
    }
    check_csv_text(&body)?;
    let filename = q
        .filename
        .map(|f| f.trim().chars().take(255).collect::<String>())
        .filter(|f| !f.is_empty());
    let upload = state
        .store
        .insert_segment_upload(id, filename.as_deref(), &body, Topology::SEGMENT_IMPORT_KEY)
        .await?;
    tracing::info!(upload_id = %upload.id, bytes = body.len(), "segment upload stored");
    metrics::counter!("pushfleet_segment_uploads_total").increment(1);
    Ok((StatusCode::ACCEPTED, Json(upload.into())))
}

/// What is refused before storing: nothing to read, or not CSV text at all (binary, not
/// UTF-8, a runaway record). The file is read through once without keeping the records;
/// the worker reads it again to add the members.
fn check_csv_text(body: &[u8]) -> Result<(), ApiError> {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::BadRequest {
            code: "empty_file",
            message: "the file is empty: nothing to add".into(),
        });
    }
    let mut reader = CsvRecords::new();
    let mut records = Vec::new();
    let not_csv = |e: NotCsv| ApiError::BadRequest {
        code: "not_csv",
        message: e.to_string(),
    };
    for chunk in body.chunks(64 * 1024) {
        reader.feed(chunk, &mut records).map_err(not_csv)?;
        records.clear();
    }
    reader.finish(&mut records).map_err(not_csv)?;
    Ok(())
}

#[utoipa::path(get, path = "/v1/segments/{id}/uploads/{upload_id}", params(("id" = Uuid, Path, description = "The resource's id"), ("upload_id" = Uuid, Path, description = "The upload's id")),
    responses((status = 200, body = UploadView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_upload(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((id, upload_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<UploadView>, ApiError> {
    principal
        .visible(&state.store, Labelled::Segment, id)
        .await?;
    Ok(Json(
        state.store.get_segment_upload(id, upload_id).await?.into(),
    ))
}

/// The rows that added nobody, as CSV: row (the file's line), value, reason.
#[utoipa::path(get, path = "/v1/segments/{id}/uploads/{upload_id}/errors.csv", params(("id" = Uuid, Path, description = "The resource's id"), ("upload_id" = Uuid, Path, description = "The upload's id")),
    responses((status = 200, content_type = "text/csv", description = "row,value,reason"),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn upload_errors_csv(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((id, upload_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    principal
        .visible(&state.store, Labelled::Segment, id)
        .await?;
    state.store.get_segment_upload(id, upload_id).await?;
    let store = state.store.clone();
    let next_page: PageFn<i64> = Box::new(move |after| {
        let store = store.clone();
        async move {
            let page = store.upload_errors_page(upload_id, after, 1000).await?;
            let Some(last) = page.last().map(|e| e.row) else {
                return Ok(None);
            };
            let chunk: String = page
                .iter()
                .map(|e| line(&[&e.row.to_string(), &e.value, e.problem.as_str()]))
                .collect();
            Ok(Some((chunk, last)))
        }
        .boxed()
    });
    Ok(csv_download(
        &format!("upload-{upload_id}-errors.csv"),
        &["row", "value", "reason"],
        next_page,
    ))
}

#[cfg(test)]
mod tests {
    use super::check_csv_text;

    #[test]
    fn refuses_empty_binary_and_non_utf8_files() {
        assert!(check_csv_text(b"a@x.io\r\n").is_ok());
        assert!(check_csv_text(b"\xEF\xBB\xBFa@x.io").is_ok());
        assert!(check_csv_text(b"").is_err());
        assert!(check_csv_text(b"\xEF\xBB\xBF\r\n  \n").is_err());
        assert!(check_csv_text(b"a\n\x89PNG\0\0").is_err());
        assert!(check_csv_text(b"caf\xe9\n").is_err());
    }
}
