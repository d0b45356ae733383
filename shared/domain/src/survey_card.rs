//! A survey as the Adaptive Card Teams shows: one input per question (its `id` is the
//! question's id), and a submit whose data names the survey and the campaign, so that the
//! answer that comes back through the bot says what it answers. Built when a survey is saved
//! (to check it) and when a survey campaign is broadcast (the campaign's frozen message).

use crate::survey::{Question, QuestionKind, MAX_FREE_TEXT_CHARS, SURVEY_ANSWER_ACTION};
use crate::template::{TeamsFormat, Template, TemplateError};
use serde_json::{json, Value};
use uuid::Uuid;

/// The Adaptive Card version used: 1.3 brought input labels and `isRequired`.
const CARD_VERSION: &str = "1.4";

/// Teams carries at most about 28 KB a message.
pub const MAX_SURVEY_CARD_BYTES: usize = 28_000;

/// The card for `questions`, titled `name`, submitting to `survey_id` within `campaign_id`.
pub fn survey_card(
    name: &str,
    questions: &[Question],
    survey_id: Uuid,
    campaign_id: Uuid,
) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": name, "weight": "Bolder", "size": "Medium", "wrap": true
    })];
    for q in questions {
        body.push(input(q));
    }
    json!({
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "actions": [{
            "type": "Action.Submit",
            "title": "Submit",
            "data": {
                "action": SURVEY_ANSWER_ACTION,
                "survey_id": survey_id,
                "campaign_id": campaign_id,
            }
        }]
    })
}

fn input(q: &Question) -> Value {
    let mut input = match q.kind {
        QuestionKind::SingleChoice | QuestionKind::MultipleChoice => {
            let choices: Vec<Value> = q
                .choices
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|c| json!({"title": c.label.trim(), "value": c.id.as_str()}))
                .collect();
            json!({
                "type": "Input.ChoiceSet",
                "style": "expanded",
                "isMultiSelect": q.kind == QuestionKind::MultipleChoice,
                "choices": choices,
            })
        }
        // A rating is a row of numbered choices: every client renders it the same, where
        // Input.Number's spinner would let any number through.
        QuestionKind::Rating => {
            let (min, max) = (q.min.unwrap_or(1), q.max.unwrap_or(5));
            let choices: Vec<Value> = (min..=max)
                .map(|n| json!({"title": n.to_string(), "value": n.to_string()}))
                .collect();
            json!({
                "type": "Input.ChoiceSet",
                "style": "expanded",
                "isMultiSelect": false,
                "choices": choices,
            })
        }
        QuestionKind::FreeText => json!({
            "type": "Input.Text",
            "isMultiline": true,
            "maxLength": MAX_FREE_TEXT_CHARS,
        }),
    };
    input["id"] = json!(q.id.as_str());
    input["label"] = json!(q.prompt.trim());
    input["isRequired"] = json!(q.required);
    if q.required {
        input["errorMessage"] = json!("Please answer this question.");
    }
    input
}

/// The template a survey campaign sends: the card (format `adaptive_card`), and the survey's
/// name as the text. Parsing it checks the card as Teams would and the placeholders the
/// prompts and labels use, so a survey that parses here is a message the senders can send.
pub fn survey_template(name: &str, card: &Value) -> Result<Template, TemplateError> {
    Template::parse("", name, None)?.with_teams(TeamsFormat::AdaptiveCard, Some(card))
}
