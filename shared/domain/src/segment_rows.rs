//! What the rows of a segment file (or a pasted list) mean: a value with an `@` is an e-mail,
//! anything else an external id; an optional header names the columns; extra columns are
//! ignored with one warning; a value seen before is a duplicate row. Turning a person key
//! into a person (unknown, deactivated, opted out) is the store's part.

use crate::EmailAddress;
use std::collections::HashSet;
use std::fmt;

/// Longest external id accepted; longer values are not ids (and would bloat the report).
pub const MAX_EXTERNAL_ID_LEN: usize = 200;

/// How a row names a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemberKey {
    Email(EmailAddress),
    ExternalId(String),
}

impl MemberKey {
    /// The key as compared for duplicates: e-mails case-insensitively (as the directory
    /// stores them), external ids exactly.
    fn dedup_key(&self) -> String {
        match self {
            MemberKey::Email(e) => format!("e:{}", e.as_str().to_lowercase()),
            MemberKey::ExternalId(id) => format!("x:{id}"),
        }
    }
}

/// Why a row added nobody. The strings are the report's `reason` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowProblem {
    UnknownPerson,
    InvalidEmail,
    DuplicateRow,
    OptedOut,
    Deactivated,
    EmptyRow,
}

impl RowProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            RowProblem::UnknownPerson => "unknown_person",
            RowProblem::InvalidEmail => "invalid_email",
            RowProblem::DuplicateRow => "duplicate_row",
            RowProblem::OptedOut => "opted_out",
            RowProblem::Deactivated => "deactivated",
            RowProblem::EmptyRow => "empty_row",
        }
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of input, read: its number (the file's line, or the position in a list), the
/// value as given, and the person key or the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub row: i64,
    pub value: String,
    pub key: Result<MemberKey, RowProblem>,
}

/// A value of unknown kind: `@` makes it an e-mail.
pub fn parse_any(raw: &str) -> Result<MemberKey, RowProblem> {
    let v = raw.trim();
    if v.contains('@') {
        parse_email(v)
    } else {
        parse_external_id(v)
    }
}

pub fn parse_email(raw: &str) -> Result<MemberKey, RowProblem> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(RowProblem::EmptyRow);
    }
    EmailAddress::parse(v)
        .map(MemberKey::Email)
        .map_err(|_| RowProblem::InvalidEmail)
}

pub fn parse_external_id(raw: &str) -> Result<MemberKey, RowProblem> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(RowProblem::EmptyRow);
    }
    // An id is one token; anything else cannot match one, so it names nobody.
    if v.chars().count() > MAX_EXTERNAL_ID_LEN || v.chars().any(char::is_control) {
        return Err(RowProblem::UnknownPerson);
    }
    Ok(MemberKey::ExternalId(v.to_owned()))
}

/// Which columns hold what, from a header row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Columns {
    email: Option<usize>,
    external_id: Option<usize>,
}

fn header_word(field: &str) -> Option<HeaderWord> {
    let norm: String = field
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    match norm.as_str() {
        "email" | "emails" | "mail" | "emailaddress" | "mailaddress" | "workemail" | "upn"
        | "userprincipalname" => Some(HeaderWord::Email),
        "id" | "externalid" | "externalids" | "userid" | "employeeid" | "employeenumber"
        | "staffid" | "personid" | "emailorid" | "emailorexternalid" => Some(HeaderWord::Id),
        _ => None,
    }
}

enum HeaderWord {
    Email,
    Id,
}

/// Reads the rows of one file or list in order: detects the header on the first record,
/// warns once about extra columns, and reports duplicates of values seen before.
#[derive(Debug, Default)]
pub struct SegmentRowReader {
    started: bool,
    columns: Option<Columns>,
    seen: HashSet<String>,
    extra_columns_warned: bool,
    warnings: Vec<String>,
}

