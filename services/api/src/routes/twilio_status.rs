//! Twilio status callbacks: what happened to an SMS after Twilio accepted it.

use super::AppState;
use crate::api_error::ErrorBody;
use crate::extract::ApiForm;
use crate::ApiError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use pushfleet_config::Secret;
use pushfleet_domain::{twilio_signature, Channel, TwilioStatus};
use pushfleet_store::{ProviderStatusReport, StatusApplied};
use serde::Serialize;
use utoipa::ToSchema;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// How the api checks that a webhook comes from Twilio.
pub struct TwilioWebhook {
    /// `API_PUBLIC_URL`: Twilio signs the URL it called, which is this plus our path.
    pub public_url: String,
    pub auth_token: Secret<String>,
}

impl TwilioWebhook {
    /// Checks `X-Twilio-Signature` against `{public_url}{path}` and the posted fields: 403
    /// otherwise.
    pub fn check_signature(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        params: &[(String, String)],
    ) -> Result<(), ApiError> {
        // The URL Twilio called, query included: it is part of what Twilio signed. (The router
        // is not nested, so the request's URI is the path as called.)
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let url = format!("{}{path}", self.public_url);
        let signature = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !signature.is_empty()
            && twilio_signature::verify(self.auth_token.expose(), &url, params, signature)
        {
            return Ok(());
        }
        tracing::warn!(%url, signed = !signature.is_empty(), "Twilio webhook refused: bad signature");
        Err(ApiError::Status {
            status: StatusCode::FORBIDDEN,
            code: "invalid_signature",
            message: if signature.is_empty() {
                "missing X-Twilio-Signature".into()
            } else {
                "X-Twilio-Signature does not match this request".into()
            },
        })
    }
}

/// The fields of a status callback the api reads (Twilio sends more, e.g. `AccountSid`,
/// `ApiVersion`, `SmsSid`; all of them are covered by the signature).
#[derive(ToSchema)]
#[allow(dead_code)] // Documents the form body in the OpenAPI document.
pub struct TwilioStatusCallback {
    /// Twilio's id of the message, as the sms-sender recorded it.
    #[schema(rename = "MessageSid", example = "SM0123456789abcdef0123456789abcdef")]
    message_sid: String,
    /// Any of Twilio's statuses: accepted, scheduled, queued, sending, sent, delivered,
    /// read, partially_delivered, undelivered, failed, canceled (applied, mapped as in
    /// docs/delivery.md), receiving, received (ignored). An undocumented one is ignored.
    #[schema(rename = "MessageStatus", example = "delivered")]
    message_status: String,
    /// Twilio's error code when the message failed, e.g. 30003 (unreachable handset).
    #[schema(rename = "ErrorCode")]
    error_code: Option<String>,
    #[schema(rename = "To")]
    to: Option<String>,
    #[schema(rename = "From")]
    from: Option<String>,
    #[schema(rename = "AccountSid")]
    account_sid: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StatusCallbackAnswer {
    /// `applied`; `stale` (a repeat, or older than the recorded status: nothing changed);
    /// `parked` (no delivery has this MessageSid yet: applied when the sender records it);
    /// or `ignored` (a status that says nothing about a sent message's fate, or one Twilio
    /// does not document: nothing written).
    pub result: String,
}

/// Receives a Twilio status callback and moves the delivery's provider status forward.
///
/// The request must carry a valid `X-Twilio-Signature` for `{API_PUBLIC_URL}{path}` and the
/// posted fields; otherwise 403 and nothing is written.
#[utoipa::path(post, path = "/v1/webhooks/twilio/status",
    request_body(content = TwilioStatusCallback,
                  content_type = "application/x-www-form-urlencoded"),
    params(("X-Twilio-Signature" = String, Header,
            description = "Base64 HMAC-SHA1 of the URL and the sorted fields, keyed by the auth token")),
    responses((status = 200, body = StatusCallbackAnswer),
              (status = 400, body = ErrorBody, description = "malformed form (MessageSid or MessageStatus missing or given twice)"),
              (status = 403, body = ErrorBody, description = "missing or invalid signature"),
              (status = 415, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(sid, status))]
pub async fn twilio_status_callback(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    ApiForm(params): ApiForm<Vec<(String, String)>>,
) -> Result<Json<StatusCallbackAnswer>, ApiError> {
    if let Err(e) = state.twilio.check_signature(&uri, &headers, &params) {
        count("forged");
        return Err(e);
    }

    let report = match parse_report(&params).inspect_err(|_| count("invalid"))? {
        Parsed::Report(r) => r,
        Parsed::Ignored { status, known } => {
            // Signed, so it comes from Twilio: answered 2xx whatever it says, or Twilio
            // would log an error and (with retries configured) post it again, to no use.
            if known {
                tracing::debug!(
                    status,
                    "status callback ignored: not about a sent message's fate"
                );
                count("ignored");
            } else {
                tracing::warn!(
                    status,
                    "status callback with a MessageStatus Twilio does not document; ignored"
                );
                count("unknown_status");
            }
            return Ok(Json(StatusCallbackAnswer {
                result: "ignored".to_owned(),
            }));
        }
    };
    let span = tracing::Span::current();
    span.record("sid", report.provider_message_id.as_str());
    span.record("status", report.status.as_str());
    let applied = state.store.apply_provider_status(&report).await?;
    count(applied.as_str());
    // An unknown sid is answered 200, not 404: Twilio posts `sent` as soon as it accepts a
    // message, often before the sender has written the sid, so "unknown" usually means "not
    // yet". The report is parked and applied when the sid is written. A 404 would lose it
    // (by default Twilio retries failed connections, not error answers) and only fill
    // Twilio's error log; unknown sids are logged and counted (`result="parked"`) instead.
    if applied == StatusApplied::Parked {
        tracing::info!("status for a MessageSid not recorded yet; parked");
    }
    Ok(Json(StatusCallbackAnswer {
        result: applied.as_str().to_owned(),
    }))
}

fn count(result: &'static str) {
    metrics::counter!("pushfleet_twilio_status_callbacks_total", "result" => result).increment(1);
}

/// The one value of a field; a field given twice with different values is refused.
pub(crate) fn field<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty());
    let first = values.next();
    if values.any(|v| Some(v) != first) {
        return Err(ApiError::BadRequest {
            code: "invalid_form",
            message: format!("{name} is given more than once"),
        });
    }
    Ok(first)
}

/// A well-formed callback: a report to apply, or a status with nothing to record.
enum Parsed {
    Report(ProviderStatusReport),
    Ignored { status: String, known: bool },
}

fn parse_report(params: &[(String, String)]) -> Result<Parsed, ApiError> {
    let missing = |name: &str| ApiError::BadRequest {
        code: "invalid_form",
        message: format!("{name} is required"),
    };
    let sid = field(params, "MessageSid")?.ok_or_else(|| missing("MessageSid"))?;
    let status = field(params, "MessageStatus")?.ok_or_else(|| missing("MessageStatus"))?;
    let status = match TwilioStatus::parse(status) {
        TwilioStatus::Apply(s) => s,
        other => {
            return Ok(Parsed::Ignored {
                status: status.to_owned(),
                known: other == TwilioStatus::Ignore,
            })
        }
    };
    Ok(Parsed::Report(ProviderStatusReport {
        channel: Channel::Sms,
        provider_message_id: sid.to_owned(),
        status,
        error_code: field(params, "ErrorCode")?.map(str::to_owned),
    }))
}
