use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not zero.
/// Spaces, dashes, dots and parentheses in the input are dropped before the check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an E.164 phone number (expected + and 8 to 15 digits)")]
pub struct InvalidPhoneNumber(pub String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, InvalidPhoneNumber> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact
            .strip_prefix('+')
            .ok_or_else(|| InvalidPhoneNumber(raw.to_owned()))?;
        let ok = (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(compact))
        } else {
            Err(InvalidPhoneNumber(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhoneNumber;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_formatting() {
        let p = PhoneNumber::parse("+33 (6) 12-34-56-78").expect("valid");
        assert_eq!(p.as_str(), "+33612345678");
    }

    #[test]
    fn rejects_non_e164() {
        for bad in [
            "0612345678",
            "+0612345678",
            "+12",
            "+1234567890123456",
            "+33abc45678",
        ] {
            assert!(
                PhoneNumber::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
