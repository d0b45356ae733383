//! Just enough RFC 5322 / MIME to read what mail senders (lettre among them) produce: unfolded
//! headers, RFC 2047 encoded words, multipart bodies, quoted-printable and base64.

use std::collections::HashMap;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Padding is optional in the wild; being strict would lose text for no benefit here.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Nesting deeper than this is not something a notification sender produces.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Default)]
pub(crate) struct ParsedMail {
    /// Top-level headers, unfolded, in order, values as sent (not decoded).
    pub headers: Vec<(String, String)>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

pub(crate) fn parse(raw: &[u8]) -> ParsedMail {
    let (headers, body) = split_entity(raw);
    let mut mail = ParsedMail {
        subject: header(&headers, "subject").map(decode_words),
        message_id: header(&headers, "message-id")
            .map(str::to_owned)
            .filter(|v| !v.is_empty()),
        ..ParsedMail::default()
    };
    walk(&headers, body, 0, &mut mail);
    mail.headers = headers;
    mail
}

/// First header named `name`, case-insensitively.
pub(crate) fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn walk(headers: &[(String, String)], body: &[u8], depth: usize, mail: &mut ParsedMail) {
    if depth > MAX_DEPTH {
        return;
    }
    let (mime_type, params) = header(headers, "content-type")
        .map(content_type)
        .unwrap_or_else(|| ("text/plain".to_owned(), HashMap::new()));
    let attachment = header(headers, "content-disposition").is_some_and(|d| {
        d.trim_start()
            .to_ascii_lowercase()
            .starts_with("attachment")
    });

    if mime_type.starts_with("multipart/") {
        if let Some(boundary) = params.get("boundary") {
            for part in split_multipart(body, boundary) {
                let (part_headers, part_body) = split_entity(part);
                walk(&part_headers, part_body, depth + 1, mail);
            }
        }
        return;
    }
    if attachment {
        return;
    }
    let slot = match mime_type.as_str() {
        "text/plain" => &mut mail.text,
        "text/html" => &mut mail.html,
        _ => return,
    };
    if slot.is_none() {
        let decoded = decode_transfer(body, header(headers, "content-transfer-encoding"));
        let text = decode_charset(&decoded, params.get("charset").map(String::as_str));
        // Mail travels with CRLF; callers compare with Rust strings, which use LF.
        *slot = Some(text.replace("\r\n", "\n"));
    }
}

/// Splits an entity into unfolded headers and the body after the first empty line.
fn split_entity(raw: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let end = line_end(raw, pos);
        let line = trim_newline(&raw[pos..end]);
        pos = end;
        if line.is_empty() {
            break;
        }
        // Raw UTF-8 in headers is allowed with SMTPUTF8/8BITMIME senders.
        let line = String::from_utf8_lossy(line);
        if line.starts_with([' ', '\t']) {
            // Unfolding removes only the line break; the leading white space stays.
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(&line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.trim().to_owned();
    }
    (headers, &raw[pos..])
}

/// Index just past the next `\n` at or after `pos`, or the end of `raw`.
fn line_end(raw: &[u8], pos: usize) -> usize {
    raw[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| pos + i + 1)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `type/subtype; name=value; name="quoted value"` -> lowercase type and parameters
/// (lowercase names, values as given).
fn content_type(value: &str) -> (String, HashMap<String, String>) {
    let mut pieces = split_params(value).into_iter();
    let mime_type = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params = pieces
        .filter_map(|p| {
            let (name, value) = p.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    (mime_type, params)
}

/// Splits on `;` outside quotes, unquoting and unescaping quoted strings.
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => current.extend(chars.next()),
            ';' if !quoted => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out
}

/// The bodies between `--boundary` delimiter lines, up to `--boundary--`. The line break
/// before each delimiter belongs to the delimiter, not to the part.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut start = None;
    let mut pos = 0;
    while pos < body.len() {
        let end = line_end(body, pos);
        let line = body[pos..end].trim_ascii_end();
        let is_close = line == close.as_bytes();
        if is_close || line == delimiter.as_bytes() {
            if let Some(s) = start {
                parts.push(strip_one_newline(&body[s..pos]));
            }
            if is_close {
                return parts;
            }
            start = Some(end);
        }
        pos = end;
    }
    // Unterminated multipart: keep what arrived rather than dropping the last part.
    if let Some(s) = start {
        parts.push(&body[s..]);
    }
    parts
}

fn strip_one_newline(part: &[u8]) -> &[u8] {
    part.strip_suffix(b"\r\n")
        .or_else(|| part.strip_suffix(b"\n"))
        .unwrap_or(part)
}

fn decode_transfer(body: &[u8], encoding: Option<&str>) -> Vec<u8> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("quoted-printable") => decode_quoted_printable(body),
        Some("base64") => {
            let compact: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            LENIENT_BASE64.decode(&compact).unwrap_or_else(|e| {
                tracing::debug!(error = %e, "undecodable base64 body kept as is");
                body.to_vec()
            })
        }
        _ => body.to_vec(),
    }
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(hi)? * 16 + digit(lo)?) as u8)
}

