//! Dates and times from outside, within the range every part of the fleet handles: years 1
//! to 9999 (ISO 8601's four digits). Postgres refuses dates before 4714 BC, chrono accepts
//! years up to 262,142, and neither extreme means anything for a campaign start or a joining
//! date; a refusal at the edge is a 422 naming the field instead of a 500 from the store.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::ops::Deref;

pub const MIN_YEAR: i32 = 1;
pub const MAX_YEAR: i32 = 9999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between the years {MIN_YEAR} and {MAX_YEAR}")]
pub struct OutOfRange;

/// Checks a calendar date from outside.
pub fn check_date(d: NaiveDate) -> Result<NaiveDate, OutOfRange> {
    if (MIN_YEAR..=MAX_YEAR).contains(&d.year()) {
        Ok(d)
    } else {
        Err(OutOfRange)
    }
}

/// An instant from outside (RFC 3339), within years 1 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "DateTime<Utc>", into = "DateTime<Utc>")]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn new(t: DateTime<Utc>) -> Result<Self, OutOfRange> {
        check_date(t.date_naive())?;
        Ok(Self(t))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl TryFrom<DateTime<Utc>> for Timestamp {
    type Error = OutOfRange;
    fn try_from(t: DateTime<Utc>) -> Result<Self, OutOfRange> {
        Self::new(t)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl Deref for Timestamp {
    type Target = DateTime<Utc>;
    fn deref(&self) -> &DateTime<Utc> {
        &self.0
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, years 1 to 9999"))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_outside_years_1_to_9999_are_refused() {
        for ok in [
            "2026-01-05T09:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert!(
                serde_json::from_str::<Timestamp>(&format!("\"{ok}\"")).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "-4714-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "+262142-12-31T00:00:00Z",
        ] {
            let err = serde_json::from_str::<Timestamp>(&format!("\"{bad}\""));
            assert!(err.is_err(), "{bad}");
        }
        assert!(check_date(NaiveDate::from_ymd_opt(-4714, 1, 1).expect("date")).is_err());
        assert!(check_date(NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")).is_ok());
    }
}
