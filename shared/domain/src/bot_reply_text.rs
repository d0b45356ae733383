//! What the Teams bot answers when a user presses one of its buttons. Seed 004: after a
//! segment button, confirm what the user joined or left and say how to undo it.

/// The segment buttons of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentAction {
    OptIn,
    OptOut,
}

/// The placeholder a segment's own reply text may use for the segment's name.
pub const SEGMENT_PLACEHOLDER: &str = "{{segment}}";

/// The reply after a segment button: the segment's own text (with `{{segment}}` replaced by
/// its name) or the default, which names the segment and says how to undo the choice.
pub fn segment_reply(action: SegmentAction, segment: &str, custom: Option<&str>) -> String {
    match custom {
        Some(text) => text.replace(SEGMENT_PLACEHOLDER, segment),
        None => default_segment_reply(action, segment),
    }
}

pub fn default_segment_reply(action: SegmentAction, segment: &str) -> String {
    match action {
        SegmentAction::OptIn => format!(
            "You have joined \"{segment}\" and will get its messages here. \
             To leave at any time, press Opt-out on its card."
        ),
        SegmentAction::OptOut => format!(
            "You have left \"{segment}\" and will get no more of its messages. \
             To join again, press Opt-in on its card."
        ),
    }
}

/// After the unsubscribe button (Teams as a whole).
pub const UNSUBSCRIBED_REPLY: &str =
    "You are unsubscribed: nothing more will be sent to you here. Press Subscribe to get messages again.";
/// After the subscribe button.
pub const SUBSCRIBED_REPLY: &str =
    "You are subscribed again. To stop at any time, press Unsubscribe.";
/// When the user is not in the directory.
pub const UNKNOWN_USER_REPLY: &str =
    "Sorry, I could not find you in the directory, so nothing was changed.";

/// After a survey's answers are stored (first or again).
pub const SURVEY_SAVED_REPLY: &str = "Thanks, your answers are saved.";
/// When someone who was not sent the survey answers it.
pub const SURVEY_NOT_SENT_REPLY: &str =
    "Sorry, this survey was not sent to you, so your answers were not saved.";

/// When a survey's answers are refused: what is wrong and what to do; nothing was saved.
pub fn survey_refused_reply(problem: &crate::survey::AnswerError) -> String {
    let problem = problem.to_string();
    let mut chars = problem.chars();
    let problem = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => problem,
    };
    format!("Your answers were not saved: {problem} Please correct it and press Submit again.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_the_segment_and_say_how_to_undo() {
        let joined = segment_reply(SegmentAction::OptIn, "Hiking club", None);
        assert!(joined.contains("\"Hiking club\""), "{joined}");
        assert!(joined.contains("Opt-out"), "{joined}");
        let left = segment_reply(SegmentAction::OptOut, "Hiking club", None);
        assert!(
            left.contains("\"Hiking club\"") && left.contains("Opt-in"),
            "{left}"
        );
    }

    #[test]
    fn a_custom_text_may_name_the_segment() {
        assert_eq!(
            segment_reply(
                SegmentAction::OptIn,
                "News",
                Some("Welcome to {{segment}}! Opt out with the button.")
            ),
            "Welcome to News! Opt out with the button."
        );
        assert_eq!(
            segment_reply(SegmentAction::OptOut, "News", Some("Bye.")),
            "Bye."
        );
    }
}
