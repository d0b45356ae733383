//! `Idempotency-Key` on the API's creates, as Stripe's API has it: a client that retries a
//! POST with the same key and the same request (after a timeout, a dropped connection) gets
//! the first answer, marked `Idempotent-Replayed: true`, and nothing is created twice. The
//! same key with another request is refused (422); a retry while the first is still running
//! waits for it (409 with `Retry-After`). Keys are remembered for 24 hours, per caller.
//!
//! Answers worth replaying are the ones that depend only on the request: 2xx and 4xx. A
//! server error or a "try later" (408, 409, 429, 503) is not kept, so the retry runs again.
//! A running request renews its claim on the key every third of `LEASE`, so a slow create
//! is never taken over by its retry; only a request that died stops renewing. If the api
//! dies between a create's commit and the answer's record, the lease runs out and a retry
//! runs the create again: that window is the one repeat this cannot close without the
//! create and the key in one transaction.

use crate::routes::AppState;
use crate::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pushfleet_store::{KeyClaim, StoredResponse};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest a key stays locked by a request that recorded no answer.
const LEASE: Duration = Duration::from_secs(60);
/// The longest answer kept for replay (creates answer a few KiB).
const MAX_STORED_RESPONSE: usize = 1024 * 1024;
/// Keys are at most this long (Stripe: 255).
const MAX_KEY_LEN: usize = 255;

/// Whether an operation takes `Idempotency-Key`: every POST of the admin API but the people
/// import (an upsert, idempotent by itself, whose bodies run to a gigabyte), the audience
/// preview (a read of personal data, which must not be kept), the API key create (its
/// answer holds the secret, which is shown once and stored only hashed) and the providers'
/// webhooks (they carry their own message ids).
pub fn applies_to(method: &Method, path: &str) -> bool {
    method == Method::POST
        && path.starts_with("/v1/")
        && path != "/v1/people/import"
        && path != "/v1/audiences/preview"
        && path != "/v1/api-keys"
        && !path.starts_with("/v1/webhooks/")
        && !path.starts_with("/v1/twilio/")
        && !path.starts_with("/v1/teams/")
}

/// The middleware: passes requests without a key (or on other operations) through.
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(raw) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    // Only an identified caller's creates: a key is scoped to its caller.
    let Some(principal) = request
        .extensions()
        .get::<crate::identity::Principal>()
        .map(|p| p.id)
    else {
        return next.run(request).await;
    };
    if !applies_to(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let key = match valid_key(raw) {
        Ok(k) => k.to_owned(),
        Err(e) => return e.into_response(),
    };
    // Keys are per caller: two callers' keys never meet.
    let scope = principal.to_string();
    let (parts, body) = request.into_parts();
    let limit = state
        .json_import_max_bytes
        .max(state.segment_upload_max_bytes);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => return unread_body(e).into_response(),
    };
    let fingerprint = fingerprint(&parts, &bytes);
    let claim = state
        .store
        .claim_idempotency_key(&scope, &key, &fingerprint, LEASE)
        .await;
    match claim {
        Err(e) => ApiError::from(e).into_response(),
        Ok(KeyClaim::Mismatch) => ApiError::Status {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used for a different request; use a new key".into(),
        }
        .into_response(),
        Ok(KeyClaim::InProgress) => {
            let mut r = ApiError::Status {
                status: StatusCode::CONFLICT,
                code: "idempotency_key_in_use",
                message: "a request with this Idempotency-Key is still running; retry shortly"
                    .into(),
            }
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
            r
        }
        Ok(KeyClaim::Replay(stored)) => replay(stored),
        Ok(KeyClaim::Claimed(claim)) => {
            let request = Request::from_parts(parts, Body::from(bytes));
            let held = Claim {
                scope: &scope,
                key: &key,
                claim,
            };
            let response = held.run_renewing(&state, next.run(request)).await;
            record(&state, &held, response).await
        }
    }
}

fn valid_key(raw: &HeaderValue) -> Result<&str, ApiError> {
    let bad = || ApiError::BadRequest {
        code: "invalid_idempotency_key",
        message: format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
    };
    let key = raw.to_str().map_err(|_| bad())?;
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(key)
}

fn fingerprint(parts: &axum::http::request::Parts, body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update([0]);
    h.update(parts.uri.to_string());
    h.update([0]);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        h.update(ct.as_bytes());
    }
    h.update([0]);
    h.update(body);
    h.finalize().to_vec()
}

fn unread_body(e: axum::Error) -> ApiError {
    let inner = e.into_inner();
    if inner.is::<tower_http::timeout::TimeoutError>() {
        return ApiError::Status {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "body_timeout",
            message: "the request body stalled longer than the server's body read timeout".into(),
        };
    }
    ApiError::Status {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("the request body could not be read whole: {inner}"),
    }
}

/// A key this request holds.
struct Claim<'a> {
    scope: &'a str,
    key: &'a str,
    claim: uuid::Uuid,
}

impl Claim<'_> {
    /// Runs the request, renewing the claim while it runs.
    async fn run_renewing(
        &self,
        state: &AppState,
        request: impl std::future::Future<Output = Response>,
    ) -> Response {
        tokio::pin!(request);
        let mut renew =
            tokio::time::interval_at(tokio::time::Instant::now() + LEASE / 3, LEASE / 3);
        loop {
            tokio::select! {
                response = &mut request => return response,
                _ = renew.tick() => {
                    match state.store.renew_idempotency_key(self.scope, self.key, self.claim, LEASE).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("an idempotency key's claim was lost while its request ran"),
                        Err(e) => tracing::warn!(error = %e, "renewing an idempotency key's claim failed"),
                    }
                }
            }
        }
    }
}

/// Keeps the answer of a claimed key (or releases the key), and returns it.
async fn record(state: &AppState, held: &Claim<'_>, response: Response) -> Response {
    let (scope, key, claim) = (held.scope, held.key, held.claim);
    let status = response.status();
    let keep = status.is_success()
        || (status.is_client_error()
            && ![
                StatusCode::REQUEST_TIMEOUT,
                StatusCode::CONFLICT,
                StatusCode::TOO_MANY_REQUESTS,
            ]
            .contains(&status));
    if !keep {
        if let Err(e) = state.store.release_idempotency_key(scope, key, claim).await {
            tracing::warn!(error = %e, "releasing an idempotency key failed; it expires with its lease");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED_RESPONSE).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "an answer too large to keep for an idempotency key");
            let _ = state.store.release_idempotency_key(scope, key, claim).await;
            return ApiError::Internal(anyhow::anyhow!("answer too large to keep")).into_response();
        }
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: bytes.to_vec(),
    };
    match state
        .store
        .complete_idempotency_key(scope, key, claim, &stored)
        .await
    {
        Ok(true) => {}
        // Renewed all along, so only a stall longer than the lease (a paused process) gets
        // here: the key is another request's now.
        Ok(false) => tracing::error!("an idempotent answer came after its claim was lost"),
        // The create happened; the answer goes to this client all the same. A retry within
        // the lease gets 409, after it runs again (the documented window).
        Err(e) => tracing::error!(error = %e, "recording an idempotent answer failed"),
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    if let Some(ct) = stored
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}
