//! Message templates with `{{placeholder}}` substitution.
//!
//! A template is parsed once, when it is saved, into literal and placeholder segments; an
//! unknown placeholder or an unclosed `{{` is an error then, not at send time.

use crate::Recipient;
use serde::{Deserialize, Serialize};

/// The values a template may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    FirstName,
    LastName,
    FullName,
    Email,
    Phone,
}

impl Placeholder {
    pub const ALL: [Placeholder; 5] = [
        Placeholder::FirstName,
        Placeholder::LastName,
        Placeholder::FullName,
        Placeholder::Email,
        Placeholder::Phone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::FirstName => "first_name",
            Placeholder::LastName => "last_name",
            Placeholder::FullName => "full_name",
            Placeholder::Email => "email",
            Placeholder::Phone => "phone",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn value(self, r: &Recipient) -> String {
        match self {
            Placeholder::FirstName => r.first_name.clone(),
            Placeholder::LastName => r.last_name.clone(),
            Placeholder::FullName => format!("{} {}", r.first_name, r.last_name)
                .trim()
                .to_owned(),
            Placeholder::Email => r
                .email
                .as_ref()
                .map(|e| e.as_str().to_owned())
                .unwrap_or_default(),
            Placeholder::Phone => r
                .phone
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown placeholder `{{{{{name}}}}}` in {field}; known: first_name, last_name, full_name, email, phone")]
    UnknownPlaceholder { field: &'static str, name: String },
    #[error("unclosed `{{{{` in {field} at byte {offset}")]
    Unclosed { field: &'static str, offset: usize },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Value(Placeholder),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Text(Vec<Segment>);

impl Text {
    fn parse(field: &'static str, src: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = src;
        let mut consumed = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unclosed {
                field,
                offset: consumed + start,
            })?;
            let name = after[..end].trim();
            let placeholder =
                Placeholder::from_name(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                    field,
                    name: name.to_owned(),
                })?;
            segments.push(Segment::Value(placeholder));
            let advance = start + 2 + end + 2;
            consumed += advance;
            rest = &rest[advance..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        Ok(Self(segments))
    }

    fn render(&self, r: &Recipient, escape_html: bool) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Segment::Literal(s) => out.push_str(s),
                Segment::Value(p) if escape_html => out.push_str(&html_escape(&p.value(r))),
                Segment::Value(p) => out.push_str(&p.value(r)),
            }
        }
        out
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A parsed template: subject (used by e-mail), a plain-text body (every channel) and an
/// optional HTML body (e-mail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    subject: Text,
    body: Text,
    html: Option<Text>,
}

/// A template rendered for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedMessage {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Template {
    pub fn parse(subject: &str, body: &str, html: Option<&str>) -> Result<Self, TemplateError> {
        if body.trim().is_empty() {
            return Err(TemplateError::Empty { field: "body" });
        }
        Ok(Self {
            subject: Text::parse("subject", subject)?,
            body: Text::parse("body", body)?,
            html: html.map(|h| Text::parse("html", h)).transpose()?,
        })
    }

    pub fn render(&self, r: &Recipient) -> RenderedMessage {
        RenderedMessage {
            subject: self.subject.render(r, false),
            text: self.body.render(r, false),
            html: self.html.as_ref().map(|h| h.render(r, true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmailAddress;

    fn ada() -> Recipient {
        Recipient {
            first_name: "Ada".into(),
            last_name: "<Lovelace>".into(),
            email: EmailAddress::parse("ada@example.org").ok(),
            phone: None,
            teams: None,
        }
    }

    #[test]
    fn renders_placeholders_with_and_without_spaces() {
        let t = Template::parse(
            "Hi {{first_name}}",
            "Hello {{ first_name }} {{last_name}} <{{email}}>",
            Some("<p>{{full_name}}</p>"),
        )
        .expect("valid template");
        let m = t.render(&ada());
        assert_eq!(m.subject, "Hi Ada");
        assert_eq!(m.text, "Hello Ada <Lovelace> <ada@example.org>");
        assert_eq!(m.html.as_deref(), Some("<p>Ada &lt;Lovelace&gt;</p>"));
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let err = Template::parse("", "Hi {{nickname}}", None).expect_err("must fail");
        assert_eq!(
            err,
            TemplateError::UnknownPlaceholder {
                field: "body",
                name: "nickname".into()
            }
        );
        assert!(err.to_string().contains("{{nickname}}"));
    }

    #[test]
    fn unclosed_braces_and_empty_body_are_errors() {
        assert!(matches!(
            Template::parse("", "Hi {{first_name", None),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            Template::parse("", "  ", None),
            Err(TemplateError::Empty { .. })
        ));
    }
}
