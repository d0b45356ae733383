//! The SendGrid v3 Mail Send request body, for one recipient.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize, Debug)]
pub(crate) struct MailSend<'a> {
    pub personalizations: [Personalization<'a>; 1],
    pub from: EmailAddress<'a>,
    pub subject: &'a str,
    /// text/plain first, then text/html: SendGrid requires that order.
    pub content: Vec<Content<'a>>,
    pub headers: BTreeMap<&'static str, String>,
    /// Echoed back in SendGrid's event webhooks, to find the delivery again.
    pub custom_args: BTreeMap<&'static str, String>,
}

#[derive(Serialize, Debug)]
pub(crate) struct Personalization<'a> {
    pub to: [EmailAddress<'a>; 1],
}

#[derive(Serialize, Debug)]
pub(crate) struct EmailAddress<'a> {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

#[derive(Serialize, Debug)]
pub(crate) struct Content<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: &'a str,
}

/// SendGrid's error body: `{"errors":[{"message":"...","field":"..."}]}`.
#[derive(serde::Deserialize, Debug)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(serde::Deserialize, Debug)]
pub(crate) struct ErrorItem {
    pub message: Option<String>,
    pub field: Option<String>,
}

impl ErrorBody {
    /// One line naming every problem, or `None` when the body was not SendGrid's shape.
    pub fn summary(text: &str) -> Option<String> {
        let body: ErrorBody = serde_json::from_str(text).ok()?;
        let parts: Vec<String> = body
            .errors
            .into_iter()
            .map(|e| match e.field {
                Some(f) => format!("{f}: {}", e.message.unwrap_or_default()),
                None => e.message.unwrap_or_default(),
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}
