//! SendGrid v3 Mail Send: `POST /v3/mail/send`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use std::hash::{DefaultHasher, Hash, Hasher};

use super::gate::{with_retry_after, Fault};
use super::http::{authorization, idempotency_key, json_response, AppState};
use super::limits::{Demand, LimitScope};
use super::recorder::{Channel, NewMessage};

const MAX_RECIPIENTS: usize = 1000;

#[derive(Deserialize)]
struct EmailAddress {
    email: Option<String>,
}

#[derive(Deserialize)]
struct Personalization {
    to: Option<Vec<EmailAddress>>,
    subject: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct MailSend {
    personalizations: Option<Vec<Personalization>>,
    from: Option<EmailAddress>,
    subject: Option<String>,
    content: Option<Vec<Content>>,
    template_id: Option<String>,
}

/// One entry of SendGrid's `{"errors":[...]}` body.
fn field_error(field: Option<&str>, message: &str) -> Value {
    json!({ "message": message, "field": field, "help": null })
}

fn errors(status: StatusCode, errors: Vec<Value>) -> Response {
    json_response(status, json!({ "errors": errors }))
}

/// How SendGrid words a refused call.
pub(crate) fn refusal(fault: Fault) -> Response {
    let (status, message, field) = match fault {
        Fault::Outage => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", None),
        Fault::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            None,
        ),
        Fault::Throttle { .. } | Fault::RateLimited { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "too many requests", None)
        }
        Fault::Permanent => (
            StatusCode::BAD_REQUEST,
            "The recipient address was rejected.",
            Some("personalizations"),
        ),
    };
    let mut resp = with_retry_after(errors(status, vec![field_error(field, message)]), fault);
    if let Some(secs) = fault.retry_after_secs() {
        let reset = chrono::Utc::now().timestamp().saturating_add_unsigned(secs);
        let headers = resp.headers_mut();
        headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
        headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    }
    resp
}

/// The account a key stands for in `/_sim/limits`, without showing the key itself.
fn account_of(api_key: &str) -> String {
    let mut hasher = DefaultHasher::new();
    api_key.hash(&mut hasher);
    format!("sendgrid:{:016x}", hasher.finish())
}

fn valid_email(email: Option<&str>) -> bool {
    email.is_some_and(
        |e| matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty()),
    )
}

/// Collects every problem, as SendGrid reports all of them at once.
fn validate(mail: &MailSend) -> Vec<Value> {
    let mut errs = Vec::new();
    let personalizations = mail.personalizations.as_deref().unwrap_or_default();
    if personalizations.is_empty() {
        errs.push(field_error(
            Some("personalizations"),
            "The personalizations field is required and must have at least one personalization.",
        ));
    }
    let mut recipients = 0;
    for (i, p) in personalizations.iter().enumerate() {
        let to = p.to.as_deref().unwrap_or_default();
        if to.is_empty() {
            errs.push(field_error(
                Some(&format!("personalizations.{i}.to")),
                "The to array is required for all personalization objects, and must have at least one email object with a valid email address.",
            ));
        }
        for (j, addr) in to.iter().enumerate() {
            if !valid_email(addr.email.as_deref()) {
                errs.push(field_error(
                    Some(&format!("personalizations.{i}.to.{j}.email")),
                    "Does not contain a valid address.",
                ));
            }
        }
        recipients += to.len();
        if mail.subject.as_deref().is_none_or(str::is_empty)
            && p.subject.as_deref().is_none_or(str::is_empty)
            && mail.template_id.is_none()
        {
            errs.push(field_error(
                Some("subject"),
                "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.",
            ));
        }
    }
    if recipients > MAX_RECIPIENTS {
        errs.push(field_error(
            Some("personalizations"),
            "The total number of recipients must be no more than 1000.",
        ));
    }
    if !valid_email(mail.from.as_ref().and_then(|f| f.email.as_deref())) {
        errs.push(field_error(
            Some("from.email"),
            "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.",
        ));
    }
    let content = mail.content.as_deref().unwrap_or_default();
    if content.is_empty() && mail.template_id.is_none() {
        errs.push(field_error(
            Some("content"),
            "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required.",
        ));
    }
    for (i, c) in content.iter().enumerate() {
        if c.kind.as_deref().is_none_or(str::is_empty) {
            errs.push(field_error(
                Some(&format!("content.{i}.type")),
                "The content type cannot be blank.",
            ));
        }
        if c.value.as_deref().is_none_or(str::is_empty) {
            errs.push(field_error(
                Some(&format!("content.{i}.value")),
                "The content value must be a string at least one character in length.",
            ));
        }
    }
    errs
}

/// `POST /v3/mail/send`
pub(crate) async fn mail_send(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let Some(api_key) = authorization(&headers, "Bearer") else {
        return errors(
            StatusCode::UNAUTHORIZED,
            vec![field_error(None, "authorization required")],
        );
    };
    let account = account_of(api_key);
    let Json(raw) = match body {
        Ok(json) => json,
        Err(rejection) => {
            return errors(
                StatusCode::BAD_REQUEST,
                vec![field_error(
                    None,
                    &format!("Bad Request: the body must be JSON ({rejection})"),
                )],
            )
        }
    };
    let mail: MailSend = match serde_json::from_value(raw.clone()) {
        Ok(mail) => mail,
        Err(e) => {
            return errors(
                StatusCode::BAD_REQUEST,
                vec![field_error(None, &format!("Bad Request: {e}"))],
            )
        }
    };
    let problems = validate(&mail);
    if !problems.is_empty() {
        return errors(StatusCode::BAD_REQUEST, problems);
    }

    let content_of = |kind: &str| {
        mail.content
            .iter()
            .flatten()
            .find(|c| {
                c.kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
            })
            .and_then(|c| c.value.clone())
    };
    let body = content_of("text/plain")
        .or_else(|| content_of("text/html"))
        .unwrap_or_default();
    let recipients: Vec<NewMessage> = mail
        .personalizations
        .iter()
        .flatten()
        .flat_map(|p| {
            let subject = p.subject.clone().or_else(|| mail.subject.clone());
            p.to.iter()
                .flatten()
                .map(move |addr| (addr, subject.clone()))
        })
        .map(|(addr, subject)| NewMessage {
            recipient: addr.email.clone().unwrap_or_default(),
            subject,
            body: body.clone(),
            raw: raw.clone(),
        })
        .collect();

    let count = recipients.len();
    let addresses: Vec<&str> = recipients.iter().map(|r| r.recipient.as_str()).collect();
    let weight = u32::try_from(count).unwrap_or(u32::MAX);
    if let Err(fault) = state.gate.judge(
        Channel::Email,
        &addresses,
        &[Demand::new(LimitScope::EmailAccount, account, weight)],
    ) {
        return refusal(fault);
    }

    let key = idempotency_key(&headers);
    let duplicate = state
        .gate
        .recorder
        .record(Channel::Email, key.as_deref(), recipients);
    let message_id = uuid::Uuid::new_v4().simple().to_string();
    tracing::debug!(%message_id, recipients = count, duplicate, "sendgrid mail recorded");

    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(value) = HeaderValue::from_str(&message_id) {
        resp.headers_mut().insert("x-message-id", value);
    }
    resp
}
