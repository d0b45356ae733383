//! Directory rows from outside (a CSV line under its header, a JSON object) turned into
//! checked [`ImportPerson`]s, with one error per bad field. A row with a bad field is
//! refused whole (half a person is worse than none); the other rows go on.

use chrono::NaiveDate;
use pushfleet_domain::criteria::valid_attribute_key;
use pushfleet_domain::{check_date, check_json_text, parse_time_zone, EmailAddress, PhoneNumber};
use pushfleet_store::{import_field as field, ImportPerson, RowError};
use serde_json::{Map, Value};

const MAX_TEXT: usize = 200;

/// What a CSV column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    ExternalId,
    Email,
    FirstName,
    LastName,
    Phone,
    TimeZone,
    Department,
    JobTitle,
    Location,
    Language,
    Teams,
    Roles,
    JoiningDate,
    Active,
    Manager,
    HrPartner,
    TeamLeaders,
    Coaches,
    TeamsServiceUrl,
    TeamsConversationId,
    TeamsUserId,
    TeamsTenantId,
    Attribute(String),
    Ignored,
}

/// The columns of a CSV file, from its header row.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    columns: Vec<Column>,
}

/// Header names as people write them: case, spaces and dashes do not matter.
fn normalise(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

fn column(name: &str) -> Option<Column> {
    let n = normalise(name);
    if let Some(key) = n
        .strip_prefix("attributes.")
        .or_else(|| n.strip_prefix("attribute."))
    {
        return valid_attribute_key(key).then(|| Column::Attribute(key.to_owned()));
    }
    Some(match n.as_str() {
        "external_id" | "externalid" | "employee_id" | "id" => Column::ExternalId,
        "email" | "e_mail" | "email_address" | "mail" => Column::Email,
        "first_name" | "firstname" | "given_name" => Column::FirstName,
        "last_name" | "lastname" | "surname" | "family_name" => Column::LastName,
        "phone" | "mobile" | "phone_number" => Column::Phone,
        "time_zone" | "timezone" | "tz" => Column::TimeZone,
        "department" => Column::Department,
        "job_title" | "title" => Column::JobTitle,
        "location" => Column::Location,
        "language" | "locale" => Column::Language,
        "teams" | "team" => Column::Teams,
        "roles" | "role" => Column::Roles,
        "joining_date" | "joined" | "join_date" | "start_date" => Column::JoiningDate,
        "active" => Column::Active,
        "manager" => Column::Manager,
        "hr_partner" | "hr_business_partner" => Column::HrPartner,
        "team_leaders" | "team_leader" => Column::TeamLeaders,
        "coaches" | "coach" => Column::Coaches,
        "teams_service_url" => Column::TeamsServiceUrl,
        "teams_conversation_id" => Column::TeamsConversationId,
        "teams_user_id" => Column::TeamsUserId,
        "teams_tenant_id" => Column::TeamsTenantId,
        _ => return None,
    })
}

impl ColumnMap {
    /// Reads a header row. Unknown columns are ignored, with a warning each; a header that
    /// names neither `email` nor `external_id` is refused (no row could be matched).
    pub fn from_header(header: &[String]) -> Result<(ColumnMap, Vec<String>), String> {
        let mut warnings = Vec::new();
        let mut seen = Vec::new();
        let mut columns = Vec::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            match column(name) {
                Some(c) if seen.contains(&c) => {
                    warnings.push(format!(
                        "column {} (\"{name}\") repeats an earlier column and is ignored",
                        i + 1
                    ));
                    columns.push(Column::Ignored);
                }
                Some(c) => {
                    seen.push(c.clone());
                    columns.push(c);
                }
                None => {
                    warnings.push(format!(
                        "column {} (\"{name}\") is not a directory property and is ignored",
                        i + 1
                    ));
                    columns.push(Column::Ignored);
                }
            }
        }
        if !seen.contains(&Column::Email) && !seen.contains(&Column::ExternalId) {
            return Err(
                "the header row must name an email or an external_id column (is the first row a header?)"
                    .into(),
            );
        }
        Ok((ColumnMap { columns }, warnings))
    }

    /// One CSV record under this header.
    pub fn person(&self, row: i64, fields: &[String]) -> Result<ImportPerson, Vec<RowError>> {
        let mut b = RowBuilder::new(row);
        if fields.len() > self.columns.len() {
            b.error(
                None,
                format!(
                    "{} fields but the header has {} columns",
                    fields.len(),
                    self.columns.len()
                ),
            );
        }
        let mut teams = TeamsRef::default();
        for (column, value) in self.columns.iter().zip(fields) {
            let v = value.trim();
            match column {
                Column::ExternalId => b.external_id(v),
                Column::Email => b.email(v),
                Column::FirstName => b.text(field::FIRST_NAME, "first_name", v),
                Column::LastName => b.text(field::LAST_NAME, "last_name", v),
                Column::Phone => b.phone(v),
                Column::TimeZone => b.time_zone(v),
                Column::Department => b.text(field::DEPARTMENT, "department", v),
                Column::JobTitle => b.text(field::JOB_TITLE, "job_title", v),
                Column::Location => b.text(field::LOCATION, "location", v),
                Column::Language => b.text(field::LANGUAGE, "language", v),
                Column::Teams => b.list(field::TEAMS, "teams", split_list(v)),
                Column::Roles => b.list(field::ROLES, "roles", split_list(v)),
                Column::JoiningDate => b.joining_date(v),
                Column::Active => b.active_text(v),
                Column::Manager => b.p.manager = Some(v.to_owned()),
                Column::HrPartner => b.p.hr_partner = Some(v.to_owned()),
                Column::TeamLeaders => b.p.team_leaders = Some(split_list(v)),
                Column::Coaches => b.p.coaches = Some(split_list(v)),
                Column::TeamsServiceUrl => teams.service_url = Some(v.to_owned()),
                Column::TeamsConversationId => teams.conversation_id = Some(v.to_owned()),
                Column::TeamsUserId => teams.user_id = Some(v.to_owned()),
                Column::TeamsTenantId => teams.tenant_id = Some(v.to_owned()),
                Column::Attribute(key) => b.attribute(key, v),
                Column::Ignored => {}
            }
        }
        if teams.given() {
            b.teams(teams);
        }
        b.finish()
    }
}

