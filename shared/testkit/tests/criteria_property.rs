//! The SQL that criteria compile to means what the in-memory evaluation means: for random
//! directories and random criteria trees, Postgres and `Criteria::matches` pick the same
//! people.

use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pushfleet_domain::criteria::{
    Condition, Criteria, Criterion, DirectoryPerson, ListField, Period, PeriodUnit, PersonRef,
    Property, Relation, TextField,
};
use pushfleet_store::Store;
use pushfleet_testkit::TestEnv;
use std::collections::BTreeMap;
use uuid::Uuid;

const PEOPLE: usize = 24;
const WORDS: &[&str] = &[
    "Sales",
    "sales",
    "Engineering",
    "eng",
    "Marketing",
    "R&D",
    "ops 1",
    "Été",
    "été",
    "a%b",
    "x_y",
];
const TEAMS: &[&str] = &["Alpha", "Beta", "Gamma"];
const ROLES: &[&str] = &["admin", "Admin", "trainer"];
const SEGMENTS: [Uuid; 2] = [Uuid::from_u128(0xA1), Uuid::from_u128(0xA2)];

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 8, 31).expect("a date")
}

fn person_id(i: usize) -> Uuid {
    Uuid::from_u128(0x1000 + i as u128)
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

fn maybe_word() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some(String::new())), word().prop_map(Some)]
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(items, 0..=items.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn person_strategy(i: usize) -> impl Strategy<Value = DirectoryPerson> {
    (
        (
            prop::bool::weighted(0.8),
            prop::bool::ANY,
            maybe_word(),
            maybe_word(),
            maybe_word(),
            word(),
            subset(TEAMS),
            subset(ROLES),
        ),
        (
            prop::option::of(-800i64..800),
            maybe_word(),
            prop::option::of(0..PEOPLE),
            prop::option::of(0..PEOPLE),
            prop::collection::vec(0..PEOPLE, 0..3),
            prop::collection::vec(0..PEOPLE, 0..2),
            prop::sample::subsequence(SEGMENTS.to_vec(), 0..=2),
            prop::bool::weighted(0.9),
        ),
    )
        .prop_map(
            move |(
                (has_email, has_external, department, job_title, location, first, teams, roles),
                (joined, attribute, manager, hr, leaders, coaches, segments, active),
            )| {
                let mut attributes = BTreeMap::new();
                if let Some(a) = attribute.filter(|a| !a.is_empty()) {
                    attributes.insert("cost_center".to_owned(), a);
                }
                let mut leaders: Vec<Uuid> = leaders.into_iter().map(person_id).collect();
                leaders.sort();
                leaders.dedup();
                let mut coaches: Vec<Uuid> = coaches.into_iter().map(person_id).collect();
                coaches.sort();
                coaches.dedup();
                DirectoryPerson {
                    id: person_id(i),
                    email: has_email.then(|| format!("P{i}@Corp.io")),
                    external_id: has_external.then(|| format!("E{i}")),
                    first_name: first,
                    last_name: String::new(),
                    department,
                    job_title,
                    location,
                    language: None,
                    time_zone: "UTC".into(),
                    phone: None,
                    teams,
                    roles,
                    joining_date: joined
                        .and_then(|d| as_of().checked_add_signed(chrono::Duration::days(d))),
                    attributes,
                    manager_id: manager.map(person_id),
                    hr_partner_id: hr.map(person_id),
                    team_leaders: leaders,
                    coaches,
                    segments,
                    active,
                }
            },
        )
}

fn directory_strategy() -> impl Strategy<Value = Vec<DirectoryPerson>> {
    (0..PEOPLE)
        .map(person_strategy)
        .collect::<Vec<_>>()
        .prop_map(|v| v)
}

fn text_property() -> impl Strategy<Value = Property> {
    prop_oneof![
        Just(Property::Text(TextField::Department)),
        Just(Property::Text(TextField::JobTitle)),
        Just(Property::Text(TextField::Location)),
        Just(Property::Text(TextField::FirstName)),
        Just(Property::Text(TextField::Email)),
        Just(Property::Text(TextField::ExternalId)),
        Just(Property::Attribute("cost_center".into())),
    ]
}

fn search_word() -> impl Strategy<Value = String> {
    prop_oneof![
        word(),
        Just("SALES".to_owned()),
        Just("ÉTÉ".to_owned()),
        Just("ng".to_owned()),
        Just("%".to_owned()),
        Just("_".to_owned()),
        Just("p1@corp.IO".to_owned()),
        Just("E3".to_owned()),
    ]
}

fn person_ref() -> impl Strategy<Value = PersonRef> {
    prop_oneof![
        (0..PEOPLE + 2).prop_map(|i| PersonRef::Id(person_id(i))),
        (0..PEOPLE + 2).prop_map(|i| PersonRef::Key(format!("p{i}@corp.IO"))),
        (0..PEOPLE + 2).prop_map(|i| PersonRef::Key(format!("E{i}"))),
    ]
}

fn period() -> impl Strategy<Value = Period> {
    prop_oneof![
        (1u32..400).prop_map(|amount| Period {
            amount,
            unit: PeriodUnit::Days
        }),
        (1u32..30).prop_map(|amount| Period {
            amount,
            unit: PeriodUnit::Months
        }),
    ]
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (-800i64..800).prop_map(|d| as_of() + chrono::Duration::days(d))
}

fn criterion() -> impl Strategy<Value = Criterion> {
    let text = (
        text_property(),
        prop_oneof![
            search_word().prop_map(Condition::Equals),
            search_word().prop_map(Condition::NotEquals),
            search_word().prop_map(Condition::Contains),
            search_word().prop_map(Condition::StartsWith),
            prop::collection::vec(search_word(), 1..3).prop_map(Condition::In),
            Just(Condition::IsEmpty),
            Just(Condition::IsNotEmpty),
        ],
    );
    let dates = prop_oneof![
        date().prop_map(Condition::Before),
        date().prop_map(Condition::After),
        period().prop_map(Condition::WithinLast),
        period().prop_map(Condition::MoreThanAgo),
        Just(Condition::IsEmpty),
        Just(Condition::IsNotEmpty),
    ]
    .prop_map(|c| (Property::JoiningDate, c));
    let lists = (
        prop_oneof![
            Just(Property::List(ListField::Teams)),
            Just(Property::List(ListField::Roles))
        ],
        prop_oneof![
            prop::sample::select([TEAMS, ROLES].concat())
                .prop_map(|s| Condition::Has(s.to_owned())),
            prop::collection::vec(prop::sample::select([TEAMS, ROLES].concat()), 1..3)
                .prop_map(|v| Condition::HasAny(v.into_iter().map(str::to_owned).collect())),
            Just(Condition::IsEmpty),
            Just(Condition::IsNotEmpty),
        ],
    );
    let relations = prop_oneof![
        (
            prop_oneof![
                Just(Relation::Manager),
                Just(Relation::HrPartner),
                Just(Relation::TeamLeader),
                Just(Relation::Coach)
            ],
            person_ref()
        )
            .prop_map(|(r, p)| (Property::Related(r), Condition::Is(p))),
        person_ref().prop_map(|p| (
            Property::Related(Relation::Manager),
            Condition::ReportsTo(p)
        )),
    ];
    let segments = prop_oneof![
        prop::sample::select(SEGMENTS.to_vec()).prop_map(Condition::MemberOf),
        prop::sample::select(SEGMENTS.to_vec()).prop_map(Condition::NotMemberOf),
    ]
    .prop_map(|c| (Property::Segment, c));
    prop_oneof![text, dates, lists, relations, segments].prop_map(|(property, condition)| {
        Criterion {
            property,
            condition,
        }
    })
}

fn criteria_strategy() -> impl Strategy<Value = Criteria> {
    criterion()
        .prop_map(Criteria::One)
        .prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Criteria::All),
                prop::collection::vec(inner, 1..4).prop_map(Criteria::Any),
            ]
        })
}

