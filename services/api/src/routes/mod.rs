pub mod api_keys;
pub mod audiences;
pub mod audit_log;
pub mod campaigns;
pub mod conversation_templates;
pub mod dead_letters;
pub mod operators;
pub mod people;
pub mod people_import;
pub mod pushes;
pub mod segment_uploads;
pub mod segments;
pub mod surveys;
pub mod teams_messages;
pub mod templates;
pub mod tracking;
pub mod twilio_inbound;
pub mod twilio_status;
pub mod unsubscribe;

use crate::bot_auth::BotTokenVerifier;
use pushfleet_config::Secret;
use pushfleet_store::Store;
use std::sync::Arc;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Audited requests, each in a task of its own: shutdown waits for them.
    pub audited: tokio_util::task::TaskTracker,
    pub twilio: Arc<twilio_status::TwilioWebhook>,
    /// Verifies the e-mail unsubscribe tokens.
    pub unsubscribe_secret: Secret<String>,
    /// Tracked links and open pixels: the key, the links, the event recorder.
    pub tracking: Arc<crate::tracking::Tracking>,
    /// Verifies the Bot Framework's tokens on the bot's messaging endpoint.
    pub bot_auth: Arc<BotTokenVerifier>,
    /// Checks operators' OIDC tokens; `None` when no identity provider is configured.
    pub oidc: Option<Arc<crate::identity::OidcVerifier>>,
    /// Largest streamed people import (CSV, NDJSON).
    pub import_max_bytes: u64,
    /// Largest people import sent as one JSON document.
    pub json_import_max_bytes: usize,
    /// Largest segment CSV upload (`SEGMENT_UPLOAD_MAX_BYTES`).
    pub segment_upload_max_bytes: usize,
    /// `IMPORT_CONCURRENCY` permits: imports running at once on this replica.
    pub import_slots: Arc<tokio::sync::Semaphore>,
}

/// A query string's parameters, or a JSON 400 naming what does not parse.
pub(crate) fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, crate::ApiError> {
    q.map(|axum::extract::Query(q)| q)
        .map_err(|e| crate::ApiError::BadRequest {
            code: "invalid_query",
            message: e.body_text(),
        })
}

/// One keyset page from rows fetched with `limit + 1` (the extra row says a next page
/// exists): the first `limit` rows as views, and the next page's cursor, the last view's
/// key, when there is one.
pub(crate) fn keyset_page<R, V, K>(
    rows: Vec<R>,
    limit: i64,
    view: impl FnMut(R) -> V,
    key: impl Fn(&V) -> K,
) -> (Vec<V>, Option<K>) {
    let more = rows.len() as i64 > limit;
    let views: Vec<V> = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(view)
        .collect();
    let next = if more { views.last().map(key) } else { None };
    (views, next)
}

/// A list's page size: `limit` or `default`, 1 to 500.
pub(crate) fn page_limit(limit: Option<i64>, default: i64) -> Result<i64, crate::ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=500).contains(&limit) {
        return Err(crate::ApiError::invalid(
            "limit",
            "must be between 1 and 500",
        ));
    }
    Ok(limit)
}

/// Trims a required text field; records an error when it is empty or too long.
pub(crate) fn required_text(
    errors: &mut Vec<crate::api_error::FieldError>,
    field: String,
    value: &str,
    max_len: usize,
) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(crate::api_error::FieldError {
            field,
            message: "must not be empty".into(),
        });
    } else if v.chars().count() > max_len {
        errors.push(crate::api_error::FieldError {
            field,
            message: format!("must be at most {max_len} characters"),
        });
    }
    v.to_owned()
}
