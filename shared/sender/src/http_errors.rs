//! How the HTTP providers' answers map onto retry decisions. Shared by the Teams and SMS
//! senders (and any HTTP mail API).

use crate::ProviderError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use std::time::Duration;

/// The longest `Retry-After` we honour: a provider asking for more is capped, not obeyed
/// for days (and absurd values cannot overflow time arithmetic).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds (the form these providers use); an HTTP date is ignored.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// Throttling, precondition races and server-side trouble are worth a retry; other 4xx are
/// the request's fault and will fail the same way again.
pub fn classify_status(status: StatusCode, headers: &HeaderMap, detail: String) -> ProviderError {
    let reason = format!("HTTP {}: {detail}", status.as_u16());
    let transient = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::PRECONDITION_FAILED
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error();
    if transient {
        ProviderError::Transient {
            reason,
            retry_after: retry_after(headers),
        }
    } else {
        ProviderError::Permanent { reason }
    }
}

/// A network-level failure (refused, reset, timed out) never reached a decision: retry.
pub fn classify_transport(e: &reqwest::Error) -> ProviderError {
    ProviderError::transient(format!("request failed: {e}"))
}

/// The client every HTTP provider uses: pooled keep-alive connections, bounded timeouts.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(256)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn throttling_is_transient_with_retry_after() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        match classify_status(StatusCode::TOO_MANY_REQUESTS, &h, "slow down".into()) {
            ProviderError::Transient { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("expected transient, got {other:?}"),
        }
    }

    #[test]
    fn an_absurd_retry_after_is_capped() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("1e300"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn client_errors_are_permanent_server_errors_transient() {
        let h = HeaderMap::new();
        assert!(matches!(
            classify_status(StatusCode::NOT_FOUND, &h, String::new()),
            ProviderError::Permanent { .. }
        ));
        assert!(matches!(
            classify_status(StatusCode::BAD_GATEWAY, &h, String::new()),
            ProviderError::Transient { .. }
        ));
    }
}
