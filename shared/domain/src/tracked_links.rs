//! The links of a template that are tracked, and how a rendered message's links are
//! rewritten to the click redirect.
//!
//! A template's links are found in its sources (text body, HTML body, Adaptive Card strings)
//! in order of first appearance; a link's position in that list is what its tracking token
//! names. The sender (rewriting) and the api (redirecting) both compute the list from the
//! same frozen template with [`TrackedLinks::of`], so no table of links has to be written or
//! read on either path. A link whose text holds a placeholder differs per recipient: it is
//! left as it is, untracked.

use crate::RenderedMessage;
use serde_json::Value;
use std::borrow::Cow;

/// A template has at most this many tracked links; later ones are left as they are.
pub const MAX_TRACKED_LINKS: usize = 200;
/// Longer URLs are left as they are (browsers and mail clients cut them anyway).
const MAX_URL_LEN: usize = 2048;

/// The tracked links of one template, by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedLinks(Vec<String>);

impl TrackedLinks {
    /// The links of a template's sources, in order of first appearance, without repeats.
    pub fn of(body: &str, html: Option<&str>, card: Option<&Value>) -> Self {
        let mut links = Self::default();
        links.add_from(body, false);
        if let Some(html) = html {
            links.add_from(html, true);
        }
        if let Some(card) = card {
            links.add_card(card);
        }
        links
    }

    /// Adds the links of an Adaptive Card's strings (URLs of actions, Markdown in text).
    pub fn add_card(&mut self, card: &Value) {
        for_each_string(card, &mut |s| self.add_from(s, false));
    }

    fn add_from(&mut self, source: &str, html: bool) {
        for (start, end) in find_urls(source) {
            let url = target(&source[start..end], html);
            if self.0.len() >= MAX_TRACKED_LINKS
                || !trackable(&url)
                || self.position(&url).is_some()
            {
                continue;
            }
            self.0.push(url.into_owned());
        }
    }

    /// The URL at a position (what a click token names).
    pub fn url(&self, position: u16) -> Option<&str> {
        self.0.get(usize::from(position)).map(String::as_str)
    }

    pub fn position(&self, url: &str) -> Option<u16> {
        self.0
            .iter()
            .position(|l| l == url)
            .and_then(|p| u16::try_from(p).ok())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Rewrites every tracked link of a rendered message (text, HTML, card) to
    /// `tracked(position)`, and adds `pixel` (the open pixel's URL) to its HTML part.
    pub fn rewrite(
        &self,
        message: &mut RenderedMessage,
        tracked: &dyn Fn(u16) -> String,
        pixel: Option<&str>,
    ) {
        if !self.is_empty() {
            message.text = self.rewrite_str(&message.text, false, tracked);
            if let Some(html) = &message.html {
                message.html = Some(self.rewrite_str(html, true, tracked));
            }
            if let Some(card) = &mut message.card {
                map_strings(card, &mut |s| self.rewrite_str(s, false, tracked));
            }
        }
        if let (Some(html), Some(pixel)) = (&mut message.html, pixel) {
            add_pixel(html, pixel);
        }
    }

    fn rewrite_str(&self, s: &str, html: bool, tracked: &dyn Fn(u16) -> String) -> String {
        let mut out = String::with_capacity(s.len());
        let mut copied = 0;
        for (start, end) in find_urls(s) {
            if let Some(position) = self.position(&target(&s[start..end], html)) {
                out.push_str(&s[copied..start]);
                out.push_str(&tracked(position));
                copied = end;
            }
        }
        out.push_str(&s[copied..]);
        out
    }
}

/// The byte spans of the http(s) URLs in a text: from the scheme to the first space, quote,
/// angle bracket or closing parenthesis (a Markdown link's end), without trailing
/// punctuation (the full stop after a link in a sentence).
pub fn find_urls(s: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = next_scheme(&s[from..]) {
        let start = from + found;
        let rest = &s[start..];
        let mut end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | '`'))
            .unwrap_or(rest.len());
        while end > 0 && rest[..end].ends_with(['.', ',', ';', ':', '!', '?']) {
            end -= 1;
        }
        let scheme_len = if rest.starts_with("https://") { 8 } else { 7 };
        if end > scheme_len {
            spans.push((start, start + end));
        }
        from = start + end.max(scheme_len);
    }
    spans
}

