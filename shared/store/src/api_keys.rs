//! API keys: automation's credentials. A key is shown once when created; only its SHA-256 is
//! stored (a key is 190 random bits, so a fast hash is as good as a slow one and lets every
//! request be checked with one indexed lookup), with a display prefix, a role, an optional
//! expiry, the time it was revoked and the time it was last used.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A stored key, without its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key (`pf_AbCdEf`), to recognise it.
    pub prefix: String,
    pub role: String,
    /// The labels the key is limited to; `None`: not limited.
    pub labels: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What a new key is.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub role: &'a str,
    pub labels: Option<&'a [String]>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
}

const COLUMNS: &str =
    "id, name, prefix, role, labels, created_at, expires_at, revoked_at, last_used_at";

impl Store {
    pub async fn create_api_key(&self, key: &NewApiKey<'_>) -> Result<ApiKey, StoreError> {
        Ok(sqlx::query_as(&format!(
            "INSERT INTO api_keys (name, prefix, secret_hash, role, expires_at, created_by, labels)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(key.name)
        .bind(key.prefix)
        .bind(key.secret_hash)
        .bind(key.role)
        .bind(key.expires_at)
        .bind(key.created_by)
        .bind(key.labels)
        .fetch_one(self.pool())
        .await?)
    }

    /// The live key (not revoked, not expired) with this hash; marks it used (at most once a
    /// minute, so that a busy key does not write on every request).
    pub async fn live_api_key(&self, secret_hash: &[u8]) -> Result<Option<ApiKey>, StoreError> {
        let key: Option<ApiKey> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM api_keys
             WHERE secret_hash = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > now())"
        ))
        .bind(secret_hash)
        .fetch_optional(self.pool())
        .await?;
        if let Some(k) = &key {
            if k.last_used_at
                .is_none_or(|t| t < Utc::now() - chrono::Duration::minutes(1))
            {
                sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
                    .bind(k.id)
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(key)
    }

    /// Keys newest first (revoked and expired ones included: an audit trail), `limit` of
    /// them after the key `before` of the previous page.
    pub async fn list_api_keys(
        &self,
        limit: i64,
        before: Option<Uuid>,
    ) -> Result<Vec<ApiKey>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM api_keys
             WHERE $2::uuid IS NULL
                OR (created_at, id) < (SELECT created_at, id FROM api_keys WHERE id = $2)
             ORDER BY created_at DESC, id DESC
             LIMIT $1"
        ))
        .bind(limit)
        .bind(before)
        .fetch_all(self.pool())
        .await?)
    }

    /// Revokes a key at once; revoking a revoked key keeps its first revocation time.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<ApiKey, StoreError> {
        sqlx::query_as(&format!(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("api key"))
    }
}
