//! Dynamic audience criteria (seed 000): a criterion is a property, an operation and a value
//! ("department equals Marketing", "joining date within the last 6 months", "has role
//! trainer", "reports to jane@corp.io"); criteria combine with AND inside a group and OR
//! between groups, and groups nest.
//!
//! This module parses the admin's JSON once, at the edge, into [`Criteria`], rejecting an
//! unknown property or an operation that does not fit the property's type with a message
//! that names the place. The store compiles a parsed tree to parameterised SQL; [`Criteria::
//! matches`] evaluates it in memory with the same meaning, which is what the property test
//! holds the SQL to.
//!
//! The meaning, precisely:
//! - Text comparisons ignore case. A missing (or empty) text value matches `is_empty` and
//!   `not_equals`, and no other operation.
//! - Teams and roles are identifiers chosen from a list: they match exactly.
//! - Dates compare with the evaluation day (`as_of`): `within_last` 6 months means
//!   `as_of - 6 months <= date <= as_of`; `more_than_ago` means `date < as_of - period`.
//!   A missing date matches only `is_empty`.
//! - `reports_to` follows the manager chain upwards (directly or through any number of
//!   managers); `is` on `manager`, `hr_partner`, `team_leader` or `coach` is the direct link.

use chrono::{Months, NaiveDate};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// Deeper trees are not something a person builds in a UI.
pub const MAX_DEPTH: usize = 8;
pub const MAX_CRITERIA: usize = 200;
pub const MAX_LIST_VALUES: usize = 1_000;
pub const MAX_VALUE_LEN: usize = 500;
/// JSON values in one criteria document, at most (200 criteria with their lists of values
/// fit); a larger document is refused while it is parsed.
pub const MAX_JSON_VALUES: usize = 50_000;

/// Criteria as they arrive, bounded while parsed.
pub type CriteriaJson = crate::BoundedJson<MAX_JSON_VALUES>;

/// A tree of criteria.
#[derive(Debug, Clone, PartialEq)]
pub enum Criteria {
    /// Every child matches (AND).
    All(Vec<Criteria>),
    /// At least one child matches (OR).
    Any(Vec<Criteria>),
    One(Criterion),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub property: Property,
    pub condition: Condition,
}

/// The text properties of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    Email,
    ExternalId,
    FirstName,
    LastName,
    Department,
    JobTitle,
    Location,
    Language,
    TimeZone,
    Phone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListField {
    Teams,
    Roles,
}

/// A person's links to other people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    Manager,
    HrPartner,
    TeamLeader,
    Coach,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Property {
    Text(TextField),
    /// A custom attribute, `attributes.<key>`; compared as text.
    Attribute(String),
    JoiningDate,
    List(ListField),
    Related(Relation),
    Segment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Days,
    Months,
}

/// "6 months", "30 days".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub amount: u32,
    pub unit: PeriodUnit,
}

impl Period {
    /// The day `self` before `as_of`; None when that is before the calendar starts.
    pub fn before(self, as_of: NaiveDate) -> Option<NaiveDate> {
        match self.unit {
            PeriodUnit::Days => as_of.checked_sub_days(chrono::Days::new(self.amount.into())),
            PeriodUnit::Months => as_of.checked_sub_months(Months::new(self.amount)),
        }
    }
}

/// Someone named in a criterion: by id, or by e-mail or external id (resolved when the
/// criterion is evaluated, so it follows the directory).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PersonRef {
    Id(Uuid),
    Key(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    // text (and attributes)
    Equals(String),
    NotEquals(String),
    Contains(String),
    StartsWith(String),
    In(Vec<String>),
    // any property with a value
    IsEmpty,
    IsNotEmpty,
    // dates
    Before(NaiveDate),
    After(NaiveDate),
    WithinLast(Period),
    MoreThanAgo(Period),
    // teams and roles
    Has(String),
    HasAny(Vec<String>),
    // relations
    Is(PersonRef),
    ReportsTo(PersonRef),
    // segments
    MemberOf(Uuid),
    NotMemberOf(Uuid),
}