impl SegmentRowReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one record (its line number and fields). `None` for the header and for a
    /// record with nothing in it.
    pub fn read(&mut self, line: i64, fields: &[String]) -> Option<MemberRow> {
        if fields.iter().all(|f| f.trim().is_empty()) {
            return None;
        }
        if !self.started {
            self.started = true;
            if let Some(columns) = self.detect_header(fields) {
                self.columns = Some(columns);
                return None;
            }
        }
        let (value, key) = match &self.columns {
            Some(cols) => {
                let cell = |i: Option<usize>| {
                    i.and_then(|i| fields.get(i))
                        .map(|v| v.trim())
                        .filter(|v| !v.is_empty())
                };
                match (cell(cols.email), cell(cols.external_id)) {
                    (Some(email), _) => (email.to_owned(), parse_email(email)),
                    (None, Some(id)) if cols.email.is_none() => (id.to_owned(), parse_any(id)),
                    (None, Some(id)) => (id.to_owned(), parse_external_id(id)),
                    (None, None) => (fields.join(","), Err(RowProblem::EmptyRow)),
                }
            }
            None => {
                if fields.len() > 1
                    && fields[1..].iter().any(|f| !f.trim().is_empty())
                    && !self.extra_columns_warned
                {
                    self.extra_columns_warned = true;
                    self.warnings.push(format!(
                        "line {line}: only the first column is read; the other columns are ignored"
                    ));
                }
                let first = fields.first().map(|v| v.trim()).unwrap_or_default();
                (first.to_owned(), parse_any(first))
            }
        };
        let key = key.and_then(|k| {
            if self.seen.insert(k.dedup_key()) {
                Ok(k)
            } else {
                Err(RowProblem::DuplicateRow)
            }
        });
        Some(MemberRow {
            row: line,
            value: truncate(&value, 320),
            key,
        })
    }

    /// Warnings about the file as a whole (ignored columns).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn detect_header(&mut self, fields: &[String]) -> Option<Columns> {
        if fields.iter().any(|f| f.contains('@')) {
            return None;
        }
        let mut columns = Columns {
            email: None,
            external_id: None,
        };
        let mut ignored = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            match header_word(f) {
                Some(HeaderWord::Email) if columns.email.is_none() => columns.email = Some(i),
                Some(HeaderWord::Id) if columns.external_id.is_none() => {
                    columns.external_id = Some(i)
                }
                _ if f.trim().is_empty() => {}
                _ => ignored.push(f.trim().to_owned()),
            }
        }
        if columns.email.is_none() && columns.external_id.is_none() {
            return None;
        }
        if !ignored.is_empty() {
            self.extra_columns_warned = true;
            self.warnings.push(format!(
                "columns ignored: {} (only e-mail and external id columns are read)",
                ignored.join(", ")
            ));
        }
        Some(columns)
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|s| s.to_string()).collect()
    }

    fn read_all(rows: &[&[&str]]) -> (Vec<MemberRow>, Vec<String>) {
        let mut reader = SegmentRowReader::new();
        let out = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| reader.read(i as i64 + 1, &f(r)))
            .collect();
        (out, reader.warnings().to_vec())
    }

    #[test]
    fn without_a_header_each_value_is_an_email_or_an_external_id() {
        let (rows, warnings) = read_all(&[&["ada@example.org"], &["E-42"], &["bad@"], &[" "]]);
        assert!(warnings.is_empty());
        assert_eq!(rows.len(), 3);
        assert!(matches!(rows[0].key, Ok(MemberKey::Email(_))));
        assert_eq!(rows[1].key, Ok(MemberKey::ExternalId("E-42".into())));
        assert_eq!(rows[2].key, Err(RowProblem::InvalidEmail));
        assert_eq!(rows[2].row, 3);
    }

    #[test]
    fn a_header_names_the_columns_and_extra_ones_are_warned_about_once() {
        let (rows, warnings) = read_all(&[
            &["Name", "E-mail", "External ID"],
            &["Ada", "ada@example.org", ""],
            &["Bob", "", "E-7"],
            &["Cy", "", ""],
        ]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("Name"));
        assert!(matches!(rows[0].key, Ok(MemberKey::Email(_))));
        assert_eq!(rows[1].key, Ok(MemberKey::ExternalId("E-7".into())));
        assert_eq!(rows[2].key, Err(RowProblem::EmptyRow));
    }

    #[test]
    fn extra_columns_without_a_header_warn_once() {
        let (rows, warnings) = read_all(&[&["a@x.io", "junk"], &["b@x.io", "more"]]);
        assert_eq!(rows.len(), 2);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn repeated_values_are_duplicates_whatever_the_case_of_the_email() {
        let (rows, _) = read_all(&[&["A@x.io"], &["a@X.IO"], &["E1"], &["E1"]]);
        assert_eq!(rows[1].key, Err(RowProblem::DuplicateRow));
        assert_eq!(rows[3].key, Err(RowProblem::DuplicateRow));
        assert!(rows[0].key.is_ok() && rows[2].key.is_ok());
    }

    #[test]
    fn an_email_column_holding_a_non_email_is_invalid() {
        let (rows, _) = read_all(&[&["email"], &["E1"]]);
        assert_eq!(rows[0].key, Err(RowProblem::InvalidEmail));
    }
}
