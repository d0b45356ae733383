//! The HTTP mail API transport (SendGrid v3 shape) against the provider simulator: a whole
//! campaign, every recipient once with the unsubscribe headers, and how answers map onto
//! retry decisions.

mod support;

use pushfleet_config::Secret;
use pushfleet_email_sender::{
    unsubscribe_token, EmailConfig, EmailTransport, SendGridConfig, SendGridProvider,
};
use pushfleet_loadtest::simulator::{Channel as SimChannel, SimConfig, SimHandle};
use pushfleet_sender::{Provider, ProviderError};
use pushfleet_testkit::{Service, TestApp};
use serde_json::Value;
use std::collections::BTreeSet;
use support::fleet::send_campaign;
use support::jobs::{email_config, message, send_job};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "sendgrid-test-secret";

/// The provider simulator alone, for calls that do not need the fleet.
async fn simulator() -> (SimHandle, CancellationToken) {
    let stop = CancellationToken::new();
    let sim = pushfleet_loadtest::simulator::start(SimConfig::ephemeral(), stop.clone())
        .await
        .expect("start the simulator");
    (sim, stop)
}

fn sendgrid(api_base: String) -> SendGridConfig {
    SendGridConfig {
        api_base,
        api_key: Secret::new("SG.test-key".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_over_the_mail_api_reaches_every_recipient_once() {
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let cfg = EmailConfig {
        transport: EmailTransport::SendGrid(sendgrid(app.sim.base_url())),
        unsubscribe_base_url: "https://app.pushfleet.test".into(),
        unsubscribe_secret: Some(Secret::new(SECRET.into())),
        ..app.email_config()
    };
    let n = 20;
    let (campaign, view) = send_campaign(&app, cfg, n).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");

    let stats = app.sim.recorder.stats();
    assert_eq!((stats.email.unique, stats.email.duplicates), (n, 0));
    let received = app.sim.recorder.messages_for(SimChannel::Email);
    let mut recipients = BTreeSet::new();
    for msg in &received {
        let raw = &msg.raw;
        let i: usize = msg
            .recipient
            .strip_prefix("person")
            .and_then(|r| r.strip_suffix("@example.org"))
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("unexpected recipient {}", msg.recipient));
        recipients.insert(i);

        let to = &raw["personalizations"][0]["to"][0];
        assert_eq!(to["name"], format!("First{i} Last{i}"), "{raw}");
        assert_eq!(raw["from"]["email"], "noreply@pushfleet.test", "{raw}");
        assert_eq!(raw["from"]["name"], "Pushfleet", "{raw}");
        assert_eq!(raw["subject"], format!("Welcome, First{i}"));
        assert_eq!(raw["content"][0]["type"], "text/plain");
        assert_eq!(
            raw["content"][0]["value"],
            format!("Hello First{i} Last{i}, welcome aboard.")
        );
        assert_eq!(raw["content"][1]["type"], "text/html");
        // The HTML part, then the open pixel (shared/testkit/tests/tracking.rs).
        let html = raw["content"][1]["value"].as_str().unwrap_or_default();
        assert!(
            html.starts_with(&format!("<p>Hello <b>First{i} Last{i}</b></p><img src=")),
            "{html}"
        );

        let headers = &raw["headers"];
        let delivery_id: i64 = headers["X-Pushfleet-Delivery"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no delivery header: {raw}"));
        assert_eq!(
            msg.idempotency_key.as_deref(),
            Some(format!("pf-{}-{delivery_id}", campaign.simple()).as_str()),
            "the Idempotency-Key header names the delivery"
        );
        let token = headers["List-Unsubscribe"]
            .as_str()
            .and_then(|v| v.strip_prefix("<https://app.pushfleet.test/u/"))
            .and_then(|v| {
                v.strip_suffix(">, <mailto:unsubscribe@pushfleet.test?subject=unsubscribe>")
            })
            .unwrap_or_else(|| panic!("unexpected List-Unsubscribe: {raw}"));
        assert_eq!(
            unsubscribe_token::verify(SECRET.as_bytes(), token),
            Ok(delivery_id)
        );
        assert_eq!(
            headers["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        assert_eq!(
            raw["custom_args"]["pushfleet_delivery_id"],
            Value::String(delivery_id.to_string())
        );
    }
    assert_eq!(recipients, (0..n).collect(), "every person got one message");
    app.shutdown().await;
}

#[tokio::test]
async fn accepted_mail_returns_the_provider_message_id() {
    let (sim, stop) = simulator().await;
    let provider =
        SendGridProvider::new(&email_config(), &sendgrid(sim.base_url())).expect("provider");
    let receipt = provider
        .send(&send_job(7, "ada@example.org"), &message())
        .await
        .expect("202 Accepted");
    let id = receipt.provider_message_id.expect("X-Message-Id");
    assert!(!id.is_empty());
    assert_eq!(sim.recorder.stats().email.unique, 1);
    stop.cancel();
}

#[tokio::test]
async fn a_request_the_api_rejects_fails_permanently() {
    let (sim, stop) = simulator().await;
    let provider =
        SendGridProvider::new(&email_config(), &sendgrid(sim.base_url())).expect("provider");
    // No subject: SendGrid answers 400 with a field error, the same on every attempt.
    let mut empty_subject = message();
    empty_subject.subject.clear();
    match provider
        .send(&send_job(8, "ada@example.org"), &empty_subject)
        .await
    {
        Err(ProviderError::Permanent { reason }) => {
            assert!(
                reason.contains("HTTP 400") && reason.contains("subject"),
                "{reason}"
            )
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(sim.recorder.stats().email.received, 0);
    stop.cancel();
}

#[tokio::test]
async fn an_unreachable_api_is_a_transient_failure() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("ephemeral port");
    let provider = SendGridProvider::new(
        &email_config(),
        &sendgrid(format!("http://127.0.0.1:{port}")),
    )
    .expect("provider");
    let result = provider
        .send(&send_job(9, "ada@example.org"), &message())
        .await;
    assert!(
        matches!(result, Err(ProviderError::Transient { .. })),
        "{result:?}"
    );
}