/// What is wrong, and where: `path` is a JSON path into the submitted criteria.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriteriaError {
    pub path: String,
    pub message: String,
}

/// The properties an admin may filter on, for error messages and the API's schema.
pub const PROPERTIES: &[&str] = &[
    "email",
    "external_id",
    "first_name",
    "last_name",
    "department",
    "job_title",
    "location",
    "language",
    "time_zone",
    "phone",
    "attributes.<key>",
    "joining_date",
    "teams",
    "roles",
    "manager",
    "hr_partner",
    "team_leader",
    "coach",
    "segment",
];

impl Property {
    fn parse(name: &str) -> Option<Property> {
        use TextField::*;
        Some(match name {
            "email" => Property::Text(Email),
            "external_id" => Property::Text(ExternalId),
            "first_name" => Property::Text(FirstName),
            "last_name" => Property::Text(LastName),
            "department" => Property::Text(Department),
            "job_title" => Property::Text(JobTitle),
            "location" => Property::Text(Location),
            "language" => Property::Text(Language),
            "time_zone" => Property::Text(TimeZone),
            "phone" => Property::Text(Phone),
            "joining_date" => Property::JoiningDate,
            "teams" => Property::List(ListField::Teams),
            "roles" => Property::List(ListField::Roles),
            "manager" => Property::Related(Relation::Manager),
            "hr_partner" => Property::Related(Relation::HrPartner),
            "team_leader" => Property::Related(Relation::TeamLeader),
            "coach" => Property::Related(Relation::Coach),
            "segment" => Property::Segment,
            other => {
                let key = other.strip_prefix("attributes.")?;
                if !valid_attribute_key(key) {
                    return None;
                }
                Property::Attribute(key.to_owned())
            }
        })
    }

    pub fn name(&self) -> String {
        use TextField::*;
        match self {
            Property::Text(f) => match f {
                Email => "email",
                ExternalId => "external_id",
                FirstName => "first_name",
                LastName => "last_name",
                Department => "department",
                JobTitle => "job_title",
                Location => "location",
                Language => "language",
                TimeZone => "time_zone",
                Phone => "phone",
            }
            .to_owned(),
            Property::Attribute(key) => format!("attributes.{key}"),
            Property::JoiningDate => "joining_date".into(),
            Property::List(ListField::Teams) => "teams".into(),
            Property::List(ListField::Roles) => "roles".into(),
            Property::Related(r) => match r {
                Relation::Manager => "manager",
                Relation::HrPartner => "hr_partner",
                Relation::TeamLeader => "team_leader",
                Relation::Coach => "coach",
            }
            .to_owned(),
            Property::Segment => "segment".into(),
        }
    }

    /// The operations that fit this property's type, by their JSON names.
    pub fn operations(&self) -> &'static [&'static str] {
        match self {
            Property::Text(_) | Property::Attribute(_) => &[
                "equals",
                "not_equals",
                "contains",
                "starts_with",
                "in",
                "is_empty",
                "is_not_empty",
            ],
            Property::JoiningDate => &[
                "before",
                "after",
                "within_last",
                "more_than_ago",
                "is_empty",
                "is_not_empty",
            ],
            Property::List(ListField::Teams) => &["member_of", "in", "is_empty", "is_not_empty"],
            Property::List(ListField::Roles) => &["has_role", "in", "is_empty", "is_not_empty"],
            Property::Related(Relation::Manager) => &["is", "reports_to"],
            Property::Related(_) => &["is"],
            Property::Segment => &["member_of", "not_member_of"],
        }
    }
}

/// Whether `value` holds more than `max` objects that are not groups (`all`/`any`), stopping
/// as soon as it does.
fn more_leaves_than(value: &Value, max: usize) -> bool {
    fn walk(v: &Value, seen: &mut usize, max: usize) -> bool {
        match v {
            Value::Object(map) if map.contains_key("all") || map.contains_key("any") => {
                map.values().any(|child| walk(child, seen, max))
            }
            Value::Object(_) => {
                *seen += 1;
                *seen > max
            }
            Value::Array(items) => items.iter().any(|child| walk(child, seen, max)),
            _ => false,
        }
    }
    walk(value, &mut 0, max)
}

