use super::*;
use serde_json::json;

/// Every problem, as (path, problem).
fn problems(card: &Value) -> Vec<(String, CardProblem)> {
    match validate_card(card) {
        Ok(()) => Vec::new(),
        Err(CardErrors(errors)) => errors.into_iter().map(|e| (e.path, e.problem)).collect(),
    }
}

/// The only problem of a card whose body is `body`.
fn only(body: Value) -> (String, CardProblem) {
    let card = json!({"type": "AdaptiveCard", "version": "1.5", "body": body});
    let mut found = problems(&card);
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

fn with_actions(actions: Value) -> (String, CardProblem) {
    let card = json!({"type": "AdaptiveCard", "version": "1.5", "actions": actions});
    let mut found = problems(&card);
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

fn p(path: &str, problem: CardProblem) -> (String, CardProblem) {
    (path.to_owned(), problem)
}

#[test]
fn a_card_using_every_element_and_action_is_valid() {
    let card = json!({
        "type": "AdaptiveCard", "version": "1.5",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "body": [
            {"type": "TextBlock", "text": "Hi {{first_name}}", "wrap": true},
            {"type": "Image", "url": "https://x.test/a.png",
             "selectAction": {"type": "Action.OpenUrl", "url": "https://x.test"}},
            {"type": "Container", "style": "good", "items": [{"type": "TextBlock", "text": ""}]},
            {"type": "ColumnSet", "columns": [
                {"type": "Column", "items": [{"type": "TextBlock", "text": "a"}]},
                {"width": "auto"}
            ]},
            {"type": "Column"},
            {"type": "FactSet", "facts": [{"title": "Due", "value": "Friday"}]},
            {"type": "ImageSet", "images": [{"type": "Image", "url": "u"}, {"url": "v"}]},
            {"type": "ActionSet", "actions": [{"type": "Action.Submit", "data": {"x": 1}}]},
            {"type": "RichTextBlock", "inlines": ["plain", {"type": "TextRun", "text": "bold"}]},
            {"type": "Table", "columns": [{"width": 1}], "rows": [
                {"type": "TableRow", "cells": [{"type": "TableCell", "items": [
                    {"type": "TextBlock", "text": "cell"}]}]}
            ]},
            {"type": "Input.Text", "id": "comment", "isMultiline": true},
            {"type": "Input.Number", "id": "rating"},
            {"type": "Input.Date", "id": "day"},
            {"type": "Input.Time", "id": "time"},
            {"type": "Input.Toggle", "id": "agree", "title": "I agree"},
            {"type": "Input.ChoiceSet", "id": "choice", "style": "expanded",
             "choices": [{"title": "Yes", "value": "yes"}, {"title": "No", "value": "no"}]},
            {"type": "Media", "sources": [{"mimeType": "video/mp4", "url": "https://x.test/v.mp4"}]}
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open", "url": "https://x.test/?u={{email}}"},
            {"type": "Action.Submit", "title": "Send"},
            {"type": "Action.Execute", "verb": "vote"},
            {"type": "Action.ShowCard", "title": "More", "card": {"type": "AdaptiveCard",
                "body": [{"type": "Input.Text", "id": "more"}]}},
            {"type": "Action.ToggleVisibility", "targetElements": ["a", {"elementId": "b"}]}
        ]
    });
    assert_eq!(problems(&card), vec![]);
    let listed = card["body"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(listed.len(), ELEMENT_TYPES.len(), "every element type used");
    assert_eq!(
        ACTION_TYPES.len(),
        card["actions"].as_array().map_or(0, Vec::len)
    );
}

#[test]
fn the_card_itself_needs_an_object_type_and_version() {
    assert_eq!(
        problems(&json!(["AdaptiveCard"])),
        vec![p("card", CardProblem::NotAnObject)]
    );
    assert_eq!(
        problems(&json!({"version": "1.5"})),
        vec![p("card.type", CardProblem::Missing)]
    );
    assert_eq!(
        problems(&json!({"type": "Poster", "version": "1.5"})),
        vec![p("card.type", CardProblem::WrongType("AdaptiveCard"))]
    );
    assert_eq!(
        problems(&json!({"type": "AdaptiveCard", "body": []})),
        vec![p("card.version", CardProblem::Missing)]
    );
    assert_eq!(
        problems(&json!({"type": "AdaptiveCard", "version": 1.5})),
        vec![p("card.version", CardProblem::NotAString)]
    );
    for bad in ["1.6", "2.0", "1", "", "{{first_name}}"] {
        assert_eq!(
            problems(&json!({"type": "AdaptiveCard", "version": bad})),
            vec![p(
                "card.version",
                CardProblem::UnsupportedVersion(bad.to_owned())
            )]
        );
    }
    for good in SUPPORTED_VERSIONS {
        assert_eq!(
            problems(&json!({"type": "AdaptiveCard", "version": good})),
            vec![]
        );
    }
    assert_eq!(
        problems(&json!({"type": "AdaptiveCard", "version": "1.5", "body": {}})),
        vec![p("card.body", CardProblem::NotAnArray)]
    );
    assert_eq!(
        problems(&json!({"type": "AdaptiveCard", "version": "1.5", "actions": "none"})),
        vec![p("card.actions", CardProblem::NotAnArray)]
    );
}

#[test]
fn elements_need_a_known_type() {
    assert_eq!(
        only(json!(["text"])),
        p("card.body[0]", CardProblem::NotAnObject)
    );
    assert_eq!(
        only(json!([{"text": "x"}])),
        p("card.body[0].type", CardProblem::Missing)
    );
    assert_eq!(
        only(json!([{"type": "TextBlock", "text": "x"}, {"type": "Marquee"}])),
        p(
            "card.body[1].type",
            CardProblem::UnknownElement("Marquee".into())
        )
    );
    assert_eq!(
        only(json!([{"type": 3}])),
        p("card.body[0].type", CardProblem::NotAString)
    );
}

#[test]
fn elements_need_their_required_fields() {
    let cases = [
        (json!({"type": "TextBlock"}), "card.body[2].text"),
        (json!({"type": "Image"}), "card.body[2].url"),
        (json!({"type": "Container"}), "card.body[2].items"),
        (json!({"type": "FactSet"}), "card.body[2].facts"),
        (json!({"type": "ImageSet"}), "card.body[2].images"),
        (json!({"type": "ActionSet"}), "card.body[2].actions"),
        (json!({"type": "RichTextBlock"}), "card.body[2].inlines"),
        (json!({"type": "Input.Text"}), "card.body[2].id"),
        (json!({"type": "Input.Number"}), "card.body[2].id"),
        (json!({"type": "Input.Date"}), "card.body[2].id"),
        (json!({"type": "Input.Time"}), "card.body[2].id"),
        (
            json!({"type": "Input.Toggle", "title": "t"}),
            "card.body[2].id",
        ),
        (
            json!({"type": "Input.Toggle", "id": "t"}),
            "card.body[2].title",
        ),
        (
            json!({"type": "Input.ChoiceSet", "choices": []}),
            "card.body[2].id",
        ),
        (
            json!({"type": "Input.ChoiceSet", "id": "c"}),
            "card.body[2].choices",
        ),
        (json!({"type": "Media"}), "card.body[2].sources"),
    ];
    let ok = json!({"type": "TextBlock", "text": "fine"});
    for (element, path) in cases {
        let body = json!([ok, ok, element]);
        assert_eq!(only(body), p(path, CardProblem::Missing), "{element}");
    }
    assert_eq!(
        only(json!([{"type": "TextBlock", "text": ["x"]}])),
        p("card.body[0].text", CardProblem::NotAString)
    );
}

#[test]
fn nested_parts_are_checked_with_their_paths() {
    let cases = [
        (
            json!({"type": "Container", "items": [{"type": "TextBlock"}]}),
            p("card.body[0].items[0].text", CardProblem::Missing),
        ),
        (
            json!({"type": "ColumnSet", "columns": [{"type": "Column", "items": [{"type": "Image"}]}]}),
            p("card.body[0].columns[0].items[0].url", CardProblem::Missing),
        ),
        (
            json!({"type": "ColumnSet", "columns": [{"type": "Container", "items": []}]}),
            p(
                "card.body[0].columns[0].type",
                CardProblem::WrongType("Column"),
            ),
        ),
        (
            json!({"type": "FactSet", "facts": [{"title": "a", "value": "b"}, {"title": "c"}]}),
            p("card.body[0].facts[1].value", CardProblem::Missing),
        ),
        (
            json!({"type": "ImageSet", "images": [{"type": "Image"}]}),
            p("card.body[0].images[0].url", CardProblem::Missing),
        ),
        (
            json!({"type": "ActionSet", "actions": [{"type": "Action.OpenUrl"}]}),
            p("card.body[0].actions[0].url", CardProblem::Missing),
        ),
        (
            json!({"type": "RichTextBlock", "inlines": ["a", {"type": "TextRun"}]}),
            p("card.body[0].inlines[1].text", CardProblem::Missing),
        ),
        (
            json!({"type": "Table", "rows": [{"cells": [{"type": "TableCell"}]}]}),
            p("card.body[0].rows[0].cells[0].items", CardProblem::Missing),
        ),
        (
            json!({"type": "Input.ChoiceSet", "id": "c", "choices": [{"title": "Yes"}]}),
            p("card.body[0].choices[0].value", CardProblem::Missing),
        ),
        (
            json!({"type": "Media", "sources": [{"mimeType": "video/mp4"}]}),
            p("card.body[0].sources[0].url", CardProblem::Missing),
        ),
        (
            json!({"type": "Container", "items": [], "selectAction": {"type": "Action.Popup"}}),
            p(
                "card.body[0].selectAction.type",
                CardProblem::UnknownAction("Action.Popup".into()),
            ),
        ),
    ];
    for (element, expected) in cases {
        assert_eq!(only(json!([element])), expected, "{element}");
    }
}

#[test]
fn input_ids_are_literal_and_unique_across_the_card() {
    assert_eq!(
        only(json!([{"type": "Input.Text", "id": " "}])),
        p("card.body[0].id", CardProblem::Empty)
    );
    assert_eq!(
        only(json!([{"type": "Input.Text", "id": "q_{{first_name}}"}])),
        p("card.body[0].id", CardProblem::Placeholder)
    );
    assert_eq!(
        only(json!([
            {"type": "Input.Text", "id": "q1"},
            {"type": "Container", "items": [{"type": "Input.Number", "id": "q1"}]}
        ])),
        p(
            "card.body[1].items[0].id",
            CardProblem::DuplicateId {
                id: "q1".into(),
                first: "card.body[0].id".into()
            }
        )
    );
    let card = json!({"type": "AdaptiveCard", "version": "1.5",
        "body": [{"type": "Input.Text", "id": "q1"}],
        "actions": [{"type": "Action.ShowCard", "card": {"type": "AdaptiveCard",
            "body": [{"type": "Input.Toggle", "id": "q1", "title": "t"}]}}]});
    assert_eq!(
        problems(&card),
        vec![p(
            "card.actions[0].card.body[0].id",
            CardProblem::DuplicateId {
                id: "q1".into(),
                first: "card.body[0].id".into()
            }
        )]
    );
}

#[test]
fn actions_need_a_known_type_and_their_fields() {
    assert_eq!(
        with_actions(json!([{"type": "Action.Http", "url": "x"}])),
        p(
            "card.actions[0].type",
            CardProblem::UnknownAction("Action.Http".into())
        )
    );
    assert_eq!(
        with_actions(json!([{"title": "x"}])),
        p("card.actions[0].type", CardProblem::Missing)
    );
    assert_eq!(
        with_actions(json!([{"type": "Action.Submit"}, {"type": "Action.OpenUrl"}])),
        p("card.actions[1].url", CardProblem::Missing)
    );
    assert_eq!(
        with_actions(json!([{"type": "Action.ShowCard"}])),
        p("card.actions[0].card", CardProblem::Missing)
    );
    assert_eq!(
        with_actions(
            json!([{"type": "Action.ShowCard", "card": {"type": "AdaptiveCard",
            "body": [{"type": "TextBlock"}]}}])
        ),
        p("card.actions[0].card.body[0].text", CardProblem::Missing)
    );
    assert_eq!(
        with_actions(
            json!([{"type": "Action.ShowCard", "card": {"type": "AdaptiveCard",
            "version": "9.9"}}])
        ),
        p(
            "card.actions[0].card.version",
            CardProblem::UnsupportedVersion("9.9".into())
        )
    );
    assert_eq!(
        with_actions(json!([{"type": "Action.ToggleVisibility"}])),
        p("card.actions[0].targetElements", CardProblem::Missing)
    );
    assert_eq!(
        with_actions(
            json!([{"type": "Action.ToggleVisibility", "targetElements": [{"isVisible": true}]}])
        ),
        p(
            "card.actions[0].targetElements[0].elementId",
            CardProblem::Missing
        )
    );
    assert_eq!(
        only(json!([{"type": "Image", "url": "u",
            "selectAction": {"type": "Action.ShowCard", "card": {"type": "AdaptiveCard"}}}])),
        p(
            "card.body[0].selectAction.type",
            CardProblem::ShowCardAsSelectAction
        )
    );
}

#[test]
fn nesting_is_bounded() {
    let nest = |levels: usize| {
        let mut v = json!({"type": "TextBlock", "text": "deep"});
        for _ in 1..levels {
            v = json!({"type": "Container", "items": [v]});
        }
        json!([v])
    };
    let card = |body: Value| json!({"type": "AdaptiveCard", "version": "1.5", "body": body});
    assert_eq!(problems(&card(nest(MAX_DEPTH))), vec![]);
    let found = problems(&card(nest(MAX_DEPTH + 1)));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, CardProblem::TooDeep);
    let expected = format!("card.body[0]{}", ".items[0]".repeat(MAX_DEPTH));
    assert_eq!(found[0].0, expected);
}

#[test]
fn every_problem_is_reported_up_to_a_bound() {
    let card = json!({"type": "AdaptiveCard", "body": [{"type": "TextBlock"}],
        "actions": [{"type": "Action.OpenUrl"}]});
    let err = validate_card(&card).expect_err("three problems");
    assert_eq!(
        err.to_string(),
        "card.version: is required; card.body[0].text: is required; card.actions[0].url: is required"
    );
    let many: Vec<Value> = (0..100).map(|_| json!({"type": "TextBlock"})).collect();
    assert_eq!(problems(&card_with(many)).len(), MAX_ERRORS);
}

fn card_with(body: Vec<Value>) -> Value {
    json!({"type": "AdaptiveCard", "version": "1.5", "body": body})
}
