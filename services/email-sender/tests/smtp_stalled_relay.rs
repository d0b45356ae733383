//! A relay that accepts the connection and then never answers must not hold a sender slot
//! forever: the send gives up after `SMTP_TIMEOUT_MS`, as a transient failure.

mod support;

use pushfleet_email_sender::{EmailConfig, SmtpProvider};
use pushfleet_sender::{Provider, ProviderError};
use std::time::{Duration, Instant};
use support::jobs::{email_config, message, send_job};
use tokio::net::TcpListener;

#[tokio::test]
async fn a_relay_that_never_answers_times_out_as_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    // Accepts and keeps every connection open without a word, not even the greeting.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });

    let timeout = Duration::from_millis(500);
    let cfg = EmailConfig {
        smtp_port: port,
        smtp_timeout: timeout,
        ..email_config()
    };
    let provider = SmtpProvider::new(&cfg).expect("provider");
    for attempt in 1..=2 {
        // The second attempt runs on the fresh pool the first one left behind.
        let started = Instant::now();
        let result = provider
            .send(&send_job(attempt, "ada@example.org"), &message())
            .await;
        assert!(
            matches!(&result, Err(ProviderError::Transient { reason, .. }) if reason.contains("no answer")),
            "{result:?}"
        );
        assert!(started.elapsed() < timeout * 10, "{:?}", started.elapsed());
    }
    silent.abort();
}