/// Attribute keys end up as JSON keys and in messages: keep them plain.
pub fn valid_attribute_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl Criteria {
    /// Parses and checks the admin's JSON. Every problem is reported, each with its path.
    pub fn parse(value: &Value) -> Result<Criteria, Vec<CriteriaError>> {
        // Checked before the walk, so that a huge body of bad criteria costs one pass and
        // one error, not one error per criterion (an answer larger than the request).
        if let Err((path, e)) = crate::check_json_text(value) {
            let path = if path.is_empty() {
                "criteria".to_owned()
            } else {
                format!("criteria.{path}")
            };
            return Err(vec![CriteriaError {
                path,
                message: e.to_string(),
            }]);
        }
        if more_leaves_than(value, MAX_CRITERIA) {
            return Err(vec![CriteriaError {
                path: "criteria".into(),
                message: format!("at most {MAX_CRITERIA} criteria"),
            }]);
        }
        let mut errors = Vec::new();
        let mut count = 0;
        let parsed = parse_node(value, "criteria", 1, &mut count, &mut errors);
        if count > MAX_CRITERIA {
            errors.push(CriteriaError {
                path: "criteria".into(),
                message: format!("at most {MAX_CRITERIA} criteria"),
            });
        }
        match parsed {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }

    /// The canonical JSON form (what is stored; parses back to the same tree).
    pub fn to_json(&self) -> Value {
        match self {
            Criteria::All(children) => {
                json!({ "all": children.iter().map(Criteria::to_json).collect::<Vec<_>>() })
            }
            Criteria::Any(children) => {
                json!({ "any": children.iter().map(Criteria::to_json).collect::<Vec<_>>() })
            }
            Criteria::One(c) => c.to_json(),
        }
    }

    /// Every person named in the tree (for checking they exist when the audience is saved).
    pub fn person_refs(&self) -> Vec<&PersonRef> {
        let mut refs = Vec::new();
        self.visit(&mut |c| {
            if let Condition::Is(r) | Condition::ReportsTo(r) = &c.condition {
                refs.push(r);
            }
        });
        refs
    }

    /// Every segment named in the tree.
    pub fn segment_ids(&self) -> Vec<Uuid> {
        let mut ids = Vec::new();
        self.visit(&mut |c| {
            if let Condition::MemberOf(id) | Condition::NotMemberOf(id) = &c.condition {
                ids.push(*id);
            }
        });
        ids
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Criterion)) {
        match self {
            Criteria::All(children) | Criteria::Any(children) => {
                children.iter().for_each(|c| c.visit(f))
            }
            Criteria::One(c) => f(c),
        }
    }

    /// Whether `person` matches on day `as_of`. Deactivated people never match. `directory`
    /// answers relation questions (manager chains, e-mail lookups).
    pub fn matches(
        &self,
        person: &DirectoryPerson,
        directory: &dyn Directory,
        as_of: NaiveDate,
    ) -> bool {
        person.active && self.eval(person, directory, as_of)
    }

    fn eval(&self, person: &DirectoryPerson, directory: &dyn Directory, as_of: NaiveDate) -> bool {
        match self {
            Criteria::All(children) => children.iter().all(|c| c.eval(person, directory, as_of)),
            Criteria::Any(children) => children.iter().any(|c| c.eval(person, directory, as_of)),
            Criteria::One(c) => c.eval(person, directory, as_of),
        }
    }
}

