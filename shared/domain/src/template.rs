//! Message templates with `{{placeholder}}` substitution.
//!
//! A template is parsed once, when it is saved, into literal and placeholder segments; an
//! unknown placeholder or an unclosed `{{` is an error then, not at send time.

use crate::adaptive_card::{validate_card, CardErrors};
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

/// How a Teams message looks (seed 001): plain text, one of three styled cards, or a card
/// of the admin's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamsFormat {
    #[default]
    Message,
    Idea,
    Success,
    Important,
    AdaptiveCard,
}

impl TeamsFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamsFormat::Message => "message",
            TeamsFormat::Idea => "idea",
            TeamsFormat::Success => "success",
            TeamsFormat::Important => "important",
            TeamsFormat::AdaptiveCard => "adaptive_card",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            TeamsFormat::Message,
            TeamsFormat::Idea,
            TeamsFormat::Success,
            TeamsFormat::Important,
            TeamsFormat::AdaptiveCard,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
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
    /// The card does not go with the format.
    #[error("card: {0}")]
    Card(String),
    /// The card is not one Teams accepts; each error names its path (`card.version`).
    #[error("{0}")]
    InvalidCard(CardErrors),
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

/// An Adaptive Card whose string values may hold placeholders.
#[derive(Debug, Clone, PartialEq)]
enum CardNode {
    Text(Text),
    Other(serde_json::Value),
    Array(Vec<CardNode>),
    Object(Vec<(String, CardNode)>),
}

impl CardNode {
    fn parse(v: &serde_json::Value) -> Result<Self, TemplateError> {
        Ok(match v {
            serde_json::Value::String(s) => CardNode::Text(Text::parse("card", s)?),
            serde_json::Value::Array(a) => {
                CardNode::Array(a.iter().map(CardNode::parse).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(o) => CardNode::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), CardNode::parse(v)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => CardNode::Other(other.clone()),
        })
    }

    fn render(&self, r: &Recipient) -> serde_json::Value {
        match self {
            CardNode::Text(t) => serde_json::Value::String(t.render(r, false)),
            CardNode::Other(v) => v.clone(),
            CardNode::Array(a) => a.iter().map(|n| n.render(r)).collect(),
            CardNode::Object(o) => {
                serde_json::Value::Object(o.iter().map(|(k, n)| (k.clone(), n.render(r))).collect())
            }
        }
    }
}

/// A parsed template: subject (used by e-mail), a plain-text body (every channel), an
/// optional HTML body (e-mail), and how Teams shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    subject: Text,
    body: Text,
    html: Option<Text>,
    teams_format: TeamsFormat,
    card: Option<CardNode>,
}

