//! Segments (seed 004): create, list, add members by pasting e-mails, download the members.

use super::segment_uploads::UploadView;
use super::{required_text, AppState};
use crate::api_error::ErrorBody;
use crate::csv_response::{csv_download, line, PageFn};
use crate::extract::{ApiBytes, ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use pushfleet_domain::bot_reply_text::{segment_reply, SegmentAction};
use pushfleet_domain::segment_rows::{self, MemberRow, SegmentRowReader};
use pushfleet_domain::{PermissionLabel, Text};
use pushfleet_store::{
    BatchReport, Labelled, MemberSource, Segment, SegmentChange, SegmentReplies,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashSet;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Rows per paste; larger lists go through an upload.
pub const MAX_PASTED_ROWS: usize = 10_000;
/// Rows resolved per query.
const BATCH: usize = 1000;

/// The longest reply text the bot sends after a segment button.
pub const MAX_REPLY_CHARS: usize = 2000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegment {
    pub name: Text,
    /// What the bot answers after the segment's Opt-in button; `{{segment}}` is replaced by
    /// the segment's name. Absent or null: a default that names the segment and says how to
    /// leave.
    #[serde(default)]
    pub opt_in_reply: Option<Text>,
    /// What the bot answers after the Opt-out button; absent or null: a default that names
    /// the segment and says how to join again.
    #[serde(default)]
    pub opt_out_reply: Option<Text>,
    /// Permission labels (seed 003): who, of the operators limited to labels, may see and
    /// change it. A limited caller gives only labels they hold, and gets theirs when absent.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// A change to a segment: fields left out stay as they are; a reply set to null goes back
/// to the default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSegment {
    #[serde(default)]
    pub name: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub opt_in_reply: Option<Option<Text>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub opt_out_reply: Option<Option<Text>>,
    /// New permission labels; a limited caller gives only labels they hold.
    #[serde(default)]
    pub labels: Option<Vec<PermissionLabel>>,
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`, the default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Text>>, D::Error> {
    Option::<Text>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    pub id: Uuid,
    pub name: String,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
    /// What the bot answers after the Opt-in button (the segment's own text or the default).
    pub opt_in_reply: String,
    /// What the bot answers after the Opt-out button.
    pub opt_out_reply: String,
    /// Whether the replies are the segment's own texts (false: the defaults).
    pub custom_opt_in_reply: bool,
    pub custom_opt_out_reply: bool,
    /// The most recent CSV upload, if any.
    pub latest_upload: Option<UploadView>,
    pub labels: Vec<String>,
}

impl SegmentView {
    fn new(s: Segment, latest_upload: Option<UploadView>) -> Self {
        Self {
            opt_in_reply: segment_reply(SegmentAction::OptIn, &s.name, s.opt_in_reply.as_deref()),
            opt_out_reply: segment_reply(
                SegmentAction::OptOut,
                &s.name,
                s.opt_out_reply.as_deref(),
            ),
            custom_opt_in_reply: s.opt_in_reply.is_some(),
            custom_opt_out_reply: s.opt_out_reply.is_some(),
            id: s.id,
            name: s.name,
            member_count: s.member_count,
            created_at: s.created_at,
            latest_upload,
            labels: s.labels,
        }
    }
}

/// A reply text: trimmed, not empty (null asks for the default), not too long.
fn reply_text(
    errors: &mut Vec<crate::api_error::FieldError>,
    field: &str,
    value: Option<&str>,
) -> Option<String> {
    let v = value?.trim();
    let problem = if v.is_empty() {
        Some("must not be empty; use null for the default reply".to_owned())
    } else if v.chars().count() > MAX_REPLY_CHARS {
        Some(format!("must be at most {MAX_REPLY_CHARS} characters"))
    } else {
        None
    };
    if let Some(message) = problem {
        errors.push(crate::api_error::FieldError {
            field: field.to_owned(),
            message,
        });
    }
    Some(v.to_owned())
}

#[derive(Serialize, ToSchema)]
pub struct SegmentPage {
    pub segments: Vec<SegmentView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentPageQuery {
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

/// Members to add as JSON, when not pasted as text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    #[serde(default)]
    pub emails: Vec<Text>,
    #[serde(default)]
    pub external_ids: Vec<Text>,
}

/// One row that added nobody.
#[derive(Serialize, ToSchema, Clone)]
pub struct RowErrorView {
    /// Line of the pasted text, or position in the JSON lists (e-mails first), from 1.
    pub row: i64,
    pub value: String,
    /// unknown_person, invalid_email, duplicate_row, opted_out, deactivated or empty_row.
    pub reason: String,
}

/// What adding members did, row by row.
#[derive(Serialize, ToSchema)]
pub struct AddMembersReport {
    pub total: u64,
    /// Rows whose person is a member now (including people who already were).
    pub added: u64,
    pub failed: u64,
    pub errors: Vec<RowErrorView>,
    pub member_count: i64,
}

#[utoipa::path(post, path = "/v1/segments", request_body = CreateSegment,
    responses((status = 201, body = SegmentView), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_segment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateSegment>,
) -> Result<(StatusCode, Json<SegmentView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    let replies = SegmentReplies {
        opt_in: reply_text(&mut errors, "opt_in_reply", body.opt_in_reply.as_deref()),
        opt_out: reply_text(&mut errors, "opt_out_reply", body.opt_out_reply.as_deref()),
    };
    ApiError::check(errors)?;
    let segment = state.store.create_segment(&name, &replies, &labels).await?;
    Ok((StatusCode::CREATED, Json(SegmentView::new(segment, None))))
}

/// Renames a segment or changes the bot's replies after its buttons.
#[utoipa::path(patch, path = "/v1/segments/{id}", params(("id" = Uuid, Path, description = "The resource's id")), request_body = UpdateSegment,
    responses((status = 200, body = SegmentView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal, body))]
pub async fn update_segment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateSegment>,
) -> Result<Json<SegmentView>, ApiError> {
    principal
        .visible(&state.store, Labelled::Segment, id)
        .await?;
    let labels = body
        .labels
        .map(|l| principal.labels_for(Some(l)))
        .transpose()?;
    let mut errors = Vec::new();
    let change = SegmentChange {
        name: body
            .name
            .as_deref()
            .map(|n| required_text(&mut errors, "name".into(), n, 200)),
        opt_in_reply: body
            .opt_in_reply
            .map(|r| reply_text(&mut errors, "opt_in_reply", r.as_deref())),
        opt_out_reply: body
            .opt_out_reply
            .map(|r| reply_text(&mut errors, "opt_out_reply", r.as_deref())),
        labels,
    };
    ApiError::check(errors)?;
    let segment = state.store.update_segment(id, &change).await?;
    let latest = state.store.latest_segment_upload(id).await?;
    Ok(Json(SegmentView::new(
        segment,
        latest.map(UploadView::from),
    )))
}

#[utoipa::path(get, path = "/v1/segments", params(SegmentPageQuery),
    responses((status = 200, body = SegmentPage), (status = 400, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn list_segments(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<SegmentPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SegmentPage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 100)?;
    let segments = state
        .store
        .list_segments(limit, q.before, principal.list_filter().as_deref())
        .await?;
    let next_before = (segments.len() as i64 == limit)
        .then(|| segments.last().map(|s| s.id))
        .flatten();
    let mut views = Vec::with_capacity(segments.len());
    for s in segments {
        let latest = state.store.latest_segment_upload(s.id).await?;
        views.push(SegmentView::new(s, latest.map(UploadView::from)));
    }
    Ok(Json(SegmentPage {
        segments: views,
        next_before,
    }))
}

#[utoipa::path(get, path = "/v1/segments/{id}", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, body = SegmentView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_segment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SegmentView>, ApiError> {
    let segment = state.store.get_segment(id).await?;
    if !principal.sees(&segment.labels) {
        return Err(ApiError::NotFound("segment"));
    }
    let latest = state.store.latest_segment_upload(id).await?;
    Ok(Json(SegmentView::new(
        segment,
        latest.map(UploadView::from),
    )))
}

/// Adds members: e-mails pasted one per line (`text/plain`), or JSON lists of e-mails and
/// external ids. Answers with a report per row; valid rows are added whatever the others.
#[utoipa::path(post, path = "/v1/segments/{id}/members", params(("id" = Uuid, Path, description = "The resource's id")),
    request_body(description = "JSON lists, or `text/plain`: one e-mail or external id per line",
                 content((AddMembers = "application/json"), (String = "text/plain"))),
    responses((status = 200, body = AddMembersReport), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn add_members(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Json<AddMembersReport>, ApiError> {
    principal
        .visible(&state.store, Labelled::Segment, id)
        .await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let rows = if content_type.starts_with("application/json") {
        let body: AddMembers = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            code: "invalid_json",
            message: format!("invalid JSON body: {e}"),
        })?;
        json_rows(body)
    } else if content_type.starts_with("text/plain") {
        let text = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest {
            code: "not_text",
            message: "the pasted list is not UTF-8 text".into(),
        })?;
        pasted_rows(text)
    } else {
        return Err(ApiError::Status {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "send text/plain (one e-mail per line) or application/json".into(),
        });
    };
    if rows.len() > MAX_PASTED_ROWS {
        return Err(ApiError::invalid(
            "rows",
            format!("at most {MAX_PASTED_ROWS} rows per request; upload a CSV for more"),
        ));
    }
    if rows.is_empty() {
        return Err(ApiError::invalid("rows", "no e-mail or external id given"));
    }
    let mut seen = HashSet::new();
    let mut total = BatchReport::default();
    for batch in rows.chunks(BATCH) {
        let report = state
            .store
            .add_segment_rows(id, batch, MemberSource::Paste, &mut seen)
            .await?;
        total.added += report.added;
        total.errors.extend(report.errors);
    }
    let member_count = state.store.get_segment(id).await?.member_count;
    tracing::info!(
        rows = rows.len(),
        added = total.added,
        failed = total.errors.len(),
        "members added"
    );
    Ok(Json(AddMembersReport {
        total: rows.len() as u64,
        added: total.added,
        failed: total.errors.len() as u64,
        errors: total
            .errors
            .into_iter()
            .map(|e| RowErrorView {
                row: e.row,
                value: e.value,
                reason: e.problem.as_str().to_owned(),
            })
            .collect(),
        member_count,
    }))
}

/// One value per line; blank lines skipped; row numbers are line numbers.
fn pasted_rows(text: &str) -> Vec<MemberRow> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = SegmentRowReader::new();
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| reader.read(i as i64 + 1, &[l.to_owned()]))
        .collect()
}

fn json_rows(body: AddMembers) -> Vec<MemberRow> {
    let mut seen = HashSet::new();
    let emails = body
        .emails
        .into_iter()
        .map(|v| (segment_rows::parse_email(&v), v));
    let ids = body
        .external_ids
        .into_iter()
        .map(|v| (segment_rows::parse_external_id(&v), v));
    emails
        .chain(ids)
        .enumerate()
        .map(|(i, (key, value))| {
            let key = key.and_then(|k| {
                if seen.insert(k.clone()) {
                    Ok(k)
                } else {
                    Err(segment_rows::RowProblem::DuplicateRow)
                }
            });
            MemberRow {
                row: i as i64 + 1,
                value: value.into_string(),
                key,
            }
        })
        .collect()
}

/// The members as CSV: name, e-mail.
#[utoipa::path(get, path = "/v1/segments/{id}/members.csv", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, content_type = "text/csv", description = "name,email per member"),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn members_csv(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    principal
        .visible(&state.store, Labelled::Segment, id)
        .await?;
    let store = state.store.clone();
    let next_page: PageFn<Uuid> = Box::new(move |after| {
        let store = store.clone();
        async move {
            let page = store.segment_members_page(id, after, 1000).await?;
            let Some(last) = page.last().map(|m| m.id) else {
                return Ok(None);
            };
            let chunk: String = page
                .iter()
                .map(|m| {
                    let name = format!("{} {}", m.first_name, m.last_name);
                    line(&[name.trim(), m.email.as_deref().unwrap_or_default()])
                })
                .collect();
            Ok(Some((chunk, last)))
        }
        .boxed()
    });
    Ok(csv_download(
        &format!("segment-{id}-members.csv"),
        &["name", "email"],
        next_page,
    ))
}
