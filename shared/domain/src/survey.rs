//! Surveys (seed 001, "Survey campaigns"): questions sent to people in Teams as an Adaptive
//! Card, answered through the bot. This module holds the questions as an admin gives them
//! (checked strictly, every problem naming its field) and the check of one person's answers
//! against them; the card itself is built in [`crate::survey_card`].

use crate::input_text::Text;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

/// The most questions one survey asks (a card stays well under Teams' 28 KB).
pub const MAX_QUESTIONS: usize = 30;
/// The most choices one question offers.
pub const MAX_CHOICES: usize = 20;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_PROMPT_CHARS: usize = 500;
pub const MAX_CHOICE_LABEL_CHARS: usize = 200;
/// A question's or a choice's id: a short slug.
pub const MAX_ID_CHARS: usize = 40;
/// The longest free-text answer kept (longer ones are refused, not cut).
pub const MAX_FREE_TEXT_CHARS: usize = 2_000;
/// The widest rating scale: 0 to 10 (NPS).
pub const MAX_RATING: i64 = 10;

/// The keys of the card's submit data: a question id equal to one of them would be
/// overwritten when Teams merges the inputs into the data.
pub const RESERVED_IDS: [&str; 3] = ["action", "survey_id", "campaign_id"];

/// The `action` of a survey card's submit.
pub const SURVEY_ANSWER_ACTION: &str = "survey_answer";

/// What kind of answer a question takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// One of the choices.
    SingleChoice,
    /// Any number of the choices.
    MultipleChoice,
    /// A whole number on a scale, `min` (0 or 1) to `max` (2 to 10).
    Rating,
    /// Free text, up to 2,000 characters.
    FreeText,
}

/// A choice as given and as stored: `id` is what the card submits (a slug, so that Teams'
/// comma-joined multi-select values split back unambiguously), `label` what people see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub id: Text,
    pub label: Text,
}

