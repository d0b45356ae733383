//! A whole campaign delivered over SMTP to a real SMTP server that is not ours (Debian's
//! aiosmtpd), and every message checked as the server printed it: addresses, Date,
//! Message-ID, RFC 8058 unsubscribe headers, multipart/alternative with both bodies.

mod support;

use pushfleet_config::Secret;
use pushfleet_email_sender::{unsubscribe_token, EmailConfig, SmtpTls};
use pushfleet_testkit::{Service, TestApp};
use std::collections::BTreeSet;
use support::aiosmtpd::Aiosmtpd;
use support::fleet::{send_campaign, TIMEOUT};
use support::mail::Mail;

const SECRET: &str = "smtp-campaign-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_over_smtp_arrives_with_every_header() {
    let server = Aiosmtpd::plain().await;
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let cfg = EmailConfig {
        smtp_host: "127.0.0.1".into(),
        smtp_port: server.port,
        smtp_tls: SmtpTls::None,
        from: "Pushfleet <noreply@pushfleet.test>".into(),
        unsubscribe_base_url: "https://app.pushfleet.test/".into(),
        unsubscribe_secret: Some(Secret::new(SECRET.into())),
        ..app.email_config()
    };
    let n = 5;
    let (campaign, view) = send_campaign(&app, cfg, n).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");

    let mails = server.wait_for_messages(n, TIMEOUT).await;
    assert_eq!(server.message_count(), n, "each delivery sent once");
    let mut recipients = BTreeSet::new();
    let mut message_ids = BTreeSet::new();
    for mail in &mails {
        let i = check_message(mail, &campaign.simple().to_string());
        recipients.insert(i);
        message_ids.insert(mail.header("Message-ID").to_owned());
    }
    assert_eq!(recipients, (0..n).collect(), "every person got one message");
    assert_eq!(message_ids.len(), n, "one Message-ID per delivery");
    app.shutdown().await;
}

/// Checks one message; returns the index of the person it went to.
fn check_message(mail: &Mail, campaign: &str) -> usize {
    assert_eq!(mail.header("From"), "Pushfleet <noreply@pushfleet.test>");

    // `First3 Last3 <person3@example.org>`, maybe with the name quoted.
    let to = mail.header("To");
    let i: usize = to
        .split_once("<person")
        .and_then(|(_, rest)| rest.strip_suffix("@example.org>"))
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("unexpected To: {to}"));
    assert!(to.contains(&format!("First{i} Last{i}")), "To: {to}");
    assert_eq!(mail.header("Subject"), format!("Welcome, First{i}"));

    let date = chrono::DateTime::parse_from_rfc2822(mail.header("Date"))
        .unwrap_or_else(|e| panic!("Date {:?} is not RFC 5322: {e}", mail.header("Date")));
    let age = chrono::Utc::now().signed_duration_since(date);
    assert!(age.num_minutes().abs() < 10, "Date is now-ish: {date}");

    // <pf-{campaign}-{delivery}@pushfleet.test>: stable across attempts of a delivery.
    let message_id = mail.header("Message-ID");
    let delivery_id: i64 = message_id
        .strip_prefix(&format!("<pf-{campaign}-"))
        .and_then(|rest| rest.strip_suffix("@pushfleet.test>"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected Message-ID: {message_id}"));

    // RFC 8058: an https one-click URL (first) and a mailto fallback, plus the POST marker.
    let list_unsubscribe = mail.header("List-Unsubscribe");
    let (url, mailto) = list_unsubscribe
        .split_once(", ")
        .unwrap_or_else(|| panic!("two entries expected: {list_unsubscribe}"));
    assert_eq!(
        mailto,
        "<mailto:unsubscribe@pushfleet.test?subject=unsubscribe>"
    );
    let token = url
        .strip_prefix("<https://app.pushfleet.test/u/")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or_else(|| panic!("unexpected one-click URL: {url}"));
    assert_eq!(
        unsubscribe_token::verify(SECRET.as_bytes(), token),
        Ok(delivery_id),
        "the token names this delivery and carries our signature"
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );

    assert_eq!(mail.header("MIME-Version"), "1.0");
    assert!(
        mail.header("Content-Type")
            .starts_with("multipart/alternative"),
        "{}",
        mail.header("Content-Type")
    );
    let parts = mail.parts();
    assert_eq!(parts.len(), 2, "text and html: {parts:?}");
    assert!(parts[0].header("Content-Type").starts_with("text/plain"));
    assert!(
        parts[0]
            .body
            .contains(&format!("Hello First{i} Last{i}, welcome aboard.")),
        "{parts:?}"
    );
    assert!(parts[1].header("Content-Type").starts_with("text/html"));
    assert!(
        parts[1]
            .body
            .contains(&format!("<p>Hello <b>First{i} Last{i}</b></p>")),
        "{parts:?}"
    );
    i
}