impl Criterion {
    fn to_json(&self) -> Value {
        let property = self.property.name();
        let (op, value): (&str, Option<Value>) = match &self.condition {
            Condition::Equals(v) => ("equals", Some(json!(v))),
            Condition::NotEquals(v) => ("not_equals", Some(json!(v))),
            Condition::Contains(v) => ("contains", Some(json!(v))),
            Condition::StartsWith(v) => ("starts_with", Some(json!(v))),
            Condition::In(v) | Condition::HasAny(v) => ("in", Some(json!(v))),
            Condition::IsEmpty => ("is_empty", None),
            Condition::IsNotEmpty => ("is_not_empty", None),
            Condition::Before(d) => ("before", Some(json!(d.to_string()))),
            Condition::After(d) => ("after", Some(json!(d.to_string()))),
            Condition::WithinLast(p) => ("within_last", Some(period_json(*p))),
            Condition::MoreThanAgo(p) => ("more_than_ago", Some(period_json(*p))),
            Condition::Has(v) => match self.property {
                Property::List(ListField::Roles) => ("has_role", Some(json!(v))),
                _ => ("member_of", Some(json!(v))),
            },
            Condition::Is(r) => ("is", Some(person_ref_json(r))),
            Condition::ReportsTo(r) => ("reports_to", Some(person_ref_json(r))),
            Condition::MemberOf(id) => ("member_of", Some(json!(id))),
            Condition::NotMemberOf(id) => ("not_member_of", Some(json!(id))),
        };
        let mut obj = Map::new();
        obj.insert("property".into(), json!(property));
        obj.insert("op".into(), json!(op));
        if let Some(v) = value {
            obj.insert("value".into(), v);
        }
        Value::Object(obj)
    }

    fn eval(&self, person: &DirectoryPerson, directory: &dyn Directory, as_of: NaiveDate) -> bool {
        match &self.property {
            Property::Text(field) => text_matches(person.text(*field), &self.condition),
            Property::Attribute(key) => text_matches(
                person.attributes.get(key).map(String::as_str),
                &self.condition,
            ),
            Property::JoiningDate => date_matches(person.joining_date, &self.condition, as_of),
            Property::List(field) => {
                let values = match field {
                    ListField::Teams => &person.teams,
                    ListField::Roles => &person.roles,
                };
                match &self.condition {
                    Condition::Has(v) => values.contains(v),
                    Condition::HasAny(vs) => vs.iter().any(|v| values.contains(v)),
                    Condition::IsEmpty => values.is_empty(),
                    Condition::IsNotEmpty => !values.is_empty(),
                    _ => false,
                }
            }
            Property::Related(relation) => {
                let Some(target) = (match &self.condition {
                    Condition::Is(r) | Condition::ReportsTo(r) => directory.resolve(r),
                    _ => None,
                }) else {
                    return false;
                };
                match (&self.condition, relation) {
                    (Condition::ReportsTo(_), _) => reports_to(person, target, directory),
                    (_, Relation::Manager) => person.manager_id == Some(target),
                    (_, Relation::HrPartner) => person.hr_partner_id == Some(target),
                    (_, Relation::TeamLeader) => person.team_leaders.contains(&target),
                    (_, Relation::Coach) => person.coaches.contains(&target),
                }
            }
            Property::Segment => match &self.condition {
                Condition::MemberOf(id) => person.segments.contains(id),
                Condition::NotMemberOf(id) => !person.segments.contains(id),
                _ => false,
            },
        }
    }
}

/// Whether `target` is above `person` in the manager chain. A cycle in the data ends the walk.
fn reports_to(person: &DirectoryPerson, target: Uuid, directory: &dyn Directory) -> bool {
    let mut seen = HashSet::new();
    let mut next = person.manager_id;
    while let Some(manager) = next {
        if manager == target {
            return true;
        }
        if !seen.insert(manager) {
            return false;
        }
        next = directory.person(manager).and_then(|m| m.manager_id);
    }
    false
}

fn text_matches(value: Option<&str>, condition: &Condition) -> bool {
    let value = value.filter(|v| !v.is_empty()).map(str::to_lowercase);
    match (condition, value) {
        (Condition::IsEmpty, v) => v.is_none(),
        (Condition::IsNotEmpty, v) => v.is_some(),
        (Condition::NotEquals(x), None) => !x.is_empty(),
        (Condition::NotEquals(x), Some(v)) => v != x.to_lowercase(),
        (_, None) => false,
        (Condition::Equals(x), Some(v)) => v == x.to_lowercase(),
        (Condition::Contains(x), Some(v)) => v.contains(&x.to_lowercase()),
        (Condition::StartsWith(x), Some(v)) => v.starts_with(&x.to_lowercase()),
        (Condition::In(xs), Some(v)) => xs.iter().any(|x| x.to_lowercase() == v),
        _ => false,
    }
}