/// Lists in one CSV cell: `Alpha; Beta` or `Alpha|Beta`.
fn split_list(v: &str) -> Vec<String> {
    v.split([';', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Default)]
struct TeamsRef {
    service_url: Option<String>,
    conversation_id: Option<String>,
    user_id: Option<String>,
    tenant_id: Option<String>,
}

impl TeamsRef {
    fn given(&self) -> bool {
        self.service_url.is_some()
            || self.conversation_id.is_some()
            || self.user_id.is_some()
            || self.tenant_id.is_some()
    }
}

struct RowBuilder {
    p: ImportPerson,
    errors: Vec<RowError>,
}

fn non_empty(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl RowBuilder {
    fn new(row: i64) -> Self {
        Self {
            p: ImportPerson {
                row,
                ..Default::default()
            },
            errors: Vec::new(),
        }
    }

    fn error(&mut self, field: Option<&str>, message: impl Into<String>) {
        self.errors.push(RowError {
            row: self.p.row,
            field: field.map(str::to_owned),
            message: message.into(),
        });
    }

    fn checked_len(&mut self, name: &str, v: &str) -> bool {
        if v.chars().count() > MAX_TEXT {
            self.error(Some(name), format!("at most {MAX_TEXT} characters"));
            return false;
        }
        true
    }

    fn external_id(&mut self, v: &str) {
        if self.checked_len("external_id", v) {
            self.p.external_id = non_empty(v);
        }
    }

    fn email(&mut self, v: &str) {
        self.p.fields |= field::EMAIL;
        if v.is_empty() {
            self.p.email = None;
            return;
        }
        match EmailAddress::parse(v) {
            Ok(e) => self.p.email = Some(e.as_str().to_owned()),
            Err(e) => self.error(Some("email"), e.to_string()),
        }
    }

    fn text(&mut self, bit: i32, name: &str, v: &str) {
        if self.checked_len(name, v) {
            self.p.fields |= bit;
            let value = non_empty(v);
            match bit {
                field::FIRST_NAME => self.p.first_name = value,
                field::LAST_NAME => self.p.last_name = value,
                field::DEPARTMENT => self.p.department = value,
                field::JOB_TITLE => self.p.job_title = value,
                field::LOCATION => self.p.location = value,
                _ => self.p.language = value,
            }
        }
    }

    fn list(&mut self, bit: i32, name: &str, values: Vec<String>) {
        if values.len() > 100 || values.iter().any(|v| v.chars().count() > MAX_TEXT) {
            self.error(
                Some(name),
                format!("at most 100 names of at most {MAX_TEXT} characters"),
            );
            return;
        }
        self.p.fields |= bit;
        if bit == field::TEAMS {
            self.p.teams = values;
        } else {
            self.p.roles = values;
        }
    }

    fn phone(&mut self, v: &str) {
        self.p.fields |= field::PHONE;
        if v.is_empty() {
            self.p.phone = None;
            return;
        }
        match PhoneNumber::parse(v) {
            Ok(p) => self.p.phone = Some(p.as_str().to_owned()),
            Err(e) => self.error(Some("phone"), e.to_string()),
        }
    }

    fn time_zone(&mut self, v: &str) {
        self.p.fields |= field::TIME_ZONE;
        if v.is_empty() {
            self.p.time_zone = None;
            return;
        }
        match parse_time_zone(v) {
            Ok(_) => self.p.time_zone = Some(v.to_owned()),
            Err(e) => self.error(Some("time_zone"), e.to_string()),
        }
    }

    fn joining_date(&mut self, v: &str) {
        self.p.fields |= field::JOINING_DATE;
        if v.is_empty() {
            self.p.joining_date = None;
            return;
        }
        match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Ok(d) => match check_date(d) {
                Ok(d) => self.p.joining_date = Some(d),
                Err(e) => self.error(Some("joining_date"), e.to_string()),
            },
            Err(_) => self.error(Some("joining_date"), "a date as YYYY-MM-DD"),
        }
    }

    fn active_text(&mut self, v: &str) {
        match v.to_lowercase().as_str() {
            "" => {}
            "true" | "yes" | "1" | "active" => self.active(true),
            "false" | "no" | "0" | "inactive" | "deactivated" => self.active(false),
            _ => self.error(Some("active"), "true or false"),
        }
    }

    fn active(&mut self, v: bool) {
        self.p.fields |= field::ACTIVE;
        self.p.active = Some(v);
    }

    fn attribute(&mut self, key: &str, v: &str) {
        if !self.checked_len(key, v) {
            return;
        }
        self.p.fields |= field::ATTRIBUTES;
        let attrs = self
            .p
            .attributes
            .get_or_insert_with(|| Value::Object(Map::new()));
        if let (Value::Object(map), Some(v)) = (attrs, non_empty(v)) {
            map.insert(key.to_owned(), Value::String(v));
        }
    }

    fn teams(&mut self, t: TeamsRef) {
        self.p.fields |= field::TEAMS_CONVERSATION;
        let clean = |v: Option<String>| v.and_then(|s| non_empty(&s));
        let (url, conversation, user, tenant) = (
            clean(t.service_url),
            clean(t.conversation_id),
            clean(t.user_id),
            clean(t.tenant_id),
        );
        if url.is_none() && conversation.is_none() && user.is_none() && tenant.is_none() {
            self.p.teams_conversation = None;
            return;
        }
        let url_ok = url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
        if !url_ok {
            self.error(Some("teams_service_url"), "must be an http(s) URL");
            return;
        }
        if conversation.is_none() && (user.is_none() || tenant.is_none()) {
            self.error(
                Some("teams_conversation_id"),
                "give the conversation id, or the user id and tenant id to create it",
            );
            return;
        }
        self.p.teams_conversation = Some(serde_json::json!({
            "service_url": url,
            "conversation_id": conversation,
            "user_id": user,
            "tenant_id": tenant,
        }));
    }

    fn finish(self) -> Result<ImportPerson, Vec<RowError>> {
        let mut errors = self.errors;
        if errors.is_empty() && self.p.external_id.is_none() && self.p.email.is_none() {
            errors.push(RowError {
                row: self.p.row,
                field: None,
                message: "a row needs an e-mail or an external id".into(),
            });
        }
        if errors.is_empty() {
            Ok(self.p)
        } else {
            Err(errors)
        }
    }
}

/// One JSON object (an element of `{"people": [...]}` or a line of NDJSON). Keys are the
/// CSV column names; `teams` and `roles` are lists, `active` a boolean, `attributes` an
/// object of strings, `teams_conversation` the conversation reference object.
pub fn person_from_json(row: i64, value: &Value) -> Result<ImportPerson, Vec<RowError>> {
    let mut b = RowBuilder::new(row);
    let Some(obj) = value.as_object() else {
        b.error(None, "each person is a JSON object");
        return Err(b.errors);
    };
    if let Err((path, e)) = check_json_text(value) {
        b.error(Some(&path), e.to_string());
        return Err(b.errors);
    }
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::Null => Some(String::new()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    };
    let strings = |v: &Value| -> Option<Vec<String>> {
        match v {
            Value::Null => Some(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(|s| s.trim().to_owned()))
                .collect::<Option<Vec<_>>>()
                .map(|v| v.into_iter().filter(|s| !s.is_empty()).collect()),
            _ => None,
        }
    };
    let mut teams = TeamsRef::default();
    for (key, v) in obj {
        let k = key.as_str();
        let want_text = |b: &mut RowBuilder| -> Option<String> {
            let t = text(v);
            if t.is_none() {
                b.error(Some(k), "must be a string or null");
            }
            t.map(|s| s.trim().to_owned())
        };
        match k {
            "external_id" => {
                if let Some(s) = want_text(&mut b) {
                    b.external_id(&s)
                }
            }
            "email" => {
                if let Some(s) = want_text(&mut b) {
                    b.email(&s)
                }
            }
            "phone" => {
                if let Some(s) = want_text(&mut b) {
                    b.phone(&s)
                }
            }
            "time_zone" => {
                if let Some(s) = want_text(&mut b) {
                    b.time_zone(&s)
                }
            }
            "joining_date" => {
                if let Some(s) = want_text(&mut b) {
                    b.joining_date(&s)
                }
            }
            "first_name" | "last_name" | "department" | "job_title" | "location" | "language" => {
                let bit = match k {
                    "first_name" => field::FIRST_NAME,
                    "last_name" => field::LAST_NAME,
                    "department" => field::DEPARTMENT,
                    "job_title" => field::JOB_TITLE,
                    "location" => field::LOCATION,
                    _ => field::LANGUAGE,
                };
                if let Some(s) = want_text(&mut b) {
                    b.text(bit, k, &s)
                }
            }
            "teams" | "roles" => match strings(v) {
                Some(list) => b.list(
                    if k == "teams" {
                        field::TEAMS
                    } else {
                        field::ROLES
                    },
                    k,
                    list,
                ),
                None => b.error(Some(k), "must be a list of strings"),
            },
            "active" => match v {
                Value::Bool(a) => b.active(*a),
                _ => b.error(Some(k), "must be true or false"),
            },
            "manager" | "hr_partner" => {
                if let Some(s) = want_text(&mut b) {
                    if k == "manager" {
                        b.p.manager = Some(s)
                    } else {
                        b.p.hr_partner = Some(s)
                    }
                }
            }
            "team_leaders" | "coaches" => match strings(v) {
                Some(list) if k == "team_leaders" => b.p.team_leaders = Some(list),
                Some(list) => b.p.coaches = Some(list),
                None => b.error(Some(k), "must be a list of strings"),
            },
            "attributes" => match v {
                Value::Object(map) => {
                    b.p.fields |= field::ATTRIBUTES;
                    b.p.attributes = Some(Value::Object(Map::new()));
                    for (ak, av) in map {
                        if !valid_attribute_key(ak) {
                            b.error(
                                Some("attributes"),
                                format!("\"{ak}\" is not a valid key (letters, digits, _ - .)"),
                            );
                        } else if let Some(s) = av.as_str() {
                            b.attribute(ak, s);
                        } else {
                            b.error(Some("attributes"), format!("\"{ak}\" must be a string"));
                        }
                    }
                }
                Value::Null => {
                    b.p.fields |= field::ATTRIBUTES;
                    b.p.attributes = None;
                }
                _ => b.error(Some(k), "must be an object of strings"),
            },
            "teams_conversation" => match v {
                Value::Null => b.teams(TeamsRef::default()),
                Value::Object(t) => {
                    let get = |n: &str| t.get(n).and_then(Value::as_str).map(str::to_owned);
                    teams = TeamsRef {
                        service_url: get("service_url"),
                        conversation_id: get("conversation_id"),
                        user_id: get("user_id"),
                        tenant_id: get("tenant_id"),
                    };
                    if !teams.given() {
                        b.teams(TeamsRef::default());
                    }
                }
                _ => b.error(Some(k), "must be an object"),
            },
            other => b.error(Some(other), "unknown field"),
        }
    }
    if teams.given() {
        b.teams(teams);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn header_names_as_people_write_them() {
        let (map, warnings) = ColumnMap::from_header(&strings(&[
            "E-mail",
            "First Name",
            "Joining date",
            "favourite colour",
            "Attributes.cost_center",
        ]))
        .expect("header");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("favourite colour"));
        let p = map
            .person(
                2,
                &strings(&["Ada@Corp.io", "Ada", "2026-01-05", "blue", "CC-1"]),
            )
            .expect("valid");
        assert_eq!(p.first_name.as_deref(), Some("Ada"));
        assert_eq!(p.joining_date, NaiveDate::from_ymd_opt(2026, 1, 5));
        assert_eq!(
            p.attributes,
            Some(serde_json::json!({"cost_center": "CC-1"}))
        );
        assert_eq!(
            p.fields & field::DEPARTMENT,
            0,
            "absent columns are left alone"
        );
    }

    #[test]
    fn a_header_without_a_key_is_refused() {
        assert!(ColumnMap::from_header(&strings(&["name", "department"])).is_err());
    }

    #[test]
    fn bad_fields_are_reported_each() {
        let (map, _) =
            ColumnMap::from_header(&strings(&["email", "phone", "joining_date", "active"]))
                .expect("header");
        let errors = map
            .person(7, &strings(&["not-an-email", "12", "05/01/2026", "maybe"]))
            .expect_err("invalid");
        let fields: Vec<_> = errors
            .iter()
            .map(|e| e.field.clone().unwrap_or_default())
            .collect();
        assert_eq!(fields, vec!["email", "phone", "joining_date", "active"]);
        assert!(errors.iter().all(|e| e.row == 7));
    }

    #[test]
    fn json_people() {
        let p = person_from_json(
            0,
            &serde_json::json!({"external_id": "E1", "teams": ["A", " "], "active": false,
                                "manager": "boss@corp.io", "attributes": {"k": "v"}}),
        )
        .expect("valid");
        assert_eq!(p.teams, vec!["A"]);
        assert_eq!(p.active, Some(false));
        assert_eq!(p.manager.as_deref(), Some("boss@corp.io"));
        let errors = person_from_json(1, &serde_json::json!({"email": 3, "nickname": "x"}))
            .expect_err("invalid");
        assert_eq!(errors.len(), 2);
    }
}
