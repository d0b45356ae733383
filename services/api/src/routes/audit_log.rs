//! `GET /v1/audit-log`: the audit trail, newest first, with filters (admins only).

use super::AppState;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use pushfleet_domain::{Text, Timestamp};
use pushfleet_store::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this caller's acts (an API key's id).
    pub actor_id: Option<Uuid>,
    /// Only this operation, as routed, e.g. `/v1/campaigns/{id}`.
    #[param(value_type = Option<String>)]
    pub route: Option<Text>,
    /// Only acts on this entity (a route's id, or what a create made).
    #[param(value_type = Option<String>)]
    pub entity_id: Option<Text>,
    /// `write` or `personal_data_read`.
    #[param(value_type = Option<String>)]
    pub kind: Option<Text>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<Timestamp>,
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<Timestamp>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub actor_role: Option<String>,
    pub method: String,
    pub route: String,
    pub path: String,
    pub entity_id: Option<String>,
    pub status: i16,
    pub kind: String,
    pub client_addr: Option<String>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            actor_name: e.actor_name,
            actor_role: e.actor_role,
            method: e.method,
            route: e.route,
            path: e.path,
            entity_id: e.entity_id,
            status: e.status,
            kind: e.kind,
            client_addr: e.client_addr,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

#[utoipa::path(get, path = "/v1/audit-log", params(AuditQuery),
    responses((status = 200, body = AuditPage)))]
#[tracing::instrument(skip_all)]
pub async fn list_audit_log(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let q = super::query(query)?;
    let limit = super::page_limit(q.limit, 100)?;
    if let Some(kind) = &q.kind {
        if kind.as_str() != "write" && kind.as_str() != "personal_data_read" {
            return Err(ApiError::invalid("kind", "write or personal_data_read"));
        }
    }
    let filter = AuditFilter {
        actor_id: q.actor_id,
        route: q.route.map(Text::into_string),
        entity_id: q.entity_id.map(Text::into_string),
        kind: q.kind.map(Text::into_string),
        since: q.since.map(Timestamp::get),
        until: q.until.map(Timestamp::get),
        before: q.before,
    };
    let entries = state.store.list_audit(&filter, limit + 1).await?;
    let (entries, next_before) = super::keyset_page(entries, limit, AuditEntryView::from, |e| e.id);
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
