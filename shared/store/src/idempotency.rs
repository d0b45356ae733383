//! Idempotency keys: which request a key was first used for, and its answer once there is
//! one. The api's middleware (`services/api/src/idempotency.rs`) is the only user.

use crate::{Store, StoreError};
use std::time::Duration;
use uuid::Uuid;

/// How long a key is remembered.
pub const IDEMPOTENCY_KEY_TTL_HOURS: i64 = 24;

/// A stored answer, replayed to a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What a request carrying a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// First use (or the first holder died, or the key expired): run the request, and
    /// record its answer with this claim.
    Claimed(Uuid),
    /// The same request is running now.
    InProgress,
    /// The same request already ran: here is its answer.
    Replay(StoredResponse),
    /// The key was used for another request.
    Mismatch,
}

/// A key's row: fingerprint, and the answer if there is one.
type KeyRow = (Vec<u8>, Option<i16>, Option<String>, Option<Vec<u8>>);

impl Store {
    /// Claims `key` for a request with `fingerprint`, for at most `lease` if no answer is
    /// recorded meanwhile.
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &[u8],
        lease: Duration,
    ) -> Result<KeyClaim, StoreError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let claim = Uuid::new_v4();
        let claimed: Option<(i32,)> = sqlx::query_as(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, locked_until, claim)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint / 1000.0), $6)
             ON CONFLICT (scope, key) DO UPDATE
                 SET fingerprint = EXCLUDED.fingerprint, locked_until = EXCLUDED.locked_until,
                     claim = EXCLUDED.claim, created_at = now(), response_status = NULL,
                     response_content_type = NULL, response_body = NULL
                 WHERE idempotency_keys.created_at
                           < now() - make_interval(hours => $5::int)
                    OR (idempotency_keys.response_status IS NULL
                        AND idempotency_keys.locked_until < now()
                        AND idempotency_keys.fingerprint = EXCLUDED.fingerprint)
             RETURNING 1",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(lease_ms)
        .bind(IDEMPOTENCY_KEY_TTL_HOURS as i32)
        .bind(claim)
        .fetch_optional(self.pool())
        .await?;
        if claimed.is_some() {
            return Ok(KeyClaim::Claimed(claim));
        }
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT fingerprint, response_status, response_content_type, response_body
             FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            // Deleted in between (expired): a retry claims it.
            None => KeyClaim::InProgress,
            Some((stored, _, _, _)) if stored != fingerprint => KeyClaim::Mismatch,
            Some((_, Some(status), content_type, body)) => KeyClaim::Replay(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                content_type,
                body: body.unwrap_or_default(),
            }),
            Some(_) => KeyClaim::InProgress,
        })
    }

    /// Keeps a running request's claim for another `lease`; false when the claim is lost
    /// (the key expired and was claimed again).
    pub async fn renew_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        claim: Uuid,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let renewed = sqlx::query(
            "UPDATE idempotency_keys
             SET locked_until = now() + make_interval(secs => $4::bigint / 1000.0)
             WHERE scope = $1 AND key = $2 AND claim = $3 AND response_status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(claim)
        .bind(lease_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// Records the answer of a claimed key, if the claim still holds it; false otherwise.
    pub async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        claim: Uuid,
        response: &StoredResponse,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE idempotency_keys
             SET response_status = $4, response_content_type = $5, response_body = $6
             WHERE scope = $1 AND key = $2 AND claim = $3 AND response_status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(claim)
        .bind(i16::try_from(response.status).unwrap_or(500))
        .bind(response.content_type.as_deref())
        .bind(&response.body)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Forgets a claimed key whose request did not finish with an answer worth replaying (a
    /// server error, a refusal to try now), so that a retry runs it again.
    pub async fn release_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        claim: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE scope = $1 AND key = $2 AND claim = $3 AND response_status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(claim)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes keys past their lifetime; returns how many.
    pub async fn delete_expired_idempotency_keys(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE created_at < now() - make_interval(hours => $1::int)",
        )
        .bind(IDEMPOTENCY_KEY_TTL_HOURS as i32)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