fn date_matches(value: Option<NaiveDate>, condition: &Condition, as_of: NaiveDate) -> bool {
    match (condition, value) {
        (Condition::IsEmpty, v) => v.is_none(),
        (Condition::IsNotEmpty, v) => v.is_some(),
        (_, None) => false,
        (Condition::Before(d), Some(v)) => v < *d,
        (Condition::After(d), Some(v)) => v > *d,
        (Condition::WithinLast(p), Some(v)) => match p.before(as_of) {
            Some(from) => from <= v && v <= as_of,
            None => v <= as_of,
        },
        (Condition::MoreThanAgo(p), Some(v)) => p.before(as_of).is_some_and(|cut| v < cut),
        _ => false,
    }
}

fn period_json(p: Period) -> Value {
    match p.unit {
        PeriodUnit::Days => json!({ "days": p.amount }),
        PeriodUnit::Months => json!({ "months": p.amount }),
    }
}

fn person_ref_json(r: &PersonRef) -> Value {
    match r {
        PersonRef::Id(id) => json!(id),
        PersonRef::Key(k) => json!(k),
    }
}

/// A person as criteria see them (the in-memory twin of a `people` row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectoryPerson {
    pub id: Uuid,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub location: Option<String>,
    pub language: Option<String>,
    pub time_zone: String,
    pub phone: Option<String>,
    pub teams: Vec<String>,
    pub roles: Vec<String>,
    pub joining_date: Option<NaiveDate>,
    pub attributes: BTreeMap<String, String>,
    pub manager_id: Option<Uuid>,
    pub hr_partner_id: Option<Uuid>,
    pub team_leaders: Vec<Uuid>,
    pub coaches: Vec<Uuid>,
    pub segments: Vec<Uuid>,
    pub active: bool,
}

impl DirectoryPerson {
    pub fn text(&self, field: TextField) -> Option<&str> {
        use TextField::*;
        match field {
            Email => self.email.as_deref(),
            ExternalId => self.external_id.as_deref(),
            FirstName => Some(&self.first_name),
            LastName => Some(&self.last_name),
            Department => self.department.as_deref(),
            JobTitle => self.job_title.as_deref(),
            Location => self.location.as_deref(),
            Language => self.language.as_deref(),
            TimeZone => Some(&self.time_zone),
            Phone => self.phone.as_deref(),
        }
    }
}

/// The rest of the directory, for criteria that look at other people.
pub trait Directory {
    fn person(&self, id: Uuid) -> Option<&DirectoryPerson>;
    /// The id a reference names now: an id that exists, or the person whose e-mail
    /// (ignoring case) or external id it is.
    fn resolve(&self, r: &PersonRef) -> Option<Uuid>;
}

impl Directory for BTreeMap<Uuid, DirectoryPerson> {
    fn person(&self, id: Uuid) -> Option<&DirectoryPerson> {
        self.get(&id)
    }

    fn resolve(&self, r: &PersonRef) -> Option<Uuid> {
        match r {
            PersonRef::Id(id) => self.contains_key(id).then_some(*id),
            PersonRef::Key(k) => {
                let lower = k.to_lowercase();
                // Like the SQL: an e-mail match first, then an external id.
                self.values()
                    .find(|p| p.email.as_deref().map(str::to_lowercase) == Some(lower.clone()))
                    .or_else(|| self.values().find(|p| p.external_id.as_deref() == Some(k)))
                    .map(|p| p.id)
            }
        }
    }
}

// ---- parsing ----

fn err(errors: &mut Vec<CriteriaError>, path: &str, message: impl Into<String>) {
    errors.push(CriteriaError {
        path: path.to_owned(),
        message: message.into(),
    });
}

