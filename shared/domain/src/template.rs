//! Message templates with placeholder substitution.
//!
//! A placeholder is `{{name}}`, optionally with a fallback for a missing or empty value:
//! `{{first_name | "there"}}` (single or double quotes, spaces optional). The names are the
//! recipient's own (`first_name`, `last_name`, `full_name`, `email`, `phone`) and every
//! directory property (`department`, `job_title`, `location`, `language`, `time_zone`,
//! `external_id`, `joining_date`, `attributes.<key>`). Seed 001's bracket forms
//! `[FIRSTNAME]`, `[LASTNAME]`, `[FULLNAME]` and `[EMAIL]` (uppercase, exactly) mean the
//! same as their brace forms; any other bracketed text is literal.
//!
//! A template is parsed once, when it is saved, into literal and placeholder segments; an
//! unknown placeholder, a malformed fallback or an unclosed `{{` is an error then, not at
//! send time.

use crate::adaptive_card::{validate_card, CardErrors};
use crate::criteria::valid_attribute_key;
use crate::tracked_links::TrackedLinks;
use crate::Recipient;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The values a template may refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    FirstName,
    LastName,
    FullName,
    Email,
    Phone,
    Department,
    JobTitle,
    Location,
    Language,
    TimeZone,
    ExternalId,
    /// `YYYY-MM-DD`.
    JoiningDate,
    /// A custom attribute, `attributes.<key>`; the key as the directory accepts it.
    Attribute(String),
}

/// Every name a template may use, for the error that refuses an unknown one.
pub const KNOWN_PLACEHOLDERS: &str = "first_name, last_name, full_name, email, phone, \
     department, job_title, location, language, time_zone, external_id, joining_date, \
     attributes.<key>, and [FIRSTNAME], [LASTNAME], [FULLNAME], [EMAIL]";

/// Seed 001's bracket forms, and what they mean.
const BRACKETS: [(&str, Placeholder); 4] = [
    ("[FIRSTNAME]", Placeholder::FirstName),
    ("[LASTNAME]", Placeholder::LastName),
    ("[FULLNAME]", Placeholder::FullName),
    ("[EMAIL]", Placeholder::Email),
];

/// Whether a text holds a placeholder in either form (an Adaptive Card's input ids must not).
pub fn has_placeholder(s: &str) -> bool {
    s.contains("{{") || BRACKETS.iter().any(|(token, _)| s.contains(token))
}

impl Placeholder {
    /// The placeholders with a fixed name (custom attributes are open-ended).
    pub const ALL: [Placeholder; 12] = [
        Placeholder::FirstName,
        Placeholder::LastName,
        Placeholder::FullName,
        Placeholder::Email,
        Placeholder::Phone,
        Placeholder::Department,
        Placeholder::JobTitle,
        Placeholder::Location,
        Placeholder::Language,
        Placeholder::TimeZone,
        Placeholder::ExternalId,
        Placeholder::JoiningDate,
    ];