async fn load(store: &Store, people: &[DirectoryPerson]) {
    let pool = store.pool();
    sqlx::query("TRUNCATE people, segments CASCADE")
        .execute(pool)
        .await
        .expect("truncate");
    for s in SEGMENTS {
        sqlx::query("INSERT INTO segments (id, name) VALUES ($1, 's')")
            .bind(s)
            .execute(pool)
            .await
            .expect("segment");
    }
    for p in people {
        sqlx::query(
            "INSERT INTO people (id, email, external_id, first_name, last_name, department,
                                 job_title, location, time_zone, teams, roles, joining_date,
                                 attributes, active)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(p.id)
        .bind(&p.email)
        .bind(&p.external_id)
        .bind(&p.first_name)
        .bind(&p.last_name)
        .bind(&p.department)
        .bind(&p.job_title)
        .bind(&p.location)
        .bind(&p.time_zone)
        .bind(&p.teams)
        .bind(&p.roles)
        .bind(p.joining_date)
        .bind(serde_json::to_value(&p.attributes).expect("json"))
        .bind(p.active)
        .execute(pool)
        .await
        .expect("insert person");
    }
    for p in people {
        sqlx::query("UPDATE people SET manager_id = $2, hr_partner_id = $3 WHERE id = $1")
            .bind(p.id)
            .bind(p.manager_id)
            .bind(p.hr_partner_id)
            .execute(pool)
            .await
            .expect("links");
        for (kind, list) in [("team_leader", &p.team_leaders), ("coach", &p.coaches)] {
            for r in list {
                sqlx::query(
                    "INSERT INTO person_relations (person_id, kind, related_id) VALUES ($1, $2, $3)",
                )
                .bind(p.id)
                .bind(kind)
                .bind(r)
                .execute(pool)
                .await
                .expect("relation");
            }
        }
        for s in &p.segments {
            sqlx::query(
                "INSERT INTO segment_members (segment_id, person_id, source) VALUES ($1, $2, 'api')",
            )
            .bind(s)
            .bind(p.id)
            .execute(pool)
            .await
            .expect("member");
        }
    }
}