fn parse_node(
    value: &Value,
    path: &str,
    depth: usize,
    count: &mut usize,
    errors: &mut Vec<CriteriaError>,
) -> Option<Criteria> {
    let Some(obj) = value.as_object() else {
        err(
            errors,
            path,
            "must be an object: {\"all\": [...]}, {\"any\": [...]} or {\"property\", \"op\", \"value\"}",
        );
        return None;
    };
    if depth > MAX_DEPTH {
        err(
            errors,
            path,
            format!("groups nest at most {MAX_DEPTH} deep"),
        );
        return None;
    }
    let group = match (obj.get("all"), obj.get("any")) {
        (Some(_), Some(_)) => {
            err(
                errors,
                path,
                "a group has either \"all\" or \"any\", not both",
            );
            return None;
        }
        (Some(children), None) => Some(("all", children)),
        (None, Some(children)) => Some(("any", children)),
        (None, None) => None,
    };
    if let Some((kind, children)) = group {
        if obj.len() != 1 {
            err(errors, path, format!("a group has only the key \"{kind}\""));
        }
        let Some(items) = children.as_array() else {
            err(errors, &format!("{path}.{kind}"), "must be a list");
            return None;
        };
        if items.is_empty() {
            err(errors, &format!("{path}.{kind}"), "must not be empty");
            return None;
        }
        let parsed: Vec<Option<Criteria>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_node(
                    item,
                    &format!("{path}.{kind}[{i}]"),
                    depth + 1,
                    count,
                    errors,
                )
            })
            .collect();
        let children: Option<Vec<Criteria>> = parsed.into_iter().collect();
        return children.map(|c| {
            if kind == "all" {
                Criteria::All(c)
            } else {
                Criteria::Any(c)
            }
        });
    }
    *count += 1;
    parse_criterion(obj, path, errors).map(Criteria::One)
}

fn parse_criterion(
    obj: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<CriteriaError>,
) -> Option<Criterion> {
    for key in obj.keys() {
        if !matches!(key.as_str(), "property" | "op" | "value") {
            err(
                errors,
                &format!("{path}.{key}"),
                "unknown key; a criterion has \"property\", \"op\" and \"value\"",
            );
        }
    }
    let Some(name) = obj.get("property").and_then(Value::as_str) else {
        err(errors, &format!("{path}.property"), "required, a string");
        return None;
    };
    let Some(property) = Property::parse(name) else {
        err(
            errors,
            &format!("{path}.property"),
            format!(
                "unknown property \"{name}\"; known: {}",
                PROPERTIES.join(", ")
            ),
        );
        return None;
    };
    let Some(op) = obj.get("op").and_then(Value::as_str) else {
        err(errors, &format!("{path}.op"), "required, a string");
        return None;
    };
    if !property.operations().contains(&op) {
        err(
            errors,
            &format!("{path}.op"),
            format!(
                "operation \"{op}\" does not fit property \"{name}\"; use one of: {}",
                property.operations().join(", ")
            ),
        );
        return None;
    }
    let value_path = format!("{path}.value");
    let value = obj.get("value");
    let condition = parse_condition(&property, op, value, &value_path, errors)?;
    Some(Criterion {
        property,
        condition,
    })
}

