//! Just enough RFC 5322 / MIME parsing to check what arrived: unfolded headers, and the parts
//! of a multipart body.

#[derive(Debug, Clone)]
pub struct Mail {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Mail {
    /// A message as aiosmtpd's default handler prints it: maybe a `mail options:` line and a
    /// blank line first, then the message (with an `X-Peer` header added).
    pub fn parse(raw: &str) -> Mail {
        let mut lines: Vec<&str> = raw.lines().collect();
        if lines
            .first()
            .is_some_and(|l| l.starts_with("mail options:") || l.starts_with("rcpt options:"))
        {
            let blank = lines.iter().position(|l| l.is_empty()).unwrap_or(0);
            lines.drain(..=blank);
        }
        let (headers, body) = split_headers(&lines);
        Mail { headers, body }
    }

    /// The one value of a header; panics when it is missing or repeated.
    pub fn header(&self, name: &str) -> &str {
        header(&self.headers, name)
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The parts of a multipart body, in order.
    pub fn parts(&self) -> Vec<Part> {
        let content_type = self.header("Content-Type");
        let boundary = param(content_type, "boundary")
            .unwrap_or_else(|| panic!("no boundary in Content-Type: {content_type}"));
        let delimiter = format!("--{boundary}");
        let closing = format!("--{boundary}--");
        let mut parts = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in self.body.lines() {
            if line == delimiter || line == closing {
                if let Some(lines) = current.take() {
                    let (headers, body) = split_headers(&lines);
                    parts.push(Part { headers, body });
                }
                if line == delimiter {
                    current = Some(Vec::new());
                }
            } else if let Some(lines) = current.as_mut() {
                lines.push(line);
            }
        }
        parts
    }
}

impl Part {
    pub fn header(&self, name: &str) -> &str {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let (_, value) = found
        .next()
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"));
    assert!(found.next().is_none(), "{name} appears more than once");
    value
}

/// Headers up to the first blank line, continuation lines joined (unfolded); then the body.
fn split_headers(lines: &[&str]) -> (Vec<(String, String)>, String) {
    let end = lines
        .iter()
        .position(|l| l.is_empty())
        .unwrap_or(lines.len());
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in &lines[..end] {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let body = lines.get(end + 1..).unwrap_or_default().join("\n");
    (headers, body)
}

/// A parameter of a structured header value, e.g. `boundary` of a Content-Type.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}