/// A template rendered for one recipient.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RenderedMessage {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub teams_format: TeamsFormat,
    /// The admin's own Adaptive Card, rendered (format `adaptive_card` only).
    pub card: Option<serde_json::Value>,
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
            teams_format: TeamsFormat::Message,
            card: None,
        })
    }

    /// Sets how Teams shows the message. `adaptive_card` needs a card that Teams accepts
    /// (see [`crate::adaptive_card`]); the other formats take none.
    pub fn with_teams(
        mut self,
        format: TeamsFormat,
        card: Option<&serde_json::Value>,
    ) -> Result<Self, TemplateError> {
        self.card = match (format, card) {
            (TeamsFormat::AdaptiveCard, Some(c)) => {
                let parsed = CardNode::parse(c)?;
                // Checked before rendering: the rules hold for any values the placeholders
                // take, so every rendered card passes too.
                validate_card(c).map_err(TemplateError::InvalidCard)?;
                Some(parsed)
            }
            (TeamsFormat::AdaptiveCard, None) => {
                return Err(TemplateError::Card(
                    "the adaptive_card format needs a card".into(),
                ))
            }
            (_, Some(_)) => {
                return Err(TemplateError::Card(
                    "a card is only used with the adaptive_card format".into(),
                ))
            }
            (_, None) => None,
        };
        self.teams_format = format;
        Ok(self)
    }

    pub fn render(&self, r: &Recipient) -> RenderedMessage {
        RenderedMessage {
            subject: self.subject.render(r, false),
            text: self.body.render(r, false),
            html: self.html.as_ref().map(|h| h.render(r, true)),
            teams_format: self.teams_format,
            card: self.card.as_ref().map(|c| c.render(r)),
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
    fn cards_are_rendered_with_placeholders_in_string_values() {
        let card = serde_json::json!({
            "type": "AdaptiveCard", "version": "1.5",
            "body": [{"type": "TextBlock", "text": "Hi {{first_name}}", "wrap": true}],
            "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://x.test/?u={{email}}"}]
        });
        let t = Template::parse("", "Hi {{first_name}}", None)
            .and_then(|t| t.with_teams(TeamsFormat::AdaptiveCard, Some(&card)))
            .expect("valid card template");
        let m = t.render(&ada());
        let rendered = m.card.expect("a card");
        assert_eq!(rendered["body"][0]["text"], "Hi Ada");
        assert_eq!(rendered["body"][0]["wrap"], true);
        assert_eq!(
            rendered["actions"][0]["url"],
            "https://x.test/?u=ada@example.org"
        );
        assert_eq!(m.teams_format, TeamsFormat::AdaptiveCard);
    }

    #[test]
    fn card_mistakes_are_errors() {
        let t = || Template::parse("", "Hi", None).expect("valid");
        let not_a_card = serde_json::json!({"type": "Poster", "version": "1.5"});
        let Err(TemplateError::InvalidCard(errors)) =
            t().with_teams(TeamsFormat::AdaptiveCard, Some(&not_a_card))
        else {
            panic!("a Poster is not an Adaptive Card");
        };
        assert_eq!(errors.0[0].path, "card.type");
        let no_version = serde_json::json!({"type": "AdaptiveCard", "body": []});
        let err = t()
            .with_teams(TeamsFormat::AdaptiveCard, Some(&no_version))
            .expect_err("no version");
        assert_eq!(err.to_string(), "card.version: is required");
        assert!(matches!(
            t().with_teams(TeamsFormat::AdaptiveCard, None),
            Err(TemplateError::Card(_))
        ));
        let card = serde_json::json!({"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "{{nickname}}"}]});
        assert!(matches!(
            t().with_teams(TeamsFormat::AdaptiveCard, Some(&card)),
            Err(TemplateError::UnknownPlaceholder { field: "card", .. })
        ));
        assert!(matches!(
            t().with_teams(TeamsFormat::Idea, Some(&card)),
            Err(TemplateError::Card(_))
        ));
        assert!(t().with_teams(TeamsFormat::Important, None).is_ok());
    }

    /// What the save-time check accepts, the provider accepts once rendered, whatever the
    /// recipient's values (empty, braces, quotes): the simulator runs the same check on
    /// every card it receives.
    #[test]
    fn accepted_cards_still_pass_once_rendered() {
        let card = serde_json::json!({
            "type": "AdaptiveCard", "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": "{{first_name}}"},
                {"type": "Image", "url": "{{email}}"},
                {"type": "FactSet", "facts": [{"title": "{{last_name}}", "value": "{{phone}}"}]},
                {"type": "Input.ChoiceSet", "id": "q1",
                 "choices": [{"title": "{{full_name}}", "value": "{{first_name}}"}]},
                {"type": "Input.Text", "id": "q2", "placeholder": "{{last_name}}"}
            ],
            "actions": [{"type": "Action.OpenUrl", "url": "{{email}}"},
                        {"type": "Action.Submit", "data": {"who": "{{email}}"}}]
        });
        let t = Template::parse("", "x", None)
            .and_then(|t| t.with_teams(TeamsFormat::AdaptiveCard, Some(&card)))
            .expect("a valid card");
        for (first, last) in [("", ""), ("{{x}}", "q1"), ("\"}", "Action.Submit")] {
            let r = Recipient {
                first_name: first.into(),
                last_name: last.into(),
                email: None,
                phone: None,
                teams: None,
            };
            let rendered = t.render(&r).card.expect("a card");
            assert_eq!(crate::adaptive_card::validate_card(&rendered), Ok(()));
        }
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