fn parse_condition(
    property: &Property,
    op: &str,
    value: Option<&Value>,
    path: &str,
    errors: &mut Vec<CriteriaError>,
) -> Option<Condition> {
    let no_value = |errors: &mut Vec<CriteriaError>| {
        if value.is_some_and(|v| !v.is_null()) {
            err(errors, path, format!("\"{op}\" takes no value"));
            return None;
        }
        Some(())
    };
    let text = |errors: &mut Vec<CriteriaError>| -> Option<String> {
        match value.and_then(Value::as_str).map(str::trim) {
            Some("") => {
                err(errors, path, "must not be empty");
                None
            }
            Some(s) if s.chars().count() > MAX_VALUE_LEN => {
                err(errors, path, format!("at most {MAX_VALUE_LEN} characters"));
                None
            }
            Some(s) => Some(s.to_owned()),
            None => {
                err(errors, path, "required, a string");
                None
            }
        }
    };
    let list = |errors: &mut Vec<CriteriaError>| -> Option<Vec<String>> {
        let Some(items) = value.and_then(Value::as_array) else {
            err(errors, path, "required, a list of strings");
            return None;
        };
        if items.is_empty() || items.len() > MAX_LIST_VALUES {
            err(errors, path, format!("1 to {MAX_LIST_VALUES} values"));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.chars().count() <= MAX_VALUE_LEN => {
                    out.push(s.to_owned())
                }
                _ => {
                    err(
                        errors,
                        &format!("{path}[{i}]"),
                        format!("a non-empty string of at most {MAX_VALUE_LEN} characters"),
                    );
                    return None;
                }
            }
        }
        Some(out)
    };
    let date = |errors: &mut Vec<CriteriaError>| -> Option<NaiveDate> {
        let parsed = value
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok());
        if parsed.is_none() {
            err(errors, path, "required, a date as YYYY-MM-DD");
        }
        parsed
    };
    let period = |errors: &mut Vec<CriteriaError>| -> Option<Period> {
        let parsed = value.and_then(Value::as_object).and_then(|o| {
            if o.len() != 1 {
                return None;
            }
            let (unit, amount) = o.iter().next()?;
            let amount = u32::try_from(amount.as_u64()?).ok()?;
            let (unit, max) = match unit.as_str() {
                "days" => (PeriodUnit::Days, 36_500),
                "months" => (PeriodUnit::Months, 1_200),
                _ => return None,
            };
            (1..=max)
                .contains(&amount)
                .then_some(Period { amount, unit })
        });
        if parsed.is_none() {
            err(
                errors,
                path,
                "required, {\"days\": 1..36500} or {\"months\": 1..1200}",
            );
        }
        parsed
    };
    let person = |errors: &mut Vec<CriteriaError>| -> Option<PersonRef> {
        let s = text(errors)?;
        Some(match Uuid::parse_str(&s) {
            Ok(id) => PersonRef::Id(id),
            Err(_) => PersonRef::Key(s),
        })
    };
    let segment = |errors: &mut Vec<CriteriaError>| -> Option<Uuid> {
        let parsed = value
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s.trim()).ok());
        if parsed.is_none() {
            err(errors, path, "required, a segment id");
        }
        parsed
    };
    let is_list = matches!(property, Property::List(_));
    Some(match op {
        "equals" => Condition::Equals(text(errors)?),
        "not_equals" => Condition::NotEquals(text(errors)?),
        "contains" => Condition::Contains(text(errors)?),
        "starts_with" => Condition::StartsWith(text(errors)?),
        "in" if is_list => Condition::HasAny(list(errors)?),
        "in" => Condition::In(list(errors)?),
        "is_empty" => no_value(errors).map(|_| Condition::IsEmpty)?,
        "is_not_empty" => no_value(errors).map(|_| Condition::IsNotEmpty)?,
        "before" => Condition::Before(date(errors)?),
        "after" => Condition::After(date(errors)?),
        "within_last" => Condition::WithinLast(period(errors)?),
        "more_than_ago" => Condition::MoreThanAgo(period(errors)?),
        "member_of" | "has_role" if is_list => Condition::Has(text(errors)?),
        "member_of" => Condition::MemberOf(segment(errors)?),
        "not_member_of" => Condition::NotMemberOf(segment(errors)?),
        "is" => Condition::Is(person(errors)?),
        "reports_to" => Condition::ReportsTo(person(errors)?),
        other => {
            err(
                errors,
                path,
                format!("operation \"{other}\" is not supported"),
            );
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Criteria, Vec<CriteriaError>> {
        Criteria::parse(&v)
    }

    #[test]
    fn the_seed_examples_parse_and_round_trip() {
        let v = json!({"any": [
            {"all": [
                {"property": "department", "op": "equals", "value": "Marketing"},
                {"property": "joining_date", "op": "within_last", "value": {"months": 6}}
            ]},
            {"property": "job_title", "op": "contains", "value": "junior"},
            {"property": "roles", "op": "has_role", "value": "training administrator"},
            {"property": "teams", "op": "member_of", "value": "System operations"},
            {"property": "manager", "op": "reports_to", "value": "ceo@corp.io"},
            {"property": "attributes.cost_center", "op": "in", "value": ["CC-1", "CC-2"]}
        ]});
        let c = parse(v.clone()).expect("valid");
        assert_eq!(c.to_json(), v);
        assert_eq!(Criteria::parse(&c.to_json()), Ok(c));
    }

    #[test]
    fn errors_name_the_place_and_the_fix() {
        let errors = parse(json!({"all": [
            {"property": "departement", "op": "equals", "value": "x"},
            {"property": "joining_date", "op": "contains", "value": "x"},
            {"property": "department", "op": "equalz", "value": "x"},
            {"property": "joining_date", "op": "within_last", "value": {"weeks": 2}},
            {"property": "department", "op": "is_empty", "value": "x"}
        ]}))
        .expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "criteria.all[0].property",
                "criteria.all[1].op",
                "criteria.all[2].op",
                "criteria.all[3].value",
                "criteria.all[4].value",
            ]
        );
        assert!(errors[0]
            .message
            .contains("unknown property \"departement\""));
        assert!(errors[1]
            .message
            .contains("does not fit property \"joining_date\""));
    }

    #[test]
    fn shape_errors() {
        for bad in [
            json!([]),
            json!({"all": []}),
            json!({"all": [], "any": []}),
            json!({"any": "x"}),
            json!({"property": "department"}),
            json!({"property": "segment", "op": "member_of", "value": "not-a-uuid"}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        let mut deep = json!({"property": "department", "op": "is_empty"});
        for _ in 0..MAX_DEPTH {
            deep = json!({ "all": [deep] });
        }
        assert!(parse(deep).is_err());
    }

    fn person(id: u128) -> DirectoryPerson {
        DirectoryPerson {
            id: Uuid::from_u128(id),
            first_name: "A".into(),
            time_zone: "UTC".into(),
            active: true,
            ..Default::default()
        }
    }

    #[test]
    fn in_memory_meaning() {
        let as_of = NaiveDate::from_ymd_opt(2026, 8, 31).expect("date");
        let mut ceo = person(1);
        ceo.email = Some("CEO@corp.io".into());
        let mut lead = person(2);
        lead.manager_id = Some(ceo.id);
        let mut dev = person(3);
        dev.manager_id = Some(lead.id);
        dev.department = Some("Engineering".into());
        dev.joining_date = NaiveDate::from_ymd_opt(2026, 2, 28);
        let dir: BTreeMap<Uuid, DirectoryPerson> = [ceo.clone(), lead.clone(), dev.clone()]
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let check =
            |v: Value, p: &DirectoryPerson| parse(v).expect("valid").matches(p, &dir, as_of);
        assert!(check(
            json!({"property": "manager", "op": "reports_to", "value": "ceo@CORP.io"}),
            &dev
        ));
        assert!(!check(
            json!({"property": "manager", "op": "is", "value": "ceo@corp.io"}),
            &dev
        ));
        assert!(check(
            json!({"property": "department", "op": "equals", "value": "engineering"}),
            &dev
        ));
        assert!(check(
            json!({"property": "department", "op": "not_equals", "value": "engineering"}),
            &lead
        ));
        // 2026-08-31 minus 6 months is 2026-02-28 (clamped), inclusive.
        assert!(check(
            json!({"property": "joining_date", "op": "within_last", "value": {"months": 6}}),
            &dev
        ));
        assert!(!check(
            json!({"property": "joining_date", "op": "more_than_ago", "value": {"months": 6}}),
            &dev
        ));
        let mut gone = dev.clone();
        gone.active = false;
        assert!(!check(
            json!({"property": "department", "op": "equals", "value": "engineering"}),
            &gone
        ));
    }
}