/// A question as given and as stored. `choices` for single and multiple choice only;
/// `min` and `max` for ratings only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable id: letters, digits, `_` and `-`, 1 to 40 characters, unique in the survey;
    /// the card's input id and the CSV column's name.
    pub id: Text,
    /// What is asked; may use placeholders such as `{{first_name}}`.
    pub prompt: Text,
    pub kind: QuestionKind,
    /// Whether an answer must be given (the card refuses to submit without one, and so
    /// does the bot).
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Choice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// One problem with the questions, at a path such as `questions[2].choices[0].id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionError {
    pub field: String,
    pub message: String,
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= MAX_ID_CHARS
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks the questions: counts, lengths, ids, each kind's own fields. Every problem is
/// reported with its path.
pub fn check_questions(questions: &[Question]) -> Result<(), Vec<QuestionError>> {
    let mut errors = Vec::new();
    let mut fail = |field: String, message: String| errors.push(QuestionError { field, message });
    if questions.is_empty() {
        fail("questions".into(), "ask at least one question".into());
    }
    if questions.len() > MAX_QUESTIONS {
        fail(
            "questions".into(),
            format!("at most {MAX_QUESTIONS} questions"),
        );
    }
    let mut ids = HashSet::new();
    for (i, q) in questions.iter().enumerate().take(MAX_QUESTIONS) {
        let at = |f: &str| format!("questions[{i}].{f}");
        if !is_slug(&q.id) {
            fail(
                at("id"),
                format!("must be 1 to {MAX_ID_CHARS} letters, digits, '_' or '-'"),
            );
        } else if RESERVED_IDS.contains(&q.id.as_str()) {
            fail(at("id"), format!("{:?} is reserved", q.id.as_str()));
        } else if !ids.insert(q.id.as_str()) {
            fail(at("id"), "is already used by another question".into());
        }
        let prompt = q.prompt.trim();
        if prompt.is_empty() {
            fail(at("prompt"), "must not be empty".into());
        } else if prompt.chars().count() > MAX_PROMPT_CHARS {
            fail(
                at("prompt"),
                format!("must be at most {MAX_PROMPT_CHARS} characters"),
            );
        }
        let chooses = matches!(
            q.kind,
            QuestionKind::SingleChoice | QuestionKind::MultipleChoice
        );
        match (&q.choices, chooses) {
            (None, true) => fail(at("choices"), "is required for this kind".into()),
            (Some(_), false) => fail(at("choices"), "only choice questions have choices".into()),
            (Some(choices), true) => check_choices(choices, &at("choices"), &mut fail),
            (None, false) => {}
        }
        let rating = q.kind == QuestionKind::Rating;
        match (q.min, q.max, rating) {
            (Some(min), Some(max), true) => {
                if !(0..=1).contains(&min) {
                    fail(at("min"), "must be 0 or 1".into());
                }
                if !(2..=MAX_RATING).contains(&max) {
                    fail(at("max"), format!("must be between 2 and {MAX_RATING}"));
                }
            }
            (_, _, true) => fail(
                at("max"),
                "a rating needs its scale: min (0 or 1) and max (2 to 10)".into(),
            ),
            (Some(_), _, false) => fail(at("min"), "only ratings have a scale".into()),
            (_, Some(_), false) => fail(at("max"), "only ratings have a scale".into()),
            (None, None, false) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_choices(choices: &[Choice], path: &str, fail: &mut impl FnMut(String, String)) {
    if choices.len() < 2 {
        fail(path.to_owned(), "offer at least two choices".into());
    }
    if choices.len() > MAX_CHOICES {
        fail(path.to_owned(), format!("at most {MAX_CHOICES} choices"));
    }
    let mut ids = HashSet::new();
    for (j, c) in choices.iter().enumerate().take(MAX_CHOICES) {
        if !is_slug(&c.id) {
            fail(
                format!("{path}[{j}].id"),
                format!("must be 1 to {MAX_ID_CHARS} letters, digits, '_' or '-'"),
            );
        } else if !ids.insert(c.id.as_str()) {
            fail(
                format!("{path}[{j}].id"),
                "is already used by another choice".into(),
            );
        }
        let label = c.label.trim();
        if label.is_empty() {
            fail(format!("{path}[{j}].label"), "must not be empty".into());
        } else if label.chars().count() > MAX_CHOICE_LABEL_CHARS {
            fail(
                format!("{path}[{j}].label"),
                format!("must be at most {MAX_CHOICE_LABEL_CHARS} characters"),
            );
        }
    }
}

/// Why a submitted answer is refused; the text is what the bot tells the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("\"{prompt}\" needs an answer.")]
    Missing { prompt: String },
    #[error("\"{value}\" is not one of the choices of \"{prompt}\".")]
    UnknownChoice { prompt: String, value: String },
    #[error("\"{prompt}\" takes one choice only.")]
    OneChoiceOnly { prompt: String },
    #[error("\"{prompt}\" takes a whole number from {min} to {max}.")]
    OutOfRange { prompt: String, min: i64, max: i64 },
    #[error("the answer to \"{prompt}\" is longer than {MAX_FREE_TEXT_CHARS} characters.")]
    TooLong { prompt: String },
    #[error("the answer to \"{prompt}\" must be text.")]
    NotText { prompt: String },
}

/// A submitted value as text: Teams submits every input as a string (a multi-select as
/// `"a,b"`); a number or a list is taken as well, for other clients.
fn submitted_items(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::String(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::Number(n) => Some(vec![n.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().filter(|s| !s.is_empty()).collect()),
        _ => None,
    }
}

/// Checks one person's submit against the questions and returns what to store: per
/// answered question, the choice id (single), the choice ids in the survey's order
/// (multiple), the number (rating) or the text (free text). Unknown keys (the card's
/// `action`, ids of other inputs) are ignored; the first problem refuses the whole submit.
pub fn check_answers(
    questions: &[Question],
    submitted: &Map<String, Value>,
) -> Result<BTreeMap<String, Value>, AnswerError> {
    let mut answers = BTreeMap::new();
    for q in questions {
        let prompt = || q.prompt.trim().to_owned();
        let raw = submitted.get(q.id.as_str()).unwrap_or(&Value::Null);
        let answer = match q.kind {
            QuestionKind::FreeText => {
                let text = match raw {
                    Value::Null => String::new(),
                    Value::String(s) => s.trim().to_owned(),
                    _ => return Err(AnswerError::NotText { prompt: prompt() }),
                };
                if text.contains('\0') {
                    return Err(AnswerError::NotText { prompt: prompt() });
                }
                if text.chars().count() > MAX_FREE_TEXT_CHARS {
                    return Err(AnswerError::TooLong { prompt: prompt() });
                }
                (!text.is_empty()).then_some(Value::String(text))
            }
            QuestionKind::Rating => {
                let items = submitted_items(raw).unwrap_or_else(|| vec![raw.to_string()]);
                let (min, max) = (q.min.unwrap_or(1), q.max.unwrap_or(5));
                match items.as_slice() {
                    [] => None,
                    [one] => match one.parse::<i64>() {
                        Ok(n) if (min..=max).contains(&n) => Some(Value::from(n)),
                        _ => {
                            return Err(AnswerError::OutOfRange {
                                prompt: prompt(),
                                min,
                                max,
                            })
                        }
                    },
                    _ => {
                        return Err(AnswerError::OutOfRange {
                            prompt: prompt(),
                            min,
                            max,
                        })
                    }
                }
            }
            QuestionKind::SingleChoice | QuestionKind::MultipleChoice => {
                let choices = q.choices.as_deref().unwrap_or_default();
                let items = submitted_items(raw).ok_or_else(|| AnswerError::UnknownChoice {
                    prompt: prompt(),
                    value: raw.to_string(),
                })?;
                if let Some(bad) = items
                    .iter()
                    .find(|i| !choices.iter().any(|c| c.id.as_str() == i.as_str()))
                {
                    return Err(AnswerError::UnknownChoice {
                        prompt: prompt(),
                        value: bad.chars().take(100).collect(),
                    });
                }
                // In the survey's order, each once.
                let chosen: Vec<Value> = choices
                    .iter()
                    .filter(|c| items.iter().any(|i| i == c.id.as_str()))
                    .map(|c| Value::String(c.id.to_string()))
                    .collect();
                match (q.kind, chosen.len()) {
                    (_, 0) => None,
                    (QuestionKind::SingleChoice, 1) => chosen.into_iter().next(),
                    (QuestionKind::SingleChoice, _) => {
                        return Err(AnswerError::OneChoiceOnly { prompt: prompt() })
                    }
                    _ => Some(Value::Array(chosen)),
                }
            }
        };
        match answer {
            Some(a) => {
                answers.insert(q.id.to_string(), a);
            }
            None if q.required => return Err(AnswerError::Missing { prompt: prompt() }),
            None => {}
        }
    }
    Ok(answers)
}

/// A stored answer as one CSV cell: choice labels (several joined with `; `), the rating,
/// or the text.
pub fn answer_cell(q: &Question, answer: Option<&Value>) -> String {
    let label = |id: &str| {
        q.choices
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|c| c.id.as_str() == id)
            .map_or_else(|| id.to_owned(), |c| c.label.to_string())
    };
    match answer {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if q.choices.is_some() => label(s),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(label)
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
#[path = "survey_tests.rs"]
mod tests;
