//! The Bot Framework activity a rendered message becomes: what the Teams sender posts and
//! what a campaign's preview shows, built by this one function so the two cannot differ.

use crate::{RenderedMessage, TeamsFormat};

/// The Bot Framework activity for a rendered message: markdown text, or an Adaptive Card
/// attachment for the card formats (with the text as the notification summary).
pub fn teams_activity(message: &RenderedMessage) -> serde_json::Value {
    let styled = |style: &str, title: &str| {
        serde_json::json!({
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.5",
            "body": [
                {"type": "Container", "style": style, "bleed": true, "items": [
                    {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium"}
                ]},
                {"type": "TextBlock", "text": message.text, "wrap": true}
            ]
        })
    };
    let card = match message.teams_format {
        TeamsFormat::Message => None,
        TeamsFormat::Idea => Some(styled("accent", "\u{1F4A1} Idea")),
        TeamsFormat::Success => Some(styled("good", "\u{2705} Success")),
        TeamsFormat::Important => Some(styled("attention", "\u{26A0}\u{FE0F} Important")),
        TeamsFormat::AdaptiveCard => message.card.clone(),
    };
    match card {
        None => {
            serde_json::json!({"type": "message", "text": message.text, "textFormat": "markdown"})
        }
        Some(content) => serde_json::json!({
            "type": "message",
            "summary": message.text.chars().take(120).collect::<String>(),
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": content,
            }],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_are_markdown_and_cards_are_attachments() {
        let plain = RenderedMessage {
            text: "Hi".into(),
            ..Default::default()
        };
        assert_eq!(teams_activity(&plain)["textFormat"], "markdown");
        let important = RenderedMessage {
            text: "Deadline Friday".into(),
            teams_format: TeamsFormat::Important,
            ..Default::default()
        };
        let a = teams_activity(&important);
        let card = &a["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["body"][0]["style"], "attention");
        assert_eq!(card["content"]["body"][1]["text"], "Deadline Friday");
    }

    /// The styled formats' cards pass the same check as the admins' own cards (and the
    /// simulator's), whatever the text.
    #[test]
    fn styled_cards_are_cards_teams_accepts() {
        for teams_format in [
            TeamsFormat::Idea,
            TeamsFormat::Success,
            TeamsFormat::Important,
        ] {
            let message = RenderedMessage {
                text: String::new(),
                teams_format,
                ..Default::default()
            };
            let content = &teams_activity(&message)["attachments"][0]["content"];
            assert_eq!(
                crate::adaptive_card::validate_card(content),
                Ok(()),
                "{teams_format:?}"
            );
        }
    }
}