/// RFC 2045 quoted-printable, leniently: a `=` that starts no valid escape is kept literally.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'=' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let rest = &body[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3; // soft line break
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let Some(byte) = rest.get(..2).and_then(|pair| hex_pair(pair[0], pair[1])) {
            out.push(byte);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.map(str::to_ascii_lowercase).as_deref() {
        // Close enough for a test double: Latin-1 bytes are the first 256 code points.
        Some("iso-8859-1" | "latin1" | "latin-1" | "windows-1252") => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

enum Segment {
    Text(String),
    Word { charset: String, bytes: Vec<u8> },
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`). White space between adjacent
/// encoded words is dropped, and adjacent words in one charset are joined before decoding so a
/// character split across two words survives.
pub(crate) fn decode_words(value: &str) -> String {
    let mut segments: Vec<Segment> = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        match parse_word(&rest[start..]) {
            Some((segment, used)) => {
                if start > 0 {
                    segments.push(Segment::Text(rest[..start].to_owned()));
                }
                segments.push(segment);
                rest = &rest[start + used..];
            }
            None => {
                segments.push(Segment::Text(rest[..start + 2].to_owned()));
                rest = &rest[start + 2..];
            }
        }
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_owned()));
    }

    let mut out = String::new();
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut iter = segments.into_iter().peekable();
    while let Some(segment) = iter.next() {
        match segment {
            Segment::Word { charset, bytes } => match &mut pending {
                Some((cs, buf)) if cs.eq_ignore_ascii_case(&charset) => buf.extend(bytes),
                _ => {
                    if let Some((cs, buf)) = pending.take() {
                        out.push_str(&decode_charset(&buf, Some(&cs)));
                    }
                    pending = Some((charset, bytes));
                }
            },
            Segment::Text(text) => {
                let between_words = text.trim().is_empty()
                    && pending.is_some()
                    && matches!(iter.peek(), Some(Segment::Word { .. }));
                if between_words {
                    continue;
                }
                if let Some((cs, buf)) = pending.take() {
                    out.push_str(&decode_charset(&buf, Some(&cs)));
                }
                out.push_str(&text);
            }
        }
    }
    if let Some((cs, buf)) = pending {
        out.push_str(&decode_charset(&buf, Some(&cs)));
    }
    out
}

/// Parses one encoded word at the start of `s`; returns it and the bytes it spans.
fn parse_word(s: &str) -> Option<(Segment, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, after) = inner.split_once('?')?;
    let (encoding, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let text = &after[..end];
    if charset.is_empty() || text.contains([' ', '\t']) {
        return None;
    }
    // RFC 2231 allows a language suffix: `utf-8*en`.
    let charset = charset.split('*').next().unwrap_or(charset).to_owned();
    let bytes = match encoding {
        "B" | "b" => LENIENT_BASE64.decode(text).ok()?,
        "Q" | "q" => decode_q(text.as_bytes()),
        _ => return None,
    };
    // `after` is a suffix of `s`, so this is the offset just past the closing `?=`.
    let used = s.len() - after.len() + end + 2;
    Some((Segment::Word { charset, bytes }, used))
}

fn decode_q(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => {
                out.push(b' ');
                i += 1;
            }
            b'=' => match text.get(i + 1..i + 3).and_then(|p| hex_pair(p[0], p[1])) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(decode_words("plain subject"), "plain subject");
        assert_eq!(decode_words("=?utf-8?b?R3LDvMOfZQ==?="), "Grüße");
        assert_eq!(
            decode_words("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_dich?="),
            "Grüße dich"
        );
        // Adjacent words: white space between them vanishes, split characters are rejoined.
        assert_eq!(
            decode_words("=?utf-8?b?R3LD?= =?utf-8?b?vMOfZQ==?= !"),
            "Grüße !"
        );
        assert_eq!(
            decode_words("Re: =?utf-8*en?q?caf=C3=A9?= now"),
            "Re: café now"
        );
        assert_eq!(decode_words("=?iso-8859-1?q?caf=E9?="), "café");
        assert_eq!(
            decode_words("broken =?utf-8?x?abc?= word"),
            "broken =?utf-8?x?abc?= word"
        );
    }

    #[test]
    fn content_type_params() {
        let (kind, params) =
            content_type("Multipart/Alternative; boundary=\"a;b\\\"c\"; charset=UTF-8");
        assert_eq!(kind, "multipart/alternative");
        assert_eq!(params.get("boundary").map(String::as_str), Some("a;b\"c"));
        assert_eq!(params.get("charset").map(String::as_str), Some("UTF-8"));
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(
            decode_quoted_printable(b"Gr=C3=BC=C3=9Fe, a long=\r\n line =3D ok = end"),
            "Grüße, a long line = ok = end".as_bytes()
        );
    }

    #[test]
    fn multipart_alternative_with_encodings() {
        let raw = concat!(
            "Subject: =?utf-8?q?Hall=C3=B6?=\r\n",
            "Message-ID: <m1@example.com>\r\n",
            "X-Long: first\r\n",
            "\tsecond\r\n",
            "Content-Type: multipart/alternative;\r\n",
            " boundary=\"b1\"\r\n",
            "\r\n",
            "preamble\r\n",
            "--b1\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "Hall=C3=B6\r\n",
            "line two\r\n",
            "--b1\r\n",
            "Content-Type: text/html; charset=utf-8\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n",
            "PHA+SGFsbMO2PC9wPg==\r\n",
            "--b1--\r\n",
            "epilogue\r\n",
        );
        let mail = parse(raw.as_bytes());
        assert_eq!(mail.subject.as_deref(), Some("Hallö"));
        assert_eq!(mail.message_id.as_deref(), Some("<m1@example.com>"));
        assert_eq!(header(&mail.headers, "x-long"), Some("first\tsecond"));
        assert_eq!(mail.text.as_deref(), Some("Hallö\nline two"));
        assert_eq!(mail.html.as_deref(), Some("<p>Hallö</p>"));
    }

    #[test]
    fn single_part_and_garbage() {
        let mail = parse(b"Subject: hi\r\n\r\nbody\r\nmore");
        assert_eq!(mail.text.as_deref(), Some("body\nmore"));
        let mail = parse(b"no colon here\r\n\r\n");
        assert!(mail.headers.is_empty());
        assert_eq!(mail.text.as_deref(), Some(""));
        let mail = parse(b"Content-Type: multipart/mixed\r\n\r\nno boundary");
        assert!(mail.text.is_none());
    }
}
