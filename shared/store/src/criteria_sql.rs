//! Criteria compiled to SQL: a boolean expression over `people p`, every value a bind
//! parameter (never pasted into the text). Its meaning is that of `Criteria::matches` in the
//! domain crate; `tests/criteria_property.rs` holds the two to each other.

use chrono::NaiveDate;
use pushfleet_domain::criteria::{
    Condition, Criteria, Criterion, ListField, PersonRef, Property, Relation, TextField,
};
use sqlx::{Postgres, QueryBuilder};

/// Appends `p.active AND (<criteria>)` to `qb`. `as_of` is the evaluation day that relative
/// dates ("within the last 6 months") count from.
pub fn push_audience_filter(
    qb: &mut QueryBuilder<'_, Postgres>,
    criteria: &Criteria,
    as_of: NaiveDate,
) {
    qb.push("p.active AND ");
    push_node(qb, criteria, as_of);
}

fn push_node(qb: &mut QueryBuilder<'_, Postgres>, node: &Criteria, as_of: NaiveDate) {
    match node {
        Criteria::All(children) | Criteria::Any(children) => {
            let joiner = if matches!(node, Criteria::All(_)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                push_node(qb, child, as_of);
            }
            qb.push(")");
        }
        Criteria::One(c) => {
            // A NULL property makes a comparison NULL, which means "no match" here: the tree
            // has no NOT over a group, so AND and OR treat NULL as false, and the negative
            // operations (not_equals, not_member_of) handle NULL themselves. Bare
            // comparisons (no coalesce) let the planner use the indexes.
            qb.push("(");
            push_criterion(qb, c, as_of);
            qb.push(")");
        }
    }
}

fn text_column(field: TextField) -> &'static str {
    match field {
        TextField::Email => "p.email",
        TextField::ExternalId => "p.external_id",
        TextField::FirstName => "p.first_name",
        TextField::LastName => "p.last_name",
        TextField::Department => "p.department",
        TextField::JobTitle => "p.job_title",
        TextField::Location => "p.location",
        TextField::Language => "p.language",
        TextField::TimeZone => "p.time_zone",
        TextField::Phone => "p.phone",
    }
}

/// The text value a criterion looks at. Comparisons with a (never empty) value need no
/// care for empty strings; `is_empty` treats an empty string as missing.
fn push_text_value(qb: &mut QueryBuilder<'_, Postgres>, property: &Property) {
    match property {
        Property::Text(field) => {
            qb.push(text_column(*field));
        }
        Property::Attribute(key) => {
            qb.push("p.attributes ->> ");
            qb.push_bind(key.clone());
        }
        _ => unreachable_property(qb),
    }
}

/// Parsing guarantees every (property, condition) pair below; a pair that slips through
/// matches nobody rather than panicking.
fn unreachable_property(qb: &mut QueryBuilder<'_, Postgres>) {
    qb.push("NULL");
}

fn push_person_ref(qb: &mut QueryBuilder<'_, Postgres>, r: &PersonRef) {
    match r {
        PersonRef::Id(id) => {
            qb.push("(SELECT id FROM people WHERE id = ");
            qb.push_bind(*id);
            qb.push(")");
        }
        PersonRef::Key(key) => {
            // An e-mail match first, then an external id (as the domain's Directory does).
            qb.push(
                "(SELECT id FROM (SELECT id, 0 AS rank FROM people WHERE lower(email) = lower(",
            );
            qb.push_bind(key.clone());
            qb.push(") UNION ALL SELECT id, 1 FROM people WHERE external_id = ");
            qb.push_bind(key.clone());
            qb.push(") AS k ORDER BY rank LIMIT 1)");
        }
    }
}