#[test]
fn sql_and_memory_agree_on_random_criteria() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let env = rt.block_on(TestEnv::new());
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        directory_strategy(),
        prop::collection::vec(criteria_strategy(), 24),
    );
    let matched_some = std::cell::Cell::new(0usize);
    let matched_none = std::cell::Cell::new(0usize);
    let result = runner.run(&strategy, |(people, trees)| {
        rt.block_on(load(&env.store, &people));
        let directory: BTreeMap<Uuid, DirectoryPerson> =
            people.iter().map(|p| (p.id, p.clone())).collect();
        for tree in &trees {
            // What is stored is the canonical JSON: go through it, as the fleet does.
            let tree = Criteria::parse(&tree.to_json())
                .map_err(|e| TestCaseError::fail(format!("round trip: {e:?}")))?;
            let expected: Vec<Uuid> = people
                .iter()
                .filter(|p| tree.matches(p, &directory, as_of()))
                .map(|p| p.id)
                .collect();
            let got = rt
                .block_on(env.store.matching_ids(&tree, as_of()))
                .map_err(|e| TestCaseError::fail(format!("sql: {e}")))?;
            let counter = if expected.is_empty() {
                &matched_none
            } else {
                &matched_some
            };
            counter.set(counter.get() + 1);
            prop_assert_eq!(
                got,
                expected,
                "criteria {}",
                serde_json::to_string(&tree.to_json()).unwrap_or_default()
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generators must exercise both answers, or the comparison proves little.
    let (some, none) = (matched_some.get(), matched_none.get());
    assert!(some > 100 && none > 100, "some {some}, none {none}");
}
