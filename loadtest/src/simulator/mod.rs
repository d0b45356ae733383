//! Provider simulator: Bot Framework + Graph presence, Twilio, SendGrid v3 on one HTTP listener
//! and a plain SMTP server on another, all recording into one [`Recorder`]. [`Knobs`] make it
//! slow, flaky, down or strict about rate limits, at start or while it runs.

pub mod bot_identity;
mod callbacks;
mod config;
mod control;
mod gate;
mod http;
pub mod identity_provider;
mod knobs;
mod latency;
mod limits;
mod mime;
mod recorder;
mod sendgrid;
mod smtp;
mod teams;
mod twilio;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigError, SimConfig, DEFAULT_TWILIO_SEGMENTS_PER_SEC};
pub use knobs::{
    Availability, CallbackKnobs, ChannelKnobs, KnobError, KnobSet, Knobs, Outage, PresenceKnobs,
};
pub use latency::Latency;
pub use limits::{KeyReport, LimitKnobs, LimitScope, LimitsReport, Window, WindowReport};
pub use recorder::{
    CallbackStats, Channel, ChannelStats, NewMessage, Receipt, ReceivedMessage, Recorder,
    RejectKind, RejectedStats, Rejections, SimStats,
};
pub use twilio::num_segments;

/// A running simulator. Cancelling the token given to [`start`] stops both listeners.
pub struct SimHandle {
    pub http_addr: SocketAddr,
    pub smtp_addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    /// Change behaviour at runtime; the next provider call sees the change.
    pub knobs: Knobs,
    gate: gate::Gate,
    http_task: JoinHandle<anyhow::Result<()>>,
    smtp_task: JoinHandle<anyhow::Result<()>>,
}

impl SimHandle {
    /// `http://ip:port` of the HTTP listener, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Where bots find the Bot Framework's signing keys (`BOT_OPENID_METADATA_URL`).
    pub fn bot_openid_metadata_url(&self) -> String {
        format!("{}{}", self.base_url(), bot_identity::OPENID_METADATA_PATH)
    }

    /// The simulated identity provider's issuer (`OIDC_ISSUER`): discovery and keys below it.
    pub fn oidc_issuer(&self) -> String {
        format!("{}{}", self.base_url(), identity_provider::ISSUER_PATH)
    }

    /// Rate-limit counters and the busiest windows seen, as `GET /_sim/limits` reports them.
    pub fn limits(&self) -> LimitsReport {
        self.gate.limits()
    }

    /// Waits for both listeners to finish (after the shutdown token is cancelled).
    pub async fn join(self) -> anyhow::Result<()> {
        let http = self.http_task.await.context("http listener task")?;
        let smtp = self.smtp_task.await.context("smtp listener task")?;
        http.context("http listener")?;
        smtp.context("smtp listener")
    }
}

/// Binds both listeners (so the addresses are known on return) and serves until `shutdown`.
pub async fn start(cfg: SimConfig, shutdown: CancellationToken) -> anyhow::Result<SimHandle> {
    let mut initial = cfg.knobs.clone();
    for channel in [Channel::Email, Channel::Teams, Channel::Sms] {
        let knobs = initial.channel_mut(channel);
        if knobs.latency == Latency::default() {
            knobs.latency = cfg.latency;
        }
    }
    let knobs = Knobs::new(initial).context("invalid simulator knobs")?;

    let http_listener = TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("binding simulator http listener on {}", cfg.http_addr))?;
    let smtp_listener = TcpListener::bind(cfg.smtp_addr)
        .await
        .with_context(|| format!("binding simulator smtp listener on {}", cfg.smtp_addr))?;
    let http_addr = http_listener.local_addr()?;
    let smtp_addr = smtp_listener.local_addr()?;

    let recorder = Arc::new(Recorder::with_content(cfg.record_content));
    let gate = gate::Gate {
        recorder: recorder.clone(),
        knobs: knobs.clone(),
        limiter: Arc::default(),
    };
    let state = http::AppState::new(cfg, gate.clone()).context("building simulator state")?;
    let app = http::router(state);

    let http_task = tokio::spawn(http::serve(http_listener, app, shutdown.clone()));
    let smtp_task = tokio::spawn(smtp::serve(smtp_listener, gate.clone(), shutdown));

    Ok(SimHandle {
        http_addr,
        smtp_addr,
        recorder,
        knobs,
        gate,
        http_task,
        smtp_task,
    })
}