    /// The name inside the braces, which is also the key of a directory property in
    /// [`Recipient::properties`].
    pub fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Placeholder::FirstName => "first_name",
            Placeholder::LastName => "last_name",
            Placeholder::FullName => "full_name",
            Placeholder::Email => "email",
            Placeholder::Phone => "phone",
            Placeholder::Department => "department",
            Placeholder::JobTitle => "job_title",
            Placeholder::Location => "location",
            Placeholder::Language => "language",
            Placeholder::TimeZone => "time_zone",
            Placeholder::ExternalId => "external_id",
            Placeholder::JoiningDate => "joining_date",
            Placeholder::Attribute(key) => return Cow::Owned(format!("attributes.{key}")),
        })
    }

    /// The placeholder a name (as written between the braces) stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        if let Some(key) = name.strip_prefix("attributes.") {
            return valid_attribute_key(key).then(|| Placeholder::Attribute(key.to_owned()));
        }
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn value<'r>(&self, r: &'r Recipient) -> Cow<'r, str> {
        match self {
            Placeholder::FirstName => Cow::Borrowed(&r.first_name),
            Placeholder::LastName => Cow::Borrowed(&r.last_name),
            Placeholder::FullName => Cow::Owned(
                format!("{} {}", r.first_name, r.last_name)
                    .trim()
                    .to_owned(),
            ),
            Placeholder::Email => Cow::Borrowed(r.email.as_ref().map_or("", |e| e.as_str())),
            Placeholder::Phone => Cow::Borrowed(r.phone.as_ref().map_or("", |p| p.as_str())),
            // Directory properties: absent from jobs published before they were carried, and
            // for people without the value; both render as missing.
            other => Cow::Borrowed(
                r.properties
                    .get(other.name().as_ref())
                    .map_or("", String::as_str),
            ),
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
    #[error("unknown placeholder `{{{{{name}}}}}` in {field}; known: {KNOWN_PLACEHOLDERS}")]
    UnknownPlaceholder { field: &'static str, name: String },
    /// What follows the `|` is not one quoted text.
    #[error("the fallback of `{{{{{name}}}}}` in {field} must be one quoted text, e.g. `{{{{{name} | \"there\"}}}}`")]
    BadFallback { field: &'static str, name: String },
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
    Value {
        placeholder: Placeholder,
        /// Rendered instead of a missing or blank value.
        fallback: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Text(Vec<Segment>);

impl Text {
    fn parse(field: &'static str, src: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = src;
        let mut consumed = 0;
        while let Some(start) = rest.find("{{") {
            push_literal(&mut segments, &rest[..start]);
            let after = &rest[start + 2..];
            let end = match closing_braces(after) {
                Ok(end) => end,
                // A quote left open, where a `}}` follows: the fallback is what is wrong.
                Err(Some(pipe)) if after.contains("}}") => {
                    return Err(TemplateError::BadFallback {
                        field,
                        name: after[..pipe].trim().to_owned(),
                    })
                }
                Err(_) => {
                    return Err(TemplateError::Unclosed {
                        field,
                        offset: consumed + start,
                    })
                }
            };
            segments.push(parse_placeholder(field, &after[..end])?);
            let advance = start + 2 + end + 2;
            consumed += advance;
            rest = &rest[advance..];
        }
        push_literal(&mut segments, rest);
        Ok(Self(segments))
    }

    fn render(&self, r: &Recipient, escape_html: bool) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            let text = match seg {
                Segment::Literal(s) => {
                    out.push_str(s);
                    continue;
                }
                Segment::Value {
                    placeholder,
                    fallback,
                } => {
                    let value = placeholder.value(r);
                    match fallback {
                        Some(f) if value.trim().is_empty() => Cow::Borrowed(f.as_str()),
                        _ => value,
                    }
                }
            };
            if escape_html {
                out.push_str(&html_escape(&text));
            } else {
                out.push_str(&text);
            }
        }
        out
    }
}

/// Literal text, with the bracket placeholders in it split out.
fn push_literal(segments: &mut Vec<Segment>, mut s: &str) {
    while let Some((at, token, placeholder)) = next_bracket(s) {
        if at > 0 {
            segments.push(Segment::Literal(s[..at].to_owned()));
        }
        segments.push(Segment::Value {
            placeholder,
            fallback: None,
        });
        s = &s[at + token.len()..];
    }
    if !s.is_empty() {
        segments.push(Segment::Literal(s.to_owned()));
    }
}

fn next_bracket(s: &str) -> Option<(usize, &'static str, Placeholder)> {
    let mut from = 0;
    while let Some(i) = s[from..].find('[') {
        let at = from + i;
        if let Some((token, p)) = BRACKETS.into_iter().find(|(t, _)| s[at..].starts_with(t)) {
            return Some((at, token, p));
        }
        from = at + 1;
    }
    None
}

/// Where the `}}` closing a placeholder starts in `s` (the text after its `{{`). A quoted
/// fallback may hold `}}`: quotes count once a `|` has been seen. When there is none, the
/// error is where the `|` is if a quote was left open.
fn closing_braces(s: &str) -> Result<usize, Option<usize>> {
    let b = s.as_bytes();
    let mut quote = None;
    let mut pipe = None;
    for i in 0..b.len() {
        match (quote, b[i]) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'|') => pipe = pipe.or(Some(i)),
            (None, c @ (b'"' | b'\'')) if pipe.is_some() => quote = Some(c),
            (None, b'}') if b.get(i + 1) == Some(&b'}') => return Ok(i),
            (None, _) => {}
        }
    }
    Err(pipe.filter(|_| quote.is_some()))
}

