//! Adaptive Cards as Teams (the Bot Framework) accepts them: checked when a template is saved,
//! and by the provider simulator on every send, so that a card the API accepts is a card the
//! "provider" accepts.
//!
//! The rules are structural: `type`, a supported `version`, the element and action types
//! Teams renders, their required fields, unique input ids and a bounded nesting depth. Every
//! error names the JSON path (`card.body[2].text`).
//!
//! A template's card may hold `{{placeholders}}` in any string; rendering replaces them with a
//! recipient's values, which may be anything (empty too). So a rule may only look at a
//! string's contents where a placeholder cannot pass: `type` and `version` must be one of a
//! few literals, and an input `id` must be a literal (no `{{` nor `[FIRSTNAME]`...), since two ids that differ
//! in the template could render equal. Other strings only need to be strings. Hence a card
//! that passes here before rendering passes after rendering, for every recipient.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// The schema versions Teams renders.
pub const SUPPORTED_VERSIONS: [&str; 6] = ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"];

/// How deeply cards, elements and actions may nest (the top card is level 0, its body's
/// elements level 1). Real cards stay well below; the bound keeps the check, and Teams'
/// renderer, away from pathological input.
pub const MAX_DEPTH: usize = 16;

/// Errors past this many are not reported: one card cannot flood an error response.
pub const MAX_ERRORS: usize = 20;

/// The element types Teams renders (`Column` also stands alone).
pub const ELEMENT_TYPES: [&str; 17] = [
    "TextBlock",
    "Image",
    "Container",
    "ColumnSet",
    "Column",
    "FactSet",
    "ImageSet",
    "ActionSet",
    "RichTextBlock",
    "Table",
    "Input.Text",
    "Input.Number",
    "Input.Date",
    "Input.Time",
    "Input.Toggle",
    "Input.ChoiceSet",
    "Media",
];

/// The action types Teams renders.
pub const ACTION_TYPES: [&str; 5] = [
    "Action.OpenUrl",
    "Action.Submit",
    "Action.Execute",
    "Action.ShowCard",
    "Action.ToggleVisibility",
];

/// What is wrong at one path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardProblem {
    #[error("is required")]
    Missing,
    #[error("must be an object")]
    NotAnObject,
    #[error("must be an array")]
    NotAnArray,
    #[error("must be a string")]
    NotAString,
    #[error("must be \"{0}\"")]
    WrongType(&'static str),
    #[error("unsupported version {0:?}: Teams renders versions 1.0 to 1.5")]
    UnsupportedVersion(String),
    #[error("unknown element type {0:?}")]
    UnknownElement(String),
    #[error("unknown action type {0:?}; known: Action.OpenUrl, Action.Submit, Action.Execute, Action.ShowCard, Action.ToggleVisibility")]
    UnknownAction(String),
    #[error("must not be empty")]
    Empty,
    #[error("must be a literal: an input id cannot use placeholders")]
    Placeholder,
    #[error("input id {id:?} is already used at {first}")]
    DuplicateId { id: String, first: String },
    #[error("Action.ShowCard cannot be a selectAction")]
    ShowCardAsSelectAction,
    #[error("nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
}

/// One problem, with the JSON path where it is, e.g. `card.body[2].text`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct CardError {
    pub path: String,
    pub problem: CardProblem,
}

/// Every problem found in one card (at least one, at most [`MAX_ERRORS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardErrors(pub Vec<CardError>);

impl fmt::Display for CardErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CardErrors {}