fn next_scheme(s: &str) -> Option<usize> {
    match (s.find("http://"), s.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where a link leads: in HTML, `&amp;` in an attribute is `&`.
fn target(raw: &str, html: bool) -> Cow<'_, str> {
    if html && raw.contains("&amp;") {
        Cow::Owned(raw.replace("&amp;", "&"))
    } else {
        Cow::Borrowed(raw)
    }
}

/// A link that is the same for every recipient and fits in a redirect.
fn trackable(url: &str) -> bool {
    url.len() <= MAX_URL_LEN && !url.contains("{{") && !url.contains('[')
}

fn add_pixel(html: &mut String, pixel: &str) {
    let img = format!(
        "<img src=\"{pixel}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">"
    );
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => html.insert_str(at, &img),
        None => html.push_str(&img),
    }
}

fn for_each_string(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|v| for_each_string(v, f)),
        Value::Object(o) => o.values().for_each(|v| for_each_string(v, f)),
        _ => {}
    }
}

fn map_strings(v: &mut Value, f: &mut dyn FnMut(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(a) => a.iter_mut().for_each(|v| map_strings(v, f)),
        Value::Object(o) => o.values_mut().for_each(|v| map_strings(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_links_in_text_markdown_and_html() {
        let body =
            "See https://a.example/x. And [docs](https://b.example/d?q=1), or http://c.example";
        let html = r#"<a href="https://d.example/?a=1&amp;b=2">d</a> <a href='https://a.example/x'>again</a>"#;
        let card = json!({"actions": [{"type": "Action.OpenUrl", "url": "https://e.example/"}]});
        let links = TrackedLinks::of(body, Some(html), Some(&card));
        let all: Vec<&str> = links.iter().collect();
        assert_eq!(
            all,
            [
                "https://a.example/x",
                "https://b.example/d?q=1",
                "http://c.example",
                "https://d.example/?a=1&b=2",
                "https://e.example/"
            ]
        );
    }

    #[test]
    fn personalised_links_are_left_alone() {
        let links = TrackedLinks::of(
            "https://x.example/?u={{email}} https://y.example/[EMAIL]",
            None,
            None,
        );
        assert!(links.is_empty());
    }

    #[test]
    fn rewrites_each_part_and_adds_the_pixel() {
        let links = TrackedLinks::of(
            "Go to https://a.example/x.",
            Some("<html><body><a href=\"https://a.example/x\">x</a></body></html>"),
            None,
        );
        let mut m = RenderedMessage {
            text: "Go to https://a.example/x. Not https://other.example".into(),
            html: Some("<html><body><a href=\"https://a.example/x\">x</a></body></html>".into()),
            card: Some(json!({"url": "https://a.example/x"})),
            ..RenderedMessage::default()
        };
        links.rewrite(
            &mut m,
            &|p| format!("https://t.example/r/{p}"),
            Some("https://t.example/o/1"),
        );
        assert_eq!(
            m.text,
            "Go to https://t.example/r/0. Not https://other.example"
        );
        assert_eq!(
            m.html.as_deref(),
            Some("<html><body><a href=\"https://t.example/r/0\">x</a><img src=\"https://t.example/o/1\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\"></body></html>")
        );
        assert_eq!(m.card, Some(json!({"url": "https://t.example/r/0"})));
    }

    #[test]
    fn a_bare_scheme_is_not_a_link() {
        assert!(find_urls("http:// and https://").is_empty());
        assert_eq!(find_urls("xhttps://a.b"), vec![(1, 12)]);
    }
}
