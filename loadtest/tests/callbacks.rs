//! Twilio status callbacks, received by a small axum server and checked with the same
//! signature code the api uses.

mod common;

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Form, Router};
use common::{Sim, WAIT};
use pushfleet_domain::twilio_signature;
use pushfleet_loadtest::simulator::SimConfig;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const AUTH_TOKEN: &str = "sim-token";
const FROM: &str = "+15550000001";
const TO: &str = "+4915112345678";

/// One callback as received: its signature header and its form fields.
struct Received {
    signature: String,
    params: Vec<(String, String)>,
}

impl Received {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    shutdown: CancellationToken,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = Router::new()
            .route("/twilio/status", post(receive))
            .with_state(tx);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Ok(Self {
            url: format!("http://{addr}/twilio/status"),
            rx,
            shutdown,
        })
    }

    async fn next(&mut self) -> anyhow::Result<Received> {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .context("no callback in time")?
            .context("receiver closed")
    }

    /// The next callback, after checking its signature.
    async fn next_verified(&mut self) -> anyhow::Result<Received> {
        let got = self.next().await?;
        anyhow::ensure!(
            twilio_signature::verify(AUTH_TOKEN, &self.url, &got.params, &got.signature),
            "bad signature on {:?}",
            got.params
        );
        Ok(got)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn receive(
    State(tx): State<mpsc::UnboundedSender<Received>>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) {
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // The test may have finished reading; a closed channel is fine then.
    let _ = tx.send(Received { signature, params });
}

async fn send_with_callback(sim: &Sim, url: &str) -> anyhow::Result<reqwest::Response> {
    sim.sms(FROM, TO, "Hi", &[("StatusCallback", url)]).await
}

#[tokio::test]
async fn sent_then_delivered_signed() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let mut receiver = Receiver::start().await?;

    let resp = send_with_callback(&sim, &receiver.url).await?;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await?;
    let sid = body["sid"].as_str().context("no sid")?.to_owned();

    let sent = receiver.next_verified().await?;
    let delivered = receiver.next_verified().await?;
    for (got, status) in [(&sent, "sent"), (&delivered, "delivered")] {
        assert_eq!(got.get("MessageStatus"), Some(status));
        assert_eq!(got.get("MessageSid"), Some(sid.as_str()));
        assert_eq!(got.get("To"), Some(TO));
        assert_eq!(got.get("From"), Some(FROM));
        assert_eq!(got.get("AccountSid"), Some("ACsim"));
        assert_eq!(got.get("ApiVersion"), Some("2010-04-01"));
        assert_eq!(got.get("ErrorCode"), None);
    }
    // A tampered parameter no longer verifies.
    let mut tampered = delivered.params.clone();
    tampered.push(("MessageStatus".into(), "read".into()));
    assert!(!twilio_signature::verify(
        AUTH_TOKEN,
        &receiver.url,
        &tampered,
        &delivered.signature
    ));

    assert!(
        sim.handle
            .recorder
            .wait_for(|s| s.callbacks.sent == 2, WAIT)
            .await
    );
    assert_eq!(sim.handle.recorder.stats().callbacks.failed, 0);
    sim.stop().await
}

#[tokio::test]
async fn failed_and_undelivered_carry_error_codes() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let mut receiver = Receiver::start().await?;
    for (field, status, code) in [
        ("failed_rate", "failed", "30008"),
        ("undelivered_rate", "undelivered", "30003"),
    ] {
        let patch = serde_json::json!({ "status_callbacks": {
            "failed_rate": 0.0, "undelivered_rate": 0.0, field: 1.0
        } });
        assert_eq!(sim.put_knobs(patch).await?.status(), 200);
        assert_eq!(send_with_callback(&sim, &receiver.url).await?.status(), 201);
        let sent = receiver.next_verified().await?;
        assert_eq!(sent.get("MessageStatus"), Some("sent"));
        let last = receiver.next_verified().await?;
        assert_eq!(last.get("MessageStatus"), Some(status));
        assert_eq!(last.get("ErrorCode"), Some(code));
    }
    sim.stop().await
}

#[tokio::test]
async fn refused_messages_get_no_callback() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let mut receiver = Receiver::start().await?;
    sim.handle.knobs.update(|k| k.sms.throttle = 1.0)?;
    assert_eq!(send_with_callback(&sim, &receiver.url).await?.status(), 429);
    sim.handle.knobs.reset();
    let resp = send_with_callback(&sim, &receiver.url).await?;
    let sid = resp.json::<Value>().await?["sid"]
        .as_str()
        .context("no sid")?
        .to_owned();
    // Callbacks arrive in order per message, and only the accepted one has any.
    for _ in 0..2 {
        let got = receiver.next_verified().await?;
        assert_eq!(got.get("MessageSid"), Some(sid.as_str()));
    }
    sim.stop().await
}

#[tokio::test]
async fn unreachable_callback_url_is_counted_failed() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    // A port that was free a moment ago and has no listener now.
    let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let url = format!("http://{addr}/twilio/status");
    assert_eq!(send_with_callback(&sim, &url).await?.status(), 201);
    assert!(
        sim.handle
            .recorder
            .wait_for(|s| s.callbacks.failed == 2, WAIT)
            .await
    );
    assert_eq!(sim.handle.recorder.stats().callbacks.sent, 0);
    sim.stop().await
}