/// Checks a card (the attachment's `content`) as Teams would; paths start with `card`.
pub fn validate_card(card: &Value) -> Result<(), CardErrors> {
    let mut check = Checker::default();
    check.card(card, "card", 0, true);
    if check.errors.is_empty() {
        Ok(())
    } else {
        Err(CardErrors(check.errors))
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<CardError>,
    /// Input ids seen so far, with where: unique across the whole card, ShowCards included,
    /// because a submit merges every input's `id: value` into one object.
    ids: HashMap<String, String>,
}

fn at(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl Checker {
    fn fail(&mut self, path: String, problem: CardProblem) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(CardError { path, problem });
        }
    }

    fn object<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        let obj = v.as_object();
        if obj.is_none() {
            self.fail(path.to_owned(), CardProblem::NotAnObject);
        }
        obj
    }

    /// A string field: `Some` when present and a string; an error when required and absent.
    fn string<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<&'v str> {
        match obj.get(key) {
            None if required => {
                self.fail(at(path, key), CardProblem::Missing);
                None
            }
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.fail(at(path, key), CardProblem::NotAString);
                None
            }
        }
    }

    /// An array field's items with their paths; an error when required and absent.
    fn array<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Vec<(String, &'v Value)> {
        let path = at(path, key);
        match obj.get(key) {
            None if required => {
                self.fail(path, CardProblem::Missing);
                Vec::new()
            }
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (index(&path, i), v))
                .collect(),
            Some(_) => {
                self.fail(path, CardProblem::NotAnArray);
                Vec::new()
            }
        }
    }

    /// An object whose `type` may be left out but, if given, must be `expected` (a column
    /// in a ColumnSet, a row in a Table).
    fn implicit<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        expected: &'static str,
    ) -> Option<&'v Map<String, Value>> {
        let obj = self.object(v, path)?;
        if self
            .string(obj, path, "type", false)
            .is_some_and(|t| t != expected)
        {
            self.fail(at(path, "type"), CardProblem::WrongType(expected));
        }
        Some(obj)
    }

    fn too_deep(&mut self, path: &str, depth: usize) -> bool {
        let deep = depth > MAX_DEPTH;
        if deep {
            self.fail(path.to_owned(), CardProblem::TooDeep);
        }
        deep
    }

    fn card(&mut self, v: &Value, path: &str, depth: usize, top: bool) {
        if self.too_deep(path, depth) {
            return;
        }
        let Some(obj) = self.object(v, path) else {
            return;
        };
        if self
            .string(obj, path, "type", true)
            .is_some_and(|t| t != "AdaptiveCard")
        {
            self.fail(at(path, "type"), CardProblem::WrongType("AdaptiveCard"));
        }
        // A card shown by Action.ShowCard inherits its parent's version.
        if let Some(version) = self.string(obj, path, "version", top) {
            if !SUPPORTED_VERSIONS.contains(&version) {
                self.fail(
                    at(path, "version"),
                    CardProblem::UnsupportedVersion(version.to_owned()),
                );
            }
        }
        self.elements(obj, path, "body", false, depth);
        for (p, action) in self.array(obj, path, "actions", false) {
            self.action(action, &p, depth + 1, false);
        }
        self.select_action(obj, path, depth);
    }

    fn elements(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
        depth: usize,
    ) {
        for (p, element) in self.array(obj, path, key, required) {
            self.element(element, &p, depth + 1);
        }
    }

    fn select_action(&mut self, obj: &Map<String, Value>, path: &str, depth: usize) {
        if let Some(action) = obj.get("selectAction") {
            self.action(action, &at(path, "selectAction"), depth + 1, true);
        }
    }

    fn element(&mut self, v: &Value, path: &str, depth: usize) {
        if self.too_deep(path, depth) {
            return;
        }
        let Some(obj) = self.object(v, path) else {
            return;
        };
        let Some(kind) = self.string(obj, path, "type", true) else {
            return;
        };
        match kind {
            "TextBlock" => {
                self.string(obj, path, "text", true);
            }
            "Image" => {
                self.string(obj, path, "url", true);
                self.select_action(obj, path, depth);
            }
            "Container" => {
                self.elements(obj, path, "items", true, depth);
                self.select_action(obj, path, depth);
            }
            "Column" => self.column(obj, path, depth),
            "ColumnSet" => {
                for (p, column) in self.array(obj, path, "columns", false) {
                    if !self.too_deep(&p, depth + 1) {
                        if let Some(column) = self.implicit(column, &p, "Column") {
                            self.column(column, &p, depth + 1);
                        }
                    }
                }
                self.select_action(obj, path, depth);
            }
            "FactSet" => {
                for (p, fact) in self.array(obj, path, "facts", true) {
                    if let Some(fact) = self.object(fact, &p) {
                        self.string(fact, &p, "title", true);
                        self.string(fact, &p, "value", true);
                    }
                }
            }
            "ImageSet" => {
                for (p, image) in self.array(obj, path, "images", true) {
                    if let Some(image) = self.implicit(image, &p, "Image") {
                        self.string(image, &p, "url", true);
                        self.select_action(image, &p, depth + 1);
                    }
                }
            }
            "ActionSet" => {
                for (p, action) in self.array(obj, path, "actions", true) {
                    self.action(action, &p, depth + 1, false);
                }
            }
            "RichTextBlock" => {
                for (p, inline) in self.array(obj, path, "inlines", true) {
                    // A plain string is a TextRun with default styling.
                    if inline.is_string() {
                        continue;
                    }
                    if let Some(run) = self.implicit(inline, &p, "TextRun") {
                        self.string(run, &p, "text", true);
                    }
                }
            }
            "Table" => self.table(obj, path, depth),
            "Input.Text" | "Input.Number" | "Input.Date" | "Input.Time" => {
                self.input_id(obj, path);
            }
            "Input.Toggle" => {
                self.input_id(obj, path);
                self.string(obj, path, "title", true);
            }
            "Input.ChoiceSet" => {
                self.input_id(obj, path);
                for (p, choice) in self.array(obj, path, "choices", true) {
                    if let Some(choice) = self.implicit(choice, &p, "Input.Choice") {
                        self.string(choice, &p, "title", true);
                        self.string(choice, &p, "value", true);
                    }
                }
            }
            "Media" => {
                for (p, source) in self.array(obj, path, "sources", true) {
                    if let Some(source) = self.object(source, &p) {
                        self.string(source, &p, "url", true);
                    }
                }
            }
            other => self.fail(
                at(path, "type"),
                CardProblem::UnknownElement(other.to_owned()),
            ),
        }
    }

    fn column(&mut self, obj: &Map<String, Value>, path: &str, depth: usize) {
        self.elements(obj, path, "items", false, depth);
        self.select_action(obj, path, depth);
    }

    fn table(&mut self, obj: &Map<String, Value>, path: &str, depth: usize) {
        for (p, column) in self.array(obj, path, "columns", false) {
            self.implicit(column, &p, "TableColumnDefinition");
        }
        for (p, row) in self.array(obj, path, "rows", false) {
            if self.too_deep(&p, depth + 1) {
                continue;
            }
            let Some(row) = self.implicit(row, &p, "TableRow") else {
                continue;
            };
            for (p, cell) in self.array(row, &p, "cells", false) {
                if self.too_deep(&p, depth + 2) {
                    continue;
                }
                if let Some(cell) = self.implicit(cell, &p, "TableCell") {
                    self.elements(cell, &p, "items", true, depth + 2);
                    self.select_action(cell, &p, depth + 2);
                }
            }
        }
    }

    fn input_id(&mut self, obj: &Map<String, Value>, path: &str) {
        let Some(id) = self.string(obj, path, "id", true) else {
            return;
        };
        let id_path = at(path, "id");
        if id.trim().is_empty() {
            self.fail(id_path, CardProblem::Empty);
        } else if crate::template::has_placeholder(id) {
            self.fail(id_path, CardProblem::Placeholder);
        } else if let Some(first) = self.ids.get(id) {
            let first = first.clone();
            self.fail(
                id_path,
                CardProblem::DuplicateId {
                    id: id.to_owned(),
                    first,
                },
            );
        } else {
            self.ids.insert(id.to_owned(), id_path);
        }
    }

    fn action(&mut self, v: &Value, path: &str, depth: usize, select: bool) {
        if self.too_deep(path, depth) {
            return;
        }
        let Some(obj) = self.object(v, path) else {
            return;
        };
        let Some(kind) = self.string(obj, path, "type", true) else {
            return;
        };
        match kind {
            "Action.OpenUrl" => {
                self.string(obj, path, "url", true);
            }
            "Action.Submit" | "Action.Execute" => {}
            "Action.ShowCard" if select => {
                self.fail(at(path, "type"), CardProblem::ShowCardAsSelectAction);
            }
            "Action.ShowCard" => match obj.get("card") {
                Some(card) => self.card(card, &at(path, "card"), depth + 1, false),
                None => self.fail(at(path, "card"), CardProblem::Missing),
            },
            "Action.ToggleVisibility" => {
                for (p, target) in self.array(obj, path, "targetElements", true) {
                    // An element id, or {"elementId": ..., "isVisible": ...}.
                    if target.is_string() {
                        continue;
                    }
                    if let Some(target) = self.implicit(target, &p, "TargetElement") {
                        self.string(target, &p, "elementId", true);
                    }
                }
            }
            other => self.fail(
                at(path, "type"),
                CardProblem::UnknownAction(other.to_owned()),
            ),
        }
    }
}

#[cfg(test)]
#[path = "adaptive_card_tests.rs"]
mod tests;