fn push_criterion(qb: &mut QueryBuilder<'_, Postgres>, c: &Criterion, as_of: NaiveDate) {
    match (&c.property, &c.condition) {
        (Property::Text(_) | Property::Attribute(_), condition) => {
            match condition {
                Condition::IsEmpty | Condition::IsNotEmpty => {
                    qb.push("nullif(");
                    push_text_value(qb, &c.property);
                    qb.push(", '')");
                    qb.push(if matches!(condition, Condition::IsEmpty) {
                        " IS NULL"
                    } else {
                        " IS NOT NULL"
                    });
                }
                Condition::Equals(v) | Condition::NotEquals(v) => {
                    qb.push("lower(");
                    push_text_value(qb, &c.property);
                    qb.push(if matches!(condition, Condition::Equals(_)) {
                        ") = lower("
                    } else {
                        ") IS DISTINCT FROM lower("
                    });
                    qb.push_bind(v.clone());
                    qb.push(")");
                }
                Condition::Contains(v) => {
                    // strpos, not LIKE: no wildcard in the admin's value can mean anything.
                    qb.push("strpos(lower(");
                    push_text_value(qb, &c.property);
                    qb.push("), lower(");
                    qb.push_bind(v.clone());
                    qb.push(")) > 0");
                }
                Condition::StartsWith(v) => {
                    qb.push("starts_with(lower(");
                    push_text_value(qb, &c.property);
                    qb.push("), lower(");
                    qb.push_bind(v.clone());
                    qb.push("))");
                }
                Condition::In(values) => {
                    qb.push("lower(");
                    push_text_value(qb, &c.property);
                    qb.push(") = ANY(ARRAY(SELECT lower(v) FROM unnest(");
                    qb.push_bind(values.clone());
                    qb.push("::text[]) AS v))");
                }
                _ => unreachable_property(qb),
            }
        }
        (Property::JoiningDate, condition) => match condition {
            Condition::IsEmpty => {
                qb.push("p.joining_date IS NULL");
            }
            Condition::IsNotEmpty => {
                qb.push("p.joining_date IS NOT NULL");
            }
            Condition::Before(d) => {
                qb.push("p.joining_date < ");
                qb.push_bind(*d);
            }
            Condition::After(d) => {
                qb.push("p.joining_date > ");
                qb.push_bind(*d);
            }
            Condition::WithinLast(period) => {
                // The cut-off day is computed here, once, with the same calendar arithmetic
                // as the in-memory evaluation (month ends clamp: Aug 31 - 6 months = Feb 28).
                match period.before(as_of) {
                    Some(from) => {
                        qb.push("p.joining_date BETWEEN ");
                        qb.push_bind(from);
                        qb.push(" AND ");
                        qb.push_bind(as_of);
                    }
                    None => {
                        qb.push("p.joining_date <= ");
                        qb.push_bind(as_of);
                    }
                }
            }
            Condition::MoreThanAgo(period) => match period.before(as_of) {
                Some(cut) => {
                    qb.push("p.joining_date < ");
                    qb.push_bind(cut);
                }
                None => {
                    qb.push("false");
                }
            },
            _ => unreachable_property(qb),
        },
        (Property::List(field), condition) => {
            let column = match field {
                ListField::Teams => "p.teams",
                ListField::Roles => "p.roles",
            };
            match condition {
                Condition::Has(v) => {
                    // @> and && use the GIN indexes on teams and roles.
                    qb.push(column);
                    qb.push(" @> ARRAY[");
                    qb.push_bind(v.clone());
                    qb.push("]::text[]");
                }
                Condition::HasAny(values) => {
                    qb.push(column);
                    qb.push(" && ");
                    qb.push_bind(values.clone());
                    qb.push("::text[]");
                }
                Condition::IsEmpty => {
                    qb.push("cardinality(").push(column).push(") = 0");
                }
                Condition::IsNotEmpty => {
                    qb.push("cardinality(").push(column).push(") > 0");
                }
                _ => unreachable_property(qb),
            }
        }
        (Property::Related(relation), Condition::Is(r)) => match relation {
            Relation::Manager | Relation::HrPartner => {
                qb.push(if *relation == Relation::Manager {
                    "p.manager_id = "
                } else {
                    "p.hr_partner_id = "
                });
                push_person_ref(qb, r);
            }
            Relation::TeamLeader | Relation::Coach => {
                qb.push(
                    "EXISTS (SELECT 1 FROM person_relations r WHERE r.person_id = p.id AND r.kind = ",
                );
                qb.push_bind(if *relation == Relation::Coach {
                    "coach"
                } else {
                    "team_leader"
                });
                qb.push(" AND r.related_id = ");
                push_person_ref(qb, r);
                qb.push(")");
            }
        },
        (Property::Related(Relation::Manager), Condition::ReportsTo(r)) => {
            // Everyone below the person, however deep; UNION (not ALL) stops at a cycle.
            qb.push(
                "p.id IN (WITH RECURSIVE below(id) AS (SELECT id FROM people WHERE manager_id = ",
            );
            push_person_ref(qb, r);
            qb.push(
                " UNION SELECT c.id FROM people c JOIN below b ON c.manager_id = b.id) SELECT id FROM below)",
            );
        }
        (Property::Segment, Condition::MemberOf(id)) => {
            qb.push("EXISTS (SELECT 1 FROM segment_members s WHERE s.person_id = p.id AND s.segment_id = ");
            qb.push_bind(*id);
            qb.push(")");
        }
        (Property::Segment, Condition::NotMemberOf(id)) => {
            qb.push("NOT EXISTS (SELECT 1 FROM segment_members s WHERE s.person_id = p.id AND s.segment_id = ");
            qb.push_bind(*id);
            qb.push(")");
        }
        _ => unreachable_property(qb),
    }
}
