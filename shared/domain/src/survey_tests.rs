use super::*;
use crate::survey_card::{survey_card, survey_template};
use serde_json::json;
use uuid::Uuid;

fn questions(v: Value) -> Vec<Question> {
    serde_json::from_value(v).expect("questions")
}

fn sample() -> Vec<Question> {
    questions(json!([
        {"id": "lunch", "prompt": "Lunch, {{first_name}}?", "kind": "single_choice", "required": true,
         "choices": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}]},
        {"id": "days", "prompt": "Which days?", "kind": "multiple_choice",
         "choices": [{"id": "mon", "label": "Monday"}, {"id": "tue", "label": "Tuesday"},
                     {"id": "wed", "label": "Wednesday"}]},
        {"id": "nps", "prompt": "Recommend us?", "kind": "rating", "min": 0, "max": 10, "required": true},
        {"id": "why", "prompt": "Why?", "kind": "free_text"}
    ]))
}

fn fields(e: Vec<QuestionError>) -> Vec<String> {
    e.into_iter().map(|e| e.field).collect()
}

#[test]
fn a_good_survey_passes_and_its_card_is_one_teams_accepts() {
    let qs = sample();
    assert_eq!(check_questions(&qs), Ok(()));
    let card = survey_card("Team lunch", &qs, Uuid::nil(), Uuid::nil());
    survey_template("Team lunch", &card).expect("a valid card template");
    assert_eq!(card["body"][1]["type"], "Input.ChoiceSet");
    assert_eq!(card["body"][1]["id"], "lunch");
    assert_eq!(card["body"][2]["isMultiSelect"], true);
    assert_eq!(
        card["body"][3]["choices"].as_array().map(Vec::len),
        Some(11)
    );
    assert_eq!(card["body"][4]["type"], "Input.Text");
    assert_eq!(card["actions"][0]["data"]["action"], "survey_answer");
}

#[test]
fn every_problem_names_its_field() {
    let bad = questions(json!([
        {"id": "a b", "prompt": " ", "kind": "single_choice",
         "choices": [{"id": "x", "label": "X"}, {"id": "x", "label": ""}]},
        {"id": "action", "prompt": "p", "kind": "rating", "min": 2, "max": 11},
        {"id": "t", "prompt": "p", "kind": "free_text", "choices": [], "max": 3},
        {"id": "t", "prompt": "p", "kind": "multiple_choice"},
        {"id": "r", "prompt": "p", "kind": "rating"}
    ]));
    assert_eq!(
        check_questions(&bad).map_err(fields),
        Err(vec![
            "questions[0].id".to_owned(),
            "questions[0].prompt".into(),
            "questions[0].choices[1].id".into(),
            "questions[0].choices[1].label".into(),
            "questions[1].id".into(),
            "questions[1].min".into(),
            "questions[1].max".into(),
            "questions[2].choices".into(),
            "questions[2].max".into(),
            "questions[3].id".into(),
            "questions[3].choices".into(),
            "questions[4].max".into(),
        ])
    );
    assert!(check_questions(&[]).is_err());
    let many: Vec<Question> = (0..=MAX_QUESTIONS)
        .map(|i| {
            serde_json::from_value(
                json!({"id": format!("q{i}"), "prompt": "p", "kind": "free_text"}),
            )
            .expect("q")
        })
        .collect();
    assert!(check_questions(&many).is_err());
    assert!(serde_json::from_value::<Vec<Question>>(
        json!([{"id": "q", "prompt": "a\u{0}", "kind": "free_text"}])
    )
    .is_err());
    assert!(serde_json::from_value::<Vec<Question>>(
        json!([{"id": "q", "prompt": "p", "kind": "free_text", "extra": 1}])
    )
    .is_err());
}

#[test]
fn answers_are_checked_and_normalised() {
    let qs = sample();
    let submit = |v: Value| check_answers(&qs, v.as_object().expect("object"));
    let ok = submit(
        json!({"action": "survey_answer", "lunch": "yes", "days": "wed,mon",
                           "nps": "9", "why": "  good  "}),
    )
    .expect("valid");
    assert_eq!(
        serde_json::to_value(&ok).expect("json"),
        json!({"lunch": "yes", "days": ["mon", "wed"], "nps": 9, "why": "good"})
    );
    // Optional ones may be left out; empty strings are no answer.
    let ok = submit(json!({"lunch": "no", "days": "", "nps": 0})).expect("valid");
    assert_eq!(
        serde_json::to_value(&ok).expect("json"),
        json!({"lunch": "no", "nps": 0})
    );

    assert!(matches!(
        submit(json!({"nps": "3"})),
        Err(AnswerError::Missing { .. })
    ));
    assert!(matches!(
        submit(json!({"lunch": "maybe", "nps": "3"})),
        Err(AnswerError::UnknownChoice { .. })
    ));
    assert!(matches!(
        submit(json!({"lunch": "yes,no", "nps": "3"})),
        Err(AnswerError::OneChoiceOnly { .. })
    ));
    for bad in [
        json!("11"),
        json!(-1),
        json!("x"),
        json!("1.5"),
        json!({"a": 1}),
    ] {
        assert!(
            matches!(
                submit(json!({"lunch": "yes", "nps": bad})),
                Err(AnswerError::OutOfRange {
                    min: 0,
                    max: 10,
                    ..
                })
            ),
            "{bad}"
        );
    }
    let long = "x".repeat(MAX_FREE_TEXT_CHARS + 1);
    assert!(matches!(
        submit(json!({"lunch": "yes", "nps": 1, "why": long})),
        Err(AnswerError::TooLong { .. })
    ));
    let e = submit(json!({"lunch": "maybe", "nps": 1})).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "\"maybe\" is not one of the choices of \"Lunch, {{first_name}}?\"."
    );
}

#[test]
fn csv_cells_show_labels() {
    let qs = sample();
    assert_eq!(answer_cell(&qs[0], Some(&json!("yes"))), "Yes");
    assert_eq!(
        answer_cell(&qs[1], Some(&json!(["mon", "wed"]))),
        "Monday; Wednesday"
    );
    assert_eq!(answer_cell(&qs[2], Some(&json!(7))), "7");
    assert_eq!(answer_cell(&qs[3], Some(&json!("hi"))), "hi");
    assert_eq!(answer_cell(&qs[3], None), "");
}
