//! The audit log: append-only (the table's triggers refuse updates, deletes and truncation).

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<&'a str>,
    pub actor_role: Option<&'a str>,
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
    pub entity_id: Option<&'a str>,
    pub status: u16,
    /// `write` or `personal_data_read`.
    pub kind: &'a str,
    pub client_addr: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
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

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub route: Option<String>,
    pub entity_id: Option<String>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this id (the previous page's last).
    pub before: Option<i64>,
}

impl Store {
    pub async fn append_audit(&self, e: &NewAuditEntry<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (actor_id, actor_name, actor_role, method, route, path,
                                    entity_id, status, kind, client_addr)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.actor_id)
        .bind(e.actor_name)
        .bind(e.actor_role)
        .bind(e.method)
        .bind(e.route)
        .bind(e.path)
        .bind(e.entity_id)
        .bind(i16::try_from(e.status).unwrap_or(i16::MAX))
        .bind(e.kind)
        .bind(e.client_addr)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Entries newest first.
    pub async fn list_audit(
        &self,
        f: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor_id, actor_name, actor_role, method, route, path, entity_id,
                    status, kind, client_addr
             FROM audit_log
             WHERE ($1::uuid IS NULL OR actor_id = $1)
               AND ($2::text IS NULL OR route = $2)
               AND ($3::text IS NULL OR entity_id = $3)
               AND ($4::text IS NULL OR kind = $4)
               AND ($5::timestamptz IS NULL OR at >= $5)
               AND ($6::timestamptz IS NULL OR at < $6)
               AND ($7::bigint IS NULL OR id < $7)
             ORDER BY id DESC
             LIMIT $8",
        )
        .bind(f.actor_id)
        .bind(f.route.as_deref())
        .bind(f.entity_id.as_deref())
        .bind(f.kind.as_deref())
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
