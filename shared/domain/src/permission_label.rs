//! Permission labels (seed 003): "finance", "country:fi", an Entra group's name. Campaigns,
//! templates, audiences and segments carry them; an operator limited to labels sees and
//! changes only what carries one of theirs. Compared exactly, so they are kept as given:
//! 1 to 100 characters, no control characters, no spaces at either end.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_LABEL_CHARS: usize = 100;
/// The most labels one entity or operator carries.
pub const MAX_LABELS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLabel {
    #[error("a permission label must be 1 to {MAX_LABEL_CHARS} characters")]
    Length,
    #[error("a permission label must not contain control characters")]
    Control,
    #[error("a permission label must not begin or end with a space")]
    Padded,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PermissionLabel(String);

impl PermissionLabel {
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidLabel> {
        let s = s.into();
        let chars = s.chars().count();
        if chars == 0 || chars > MAX_LABEL_CHARS {
            return Err(InvalidLabel::Length);
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidLabel::Control);
        }
        if s.trim() != s {
            return Err(InvalidLabel::Padded);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PermissionLabel {
    type Error = InvalidLabel;
    fn try_from(s: String) -> Result<Self, InvalidLabel> {
        Self::parse(s)
    }
}

impl From<PermissionLabel> for String {
    fn from(l: PermissionLabel) -> String {
        l.0
    }
}

impl fmt::Debug for PermissionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for PermissionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl utoipa::PartialSchema for PermissionLabel {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_LABEL_CHARS))
            .pattern(Some(
                r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$",
            ))
            .description(Some("A permission label (seed 003)"))
            .into()
    }
}

impl utoipa::ToSchema for PermissionLabel {}

/// Sorted, without repeats, at most [`MAX_LABELS`].
pub fn normalise(labels: Vec<PermissionLabel>) -> Result<Vec<String>, TooManyLabels> {
    let mut labels: Vec<String> = labels.into_iter().map(String::from).collect();
    labels.sort();
    labels.dedup();
    if labels.len() > MAX_LABELS {
        return Err(TooManyLabels);
    }
    Ok(labels)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at most {MAX_LABELS} permission labels")]
pub struct TooManyLabels;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_kept_as_given_within_bounds() {
        assert!(PermissionLabel::parse("finance").is_ok());
        assert!(PermissionLabel::parse("Country: FI").is_ok());
        assert_eq!(PermissionLabel::parse(""), Err(InvalidLabel::Length));
        assert_eq!(
            PermissionLabel::parse("x".repeat(101)),
            Err(InvalidLabel::Length)
        );
        assert_eq!(PermissionLabel::parse("a\0b"), Err(InvalidLabel::Control));
        assert_eq!(PermissionLabel::parse(" hr"), Err(InvalidLabel::Padded));
        let parsed: Result<PermissionLabel, _> = serde_json::from_str("\"hr\\n\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn normalised_labels_are_sorted_and_unique() {
        let l = |s: &str| PermissionLabel::parse(s).expect("a label");
        assert_eq!(
            normalise(vec![l("b"), l("a"), l("b")]),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        let many = (0..51).map(|i| l(&format!("l{i}"))).collect();
        assert_eq!(normalise(many), Err(TooManyLabels));
    }
}