/// `name` or `name | "fallback"` (the text between the braces).
fn parse_placeholder(field: &'static str, inner: &str) -> Result<Segment, TemplateError> {
    let (name, fallback) = match inner.split_once('|') {
        Some((name, fallback)) => (name.trim(), Some(fallback.trim())),
        None => (inner.trim(), None),
    };
    let placeholder =
        Placeholder::from_name(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
            field,
            name: name.to_owned(),
        })?;
    let fallback = fallback
        .map(|f| {
            unquote(f).ok_or_else(|| TemplateError::BadFallback {
                field,
                name: name.to_owned(),
            })
        })
        .transpose()?;
    Ok(Segment::Value {
        placeholder,
        fallback: fallback.map(str::to_owned),
    })
}

/// The text inside `"..."` or `'...'` (which holds no quote of its kind), or `None`.
fn unquote(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    (!inner.contains(q)).then_some(inner)
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
    /// The links clicks are tracked on, from the sources before rendering.
    links: TrackedLinks,
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
            links: TrackedLinks::of(body, html, None),
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
                self.links.add_card(c);
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

    /// The links whose clicks are tracked ([`crate::tracked_links`]).
    pub fn links(&self) -> &TrackedLinks {
        &self.links
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
    use std::collections::BTreeMap;

    fn ada() -> Recipient {
        Recipient {
            first_name: "Ada".into(),
            last_name: "<Lovelace>".into(),
            email: EmailAddress::parse("ada@example.org").ok(),
            phone: None,
            teams: None,
            properties: BTreeMap::new(),
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

    /// Ada with her directory properties, as the publisher fills them.
    fn ada_in_the_directory() -> Recipient {
        let properties = [
            ("department", "Analytical Engines"),
            ("job_title", "Programmer"),
            ("location", "London"),
            ("language", "en"),
            ("time_zone", "Europe/London"),
            ("external_id", "E-1815"),
            ("joining_date", "1843-09-01"),
            ("attributes.cost_center", "CC-12"),
            ("attributes.badge-no.2", "7"),
        ];
        Recipient {
            properties: properties
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..ada()
        }
    }

    fn text(body: &str, r: &Recipient) -> String {
        Template::parse("", body, None)
            .expect("valid template")
            .render(r)
            .text
    }

    #[test]
    fn every_directory_property_is_a_placeholder() {
        let r = ada_in_the_directory();
        for (body, want) in [
            ("{{department}}", "Analytical Engines"),
            ("{{job_title}}", "Programmer"),
            ("{{location}}", "London"),
            ("{{language}}", "en"),
            ("{{ time_zone }}", "Europe/London"),
            ("{{external_id}}", "E-1815"),
            ("{{joining_date}}", "1843-09-01"),
            ("{{attributes.cost_center}}", "CC-12"),
            ("{{attributes.badge-no.2}}", "7"),
            ("{{phone}}", ""),
        ] {
            assert_eq!(text(body, &r), want, "{body}");
        }
        // Known but not filled: empty, as a missing first name always was.
        assert_eq!(text("[{{attributes.unset}}]", &r), "[]");
        assert_eq!(text("[{{department}}]", &ada()), "[]");
    }

    #[test]
    fn seed_brackets_mean_the_brace_forms_and_other_brackets_stay() {
        let r = ada();
        assert_eq!(
            text("Hello, [FIRSTNAME] +[LASTNAME]", &r),
            "Hello, Ada +<Lovelace>"
        );
        assert_eq!(
            text("[FULLNAME] <[EMAIL]> [[FIRSTNAME]]", &r),
            "Ada <Lovelace> <ada@example.org> [Ada]"
        );
        for literal in ["[draft] [firstname] [FIRSTNAME [PHONE] []", "[", "x]"] {
            assert_eq!(text(literal, &r), literal);
        }
        let t = Template::parse("[FIRSTNAME]", "x", Some("<p>[LASTNAME]</p>")).expect("valid");
        let m = t.render(&r);
        assert_eq!(m.subject, "Ada");
        assert_eq!(m.html.as_deref(), Some("<p>&lt;Lovelace&gt;</p>"));
    }

    #[test]
    fn fallbacks_stand_in_for_missing_or_empty_values() {
        let nameless = Recipient {
            first_name: "".into(),
            last_name: "  ".into(),
            ..ada()
        };
        for body in [
            "Hi {{first_name | \"there\"}}",
            "Hi {{first_name|'there'}}",
            "Hi {{ first_name |   \"there\" }}",
        ] {
            assert_eq!(text(body, &nameless), "Hi there", "{body}");
            assert_eq!(text(body, &ada()), "Hi Ada", "{body}");
        }
        assert_eq!(text("{{last_name | 'colleague'}}", &nameless), "colleague");
        assert_eq!(text("{{department | \"your team\"}}", &ada()), "your team");
        assert_eq!(
            text(
                "{{attributes.cost_center | \"none\"}}",
                &ada_in_the_directory()
            ),
            "CC-12"
        );
        // A quoted fallback may hold the characters the syntax uses.
        assert_eq!(
            text("{{first_name | \"}} | 'x' {{\"}}!", &nameless),
            "}} | 'x' {{!"
        );
        assert_eq!(text("{{first_name | ''}}!", &nameless), "!");
        // Without a fallback a missing value renders empty, as before.
        assert_eq!(text("Hi {{first_name}}!", &nameless), "Hi !");
    }

    #[test]
    fn html_escapes_values_and_fallbacks() {
        let t = Template::parse(
            "{{last_name | \"<b>\"}}",
            "x",
            Some("<p>{{department | \"R&D <team>\"}} {{last_name | 'x'}}</p>"),
        )
        .expect("valid");
        let m = t.render(&ada());
        assert_eq!(
            m.html.as_deref(),
            Some("<p>R&amp;D &lt;team&gt; &lt;Lovelace&gt;</p>")
        );
        assert_eq!(m.subject, "<Lovelace>", "the subject is not HTML");
    }

    #[test]
    fn malformed_fallbacks_are_errors() {
        for body in [
            "{{first_name | there}}",
            "{{first_name | \"there'}}",
            "{{first_name | \"a\" \"b\"}}",
            "{{first_name | \"there\" x}}",
            "{{first_name |}}",
        ] {
            assert_eq!(
                Template::parse("", body, None),
                Err(TemplateError::BadFallback {
                    field: "body",
                    name: "first_name".into()
                }),
                "{body}"
            );
        }
        // A quote left open runs to the end of the text: the fallback is named.
        assert!(matches!(
            Template::parse("", "{{first_name | \"there}}", None),
            Err(TemplateError::BadFallback { .. })
        ));
        assert!(matches!(
            Template::parse("", "{{first_name | \"there", None),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            Template::parse("", "{{nickname | \"x\"}}", None),
            Err(TemplateError::UnknownPlaceholder { .. })
        ));
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_list() {
        for name in [
            "nickname",
            "attributes.",
            "attributes.a b",
            "attributes",
            "Department",
            "FIRSTNAME",
        ] {
            let body = format!("{{{{{name}}}}}");
            let err = Template::parse("", &body, None).expect_err(&body);
            assert_eq!(
                err,
                TemplateError::UnknownPlaceholder {
                    field: "body",
                    name: name.into()
                }
            );
            let message = err.to_string();
            for known in [
                "first_name",
                "department",
                "joining_date",
                "attributes.<key>",
                "[FIRSTNAME]",
            ] {
                assert!(message.contains(known), "{message}");
            }
        }
        let long_key = format!("{{{{attributes.{}}}}}", "k".repeat(65));
        assert!(Template::parse("", &long_key, None).is_err());
    }

    #[test]
    fn a_recipient_of_the_previous_format_decodes_and_renders_fallbacks() {
        let old = serde_json::json!({
            "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@example.org", "phone": null, "teams": null
        });
        let r: Recipient = serde_json::from_value(old).expect("an old job's recipient");
        assert!(r.properties.is_empty());
        assert_eq!(
            text(
                "[FIRSTNAME] of {{department | \"the team\"}}{{attributes.k}}",
                &r
            ),
            "Ada of the team"
        );
        // And a recipient without properties is written as before.
        let json = serde_json::to_value(ada()).expect("serializes");
        assert!(json.get("properties").is_none(), "{json}");
        let full = serde_json::to_value(ada_in_the_directory()).expect("serializes");
        assert_eq!(full["properties"]["attributes.cost_center"], "CC-12");
    }

    #[test]
    fn card_input_ids_refuse_bracket_placeholders_too() {
        let card = serde_json::json!({"type": "AdaptiveCard", "version": "1.5",
            "body": [{"type": "Input.Text", "id": "q-[FIRSTNAME]"}]});
        let t = Template::parse("", "x", None).expect("valid");
        assert!(matches!(
            t.with_teams(TeamsFormat::AdaptiveCard, Some(&card)),
            Err(TemplateError::InvalidCard(_))
        ));
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
                properties: BTreeMap::new(),
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
