//! CSV downloads: a header line, then rows fetched page by page and streamed, so a large
//! segment is never held in memory.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream;

/// One CSV field: quoted when it holds a separator, a quote or a line break. A field that
/// a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading
/// `'`, so a name typed by anyone cannot become a formula on an admin's machine.
pub fn field(value: &str) -> String {
    let guarded = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// A CSV line (CRLF, as RFC 4180 has it).
pub fn line(fields: &[&str]) -> String {
    let mut out = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

/// Fetches the page after a cursor: the CSV lines of the page and the next cursor, or
/// `None` when there are no more rows.
pub type PageFn<C> =
    Box<dyn FnMut(Option<C>) -> BoxFuture<'static, anyhow::Result<Option<(String, C)>>> + Send>;

/// A `text/csv` attachment: `header`, then the pages `next_page` yields.
pub fn csv_download<C: Send + 'static>(
    filename: &str,
    header: &[&str],
    next_page: PageFn<C>,
) -> Response {
    let first = Bytes::from(line(header));
    struct State<C> {
        cursor: Option<C>,
        next_page: PageFn<C>,
        done: bool,
    }
    let state = State {
        cursor: None,
        next_page,
        done: false,
    };
    let pages = stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        match (st.next_page)(st.cursor.take()).await {
            Ok(Some((chunk, cursor))) => {
                st.cursor = Some(cursor);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), st))
            }
            Ok(None) => None,
            Err(e) => {
                // The status line is gone already; cutting the body short is all that is left,
                // and the client sees an incomplete download rather than a silent truncation.
                tracing::error!(error = %e, "CSV download failed mid-stream");
                st.done = true;
                Some((Err(std::io::Error::other(e.to_string())), st))
            }
        }
    });
    let body = stream::once(async move { Ok(first) });
    let body = futures::StreamExt::chain(body, pages);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_needs_quoting_and_defuses_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("Doe, Jane"), "\"Doe, Jane\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(line(&["a", "b c"]), "a,b c\r\n");
    }
}
