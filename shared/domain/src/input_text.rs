//! Text from outside that Postgres can store. Postgres refuses U+0000 in `text` and `jsonb`,
//! and a refusal deep in a statement is a 500; so every text that enters through the API (a
//! JSON field, a CSV cell, a free-form JSON value such as criteria or attributes) is checked
//! here, once, and refused with the field named.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::ops::Deref;

/// Why a text cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not contain a NUL character (U+0000)")]
    Nul,
}

/// Checks a text from outside.
pub fn check_text(s: &str) -> Result<(), TextError> {
    if s.contains('\0') {
        return Err(TextError::Nul);
    }
    Ok(())
}

/// Text that is safe to store: no U+0000. Deserializing refuses anything else, so a request
/// type whose fields are `Text` cannot carry one past the edge.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    pub fn parse(s: impl Into<String>) -> Result<Self, TextError> {
        let s = s.into();
        check_text(&s)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Text {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, TextError> {
        Self::parse(s)
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl utoipa::PartialSchema for Text {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[^\\u0000]*$"))
            .description(Some("Text without U+0000 (NUL)"))
            .into()
    }
}

impl utoipa::ToSchema for Text {}

/// Checks every string (keys too) in a free-form JSON value. Returns the path of the first
/// bad one (`a.b[2]`, relative to `value`) and why.
pub fn check_json_text(value: &Value) -> Result<(), (String, TextError)> {
    fn walk(v: &Value, path: &mut String) -> Result<(), (String, TextError)> {
        match v {
            Value::String(s) => check_text(s).map_err(|e| (path.clone(), e)),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&k.replace('\0', "\\u0000"));
                    check_text(k).map_err(|e| (path.clone(), e))?;
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_refused_and_everything_else_kept() {
        assert_eq!(Text::parse("a\0b"), Err(TextError::Nul));
        let t = Text::parse("Zoë \u{1F600} \t\n").expect("text");
        assert_eq!(t, "Zoë \u{1F600} \t\n");
        assert!(serde_json::from_value::<Text>(json!("a\u{0}b")).is_err());
        assert_eq!(
            serde_json::from_value::<Text>(json!("ok")).expect("ok"),
            "ok"
        );
    }

    #[test]
    fn a_json_value_names_the_bad_path() {
        assert_eq!(
            check_json_text(&json!({"a": [1, "x", {"b": "ok"}]})),
            Ok(())
        );
        let bad = json!({"all": [{"property": "first_name", "value": "a\u{0}"}]});
        assert_eq!(
            check_json_text(&bad),
            Err(("all[0].value".into(), TextError::Nul))
        );
        let key = json!({"ok": {"k\u{0}": 1}});
        assert_eq!(
            check_json_text(&key).map_err(|(p, _)| p),
            Err("ok.k\\u0000".into())
        );
    }
}
