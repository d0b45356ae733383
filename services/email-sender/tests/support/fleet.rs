//! Running the e-mail sender with a test's own configuration next to a `TestApp` (whose
//! `start(Service::EmailSender)` always uses the simulator's SMTP listener).

use pushfleet_email_sender::EmailConfig;
use pushfleet_testkit::TestApp;
use serde_json::Value;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// An in-process e-mail sender, stopped (and checked) with `stop`.
pub struct Sender {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Sender {
    pub fn start(cfg: EmailConfig) -> Sender {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(pushfleet_email_sender::run(cfg, shutdown.clone()));
        Sender { shutdown, task }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the e-mail sender stopped with an error: {e:#}"),
            Err(e) => panic!("the e-mail sender panicked: {e}"),
        }
    }
}

/// A campaign of `n` people on the e-mail channel, sent with `cfg` to completion. Returns the
/// campaign id and its final view.
pub async fn send_campaign(app: &TestApp, cfg: EmailConfig, n: usize) -> (Uuid, Value) {
    let sender = Sender::start(cfg);
    let campaign = app
        .create_campaign(n, &[pushfleet_domain::Channel::Email])
        .await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    sender.stop().await;
    (campaign, view)
}
