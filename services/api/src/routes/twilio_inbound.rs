//! Replies to our SMS (Twilio's inbound message webhook): the standard opt-out keywords
//! unsubscribe the sender's number from SMS, the opt-in keywords lift that; answered in TwiML.

use super::twilio_status::field;
use super::AppState;
use crate::api_error::ErrorBody;
use crate::extract::ApiForm;
use crate::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use pushfleet_domain::{Channel, PhoneNumber};
use utoipa::ToSchema;

/// Twilio's default opt-out keywords.
const STOP_WORDS: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
/// Twilio's default opt-in keywords.
const START_WORDS: [&str; 3] = ["START", "YES", "UNSTOP"];

const STOPPED: &str = "You are unsubscribed and will receive no more messages from us. \
                       Reply START to subscribe again.";
const STARTED: &str = "You are subscribed again. Reply STOP to unsubscribe.";

/// The fields of an inbound message the api reads (Twilio sends more; all are signed).
#[derive(ToSchema)]
#[allow(dead_code)] // Documents the form body in the OpenAPI document.
pub struct TwilioInboundMessage {
    /// The sender's number, E.164.
    #[schema(rename = "From", example = "+15551234567")]
    from: String,
    /// The text of the message.
    #[schema(rename = "Body", example = "STOP")]
    body: String,
    #[schema(rename = "MessageSid")]
    message_sid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Stop,
    Start,
}

fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim().to_ascii_uppercase();
    if STOP_WORDS.contains(&word.as_str()) {
        Some(Keyword::Stop)
    } else if START_WORDS.contains(&word.as_str()) {
        Some(Keyword::Start)
    } else {
        None
    }
}

/// TwiML: a reply, or nothing.
fn twiml(message: Option<&str>) -> Response {
    let xml = match message {
        Some(m) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(m)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_owned(),
    };
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Receives an SMS sent to our number. STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT
/// (any case) opt the sender's number out of SMS; START, YES or UNSTOP opt it back in.
/// Other text, and numbers we do not know, get an empty TwiML answer.
#[utoipa::path(post, path = "/v1/twilio/inbound",
    request_body(content = TwilioInboundMessage,
                 content_type = "application/x-www-form-urlencoded"),
    params(("X-Twilio-Signature" = String, Header,
            description = "Base64 HMAC-SHA1 of the URL and the sorted fields, keyed by the auth token")),
    responses((status = 200, content_type = "text/xml", description = "TwiML"),
              (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "missing or invalid signature"),
              (status = 415, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(keyword))]
pub async fn twilio_inbound(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    ApiForm(params): ApiForm<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    state.twilio.check_signature(&uri, &headers, &params)?;
    let Some(word) = field(&params, "Body")?.and_then(keyword) else {
        return Ok(twiml(None));
    };
    tracing::Span::current().record("keyword", format!("{word:?}"));
    let from = field(&params, "From")?.ok_or_else(|| ApiError::BadRequest {
        code: "invalid_form",
        message: "From is required".into(),
    })?;
    let Ok(phone) = PhoneNumber::parse(from) else {
        tracing::info!("keyword from a number that is not E.164; ignored");
        return Ok(twiml(None));
    };
    let people = state.store.people_by_phone(phone.as_str()).await?;
    if people.is_empty() {
        tracing::info!("keyword from an unknown number; ignored");
        return Ok(twiml(None));
    }
    for person in &people {
        match word {
            Keyword::Stop => {
                state
                    .store
                    .opt_out_of_channel(*person, Channel::Sms, "sms_keyword")
                    .await?;
            }
            Keyword::Start => {
                state.store.opt_in_to_channel(*person, Channel::Sms).await?;
            }
        }
    }
    let result = match word {
        Keyword::Stop => "opted_out",
        Keyword::Start => "opted_in",
    };
    metrics::counter!("pushfleet_opt_changes_total", "channel" => "sms", "result" => result)
        .increment(1);
    tracing::info!(people = people.len(), result, "SMS keyword applied");
    Ok(twiml(Some(match word {
        Keyword::Stop => STOPPED,
        Keyword::Start => STARTED,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_trimmed_and_case_insensitive() {
        assert_eq!(keyword(" stop \n"), Some(Keyword::Stop));
        assert_eq!(keyword("Unsubscribe"), Some(Keyword::Stop));
        assert_eq!(keyword("unstop"), Some(Keyword::Start));
        assert_eq!(keyword("please stop"), None);
        assert_eq!(keyword(""), None);
    }
}
