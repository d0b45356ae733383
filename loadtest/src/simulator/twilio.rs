//! Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.

use std::collections::BTreeMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use base64::Engine as _;
use serde_json::json;

use super::callbacks::{self, StatusCallback};
use super::gate::{with_retry_after, Fault};
use super::http::{authorization, idempotency_key, json_response, AppState};
use super::limits::{Demand, LimitScope};
use super::recorder::{Channel, NewMessage};

/// Twilio refuses bodies longer than this many characters.
const MAX_BODY_CHARS: usize = 1600;

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    json_response(
        status,
        json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }),
    )
}

fn invalid_to(to: &str) -> Response {
    twilio_error(
        StatusCode::BAD_REQUEST,
        21211,
        &format!("The 'To' number {to} is not a valid phone number."),
    )
}

/// How Twilio words a refused call.
pub(crate) fn refusal(fault: Fault) -> Response {
    let resp = match fault {
        Fault::Outage => twilio_error(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Service unavailable",
        ),
        Fault::ServerError => twilio_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal server error",
        ),
        Fault::Throttle { .. } | Fault::RateLimited { .. } => {
            twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
        }
        Fault::Permanent => twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        ),
    };
    with_retry_after(resp, fault)
}

fn unauthorized() -> Response {
    let mut resp = twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Twilio API\""),
    );
    resp
}

fn authenticated(state: &AppState, headers: &HeaderMap, path_sid: &str) -> bool {
    let cfg = &state.cfg;
    let Some(encoded) = authorization(headers, "Basic") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Ok(pair) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((sid, token)) = pair.split_once(':') else {
        return false;
    };
    path_sid == cfg.twilio_account_sid
        && sid == cfg.twilio_account_sid
        && token == cfg.twilio_auth_token
}

/// E.164 as Twilio checks it here: `+` then 8 to 15 digits.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`
pub(crate) async fn send_message(
    State(state): State<AppState>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    if !authenticated(&state, &headers, &account_sid) {
        tracing::warn!(%account_sid, "twilio call refused: bad credentials");
        return unauthorized();
    }
    let Form(params) = match form {
        Ok(form) => form,
        Err(rejection) => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                20001,
                &format!("The request body must be form-encoded: {rejection}"),
            )
        }
    };
    let field = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };

    let Some(to) = field("To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    if !is_e164(to) {
        return invalid_to(to);
    }
    let from = field("From");
    let service_sid = field("MessagingServiceSid");
    if from.is_none() && service_sid.is_none() {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    let Some(body) = field("Body") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    if body.chars().count() > MAX_BODY_CHARS {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    let callback = field("StatusCallback");
    if let Some(callback) = callback {
        if !(callback.starts_with("http://") || callback.starts_with("https://")) {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                21609,
                "The StatusCallback URL is not a valid URL.",
            );
        }
    }

    let segments = num_segments(body);
    // Twilio paces each sender; a messaging service is one sender here.
    let sender = from.or(service_sid).unwrap_or_default();
    let weight = u32::try_from(segments).unwrap_or(u32::MAX);
    if let Err(fault) = state.gate.judge(
        Channel::Sms,
        &[to],
        &[Demand::new(LimitScope::SmsSender, sender, weight)],
    ) {
        return match fault {
            Fault::Permanent => invalid_to(to),
            other => refusal(other),
        };
    }

    let key = idempotency_key(&headers);
    let raw = json!(params);
    let duplicate = state.gate.recorder.record(
        Channel::Sms,
        key.as_deref(),
        vec![NewMessage {
            recipient: to.to_owned(),
            subject: None,
            body: body.to_owned(),
            raw,
        }],
    );
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    tracing::debug!(%sid, %to, duplicate, "twilio message recorded");
    if let Some(url) = callback {
        callbacks::spawn(
            &state,
            StatusCallback {
                url: url.to_owned(),
                message_sid: sid.clone(),
                account_sid: account_sid.clone(),
                to: to.to_owned(),
                from: sender.to_owned(),
                messaging_service_sid: service_sid.map(str::to_owned),
            },
        );
    }
    let now = chrono::Utc::now().to_rfc2822();
    let resp = json!({
        "sid": sid,
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_updated": now,
        "date_sent": null,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service_sid,
        "num_media": "0",
        "num_segments": segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "status": "queued",
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"),
    });
    (StatusCode::CREATED, axum::Json(resp)).into_response()
}

// GSM 03.38 default alphabet (one septet each) and its extension table (escape + septet).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED: &str = "\u{000C}^{}\\[~]|€";

/// SMS segments for `body`: GSM-7 160 (153 when concatenated), otherwise UCS-2 70 (67), where
/// UCS-2 length counts UTF-16 code units as handsets do.
pub fn num_segments(body: &str) -> usize {
    let septets = body.chars().try_fold(0usize, |n, c| {
        if GSM_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM_EXTENDED.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    });
    let (len, single, multi) = match septets {
        Some(septets) => (septets, 160, 153),
        None => (body.encode_utf16().count(), 70, 67),
    };
    if len <= single {
        1
    } else {
        len.div_ceil(multi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert_eq!(num_segments(""), 1);
        assert_eq!(num_segments(&"a".repeat(160)), 1);
        assert_eq!(num_segments(&"a".repeat(161)), 2);
        assert_eq!(num_segments(&"a".repeat(306)), 2);
        assert_eq!(num_segments(&"a".repeat(307)), 3);
        // Extension characters cost two septets.
        assert_eq!(num_segments(&"€".repeat(80)), 1);
        assert_eq!(num_segments(&"€".repeat(81)), 2);
        // One non-GSM character switches the whole message to UCS-2.
        assert_eq!(num_segments(&format!("{}✓", "a".repeat(69))), 1);
        assert_eq!(num_segments(&format!("{}✓", "a".repeat(70))), 2);
        assert_eq!(num_segments(&"✓".repeat(134)), 2);
        assert_eq!(num_segments(&"✓".repeat(135)), 3);
    }

    #[test]
    fn e164() {
        assert!(is_e164("+4915112345678"));
        assert!(is_e164("+12345678"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("4915112345678"));
        assert!(!is_e164("+49 151 1234"));
    }
}
