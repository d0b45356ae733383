//! A few slow or stalled clients must not take a replica out of service: an import that
//! stalls holds no database connection, is cut off after the body read timeout with a 408,
//! and imports beyond `IMPORT_CONCURRENCY` are refused at once with 503 and `Retry-After`.
//! Before, five stalled imports held every pooled connection and every other request
//! answered 500 after the pool's acquire timeout.

use pushfleet_testkit::{Service, TestApp};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upper bound for answers that should come at once or after the body timeout.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// Sends the headers of a large CSV import and its first lines, then stalls.
async fn stalled_import(app: &TestApp) -> TcpStream {
    let addr = app.api_url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).await.expect("connect to the api");
    let head = format!(
        "POST /v1/people/import HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/csv\r\n\
         Authorization: Bearer {key}\r\n\
         Content-Length: 10000000\r\n\r\nemail,first_name\nstalled@example.org,Stalled\n",
        key = app.api_key
    );
    socket
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    socket
}

/// The status code and raw text of the answer on `socket` (read until the server closes it
/// or the JSON body is complete).
async fn answer(mut socket: TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, async {
        let mut chunk = [0u8; 4096];
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            let text = String::from_utf8_lossy(&buf);
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                if body.trim_end().ends_with('}') {
                    break;
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "an answer within {ANSWER_WITHIN:?}");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_imports_hold_no_connection_and_are_cut_off() {
    let mut app = TestApp::spawn_with(&[Service::Api]).await;
    app.body_read_timeout = Duration::from_secs(3);
    app.restart_api().await;

    let mut stalled = Vec::new();
    for _ in 0..5 {
        stalled.push(stalled_import(&app).await);
    }
    // Everything else still works while they stall: each of these needs a connection from
    // a pool of 5 (the test environment's), which two stalled imports used to exhaust.
    for i in 0..20 {
        let (status, body) = app
            .post(
                "/v1/people",
                &json!({"people": [{"email": format!("p{i}@example.org"), "first_name": "P"}]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["ids"][0].as_str().expect("an id").to_owned();
        let (status, body) = app.get(&format!("/v1/people/{id}")).await;
        assert_eq!(status, 200, "{body}");
    }

    let answers = futures::future::join_all(stalled.into_iter().map(answer)).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort_unstable();
    // Two took the replica's import slots and were cut off when their body stalled; the
    // other three were refused at once.
    assert_eq!(statuses, [408, 408, 503, 503, 503], "{answers:?}");
    for (status, text) in &answers {
        assert!(text.contains("\"error\""), "a JSON body: {text}");
        if *status == 503 {
            assert!(
                text.to_ascii_lowercase().contains("retry-after: 5"),
                "{text}"
            );
        }
    }
    // Nothing of the stalled imports was written, and the slots are free again.
    let (status, report) = app
        .post_raw(
            "/v1/people/import",
            "text/csv",
            "email,first_name\nlater@example.org,Later\n",
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["inserted"], 1, "{report}");
    let stalled_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM people WHERE email = 'stalled@example.org'")
            .fetch_one(app.env.store.pool())
            .await
            .expect("count");
    assert_eq!(stalled_rows, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn a_csv_of_invalid_rows_lists_the_first_errors_and_counts_them_all() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let mut csv = String::from("email,first_name\n");
    for i in 0..50_000 {
        csv.push_str(&format!("not-an-email-{i},X\n"));
    }
    let (status, report) = app.post_raw("/v1/people/import", "text/csv", &csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["failed"], 50_000);
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(1_000));
    assert_eq!(report["errors_truncated"], true);
    // The first listed is the first bad line (line 2, under the header).
    assert_eq!(report["errors"][0]["row"], 2, "{report}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let mut app = TestApp::spawn_with(&[Service::Api]).await;
    app.body_read_timeout = Duration::from_secs(1);
    app.restart_api().await;
    let addr = app.api_url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).await.expect("connect to the api");
    socket
        .write_all(b"GET /v1/segments HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a head");
    // The server ends the connection (hyper may answer 408 first); before, it waited forever.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(ANSWER_WITHIN, socket.read_to_end(&mut rest)).await;
    assert!(
        ended.is_ok(),
        "the connection is closed within {ANSWER_WITHIN:?}"
    );
    app.shutdown().await;
}
