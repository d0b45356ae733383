//! Twilio status callbacks: after a message is accepted, `sent` and then a final status are
//! POSTed to its `StatusCallback`, signed like Twilio signs them.

use std::sync::Arc;
use std::time::Duration;

use pushfleet_domain::twilio_signature;
use rand::Rng;

use super::http::AppState;
use super::knobs::CallbackKnobs;
use super::recorder::Recorder;

const API_VERSION: &str = "2010-04-01";
/// Connection failures are retried this often in all, with a doubling pause.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) struct StatusCallback {
    pub url: String,
    pub message_sid: String,
    pub account_sid: String,
    pub to: String,
    /// The `From` number, or the messaging service sid when only that was given.
    pub from: String,
    pub messaging_service_sid: Option<String>,
}

/// The final status and its error code.
fn final_status(knobs: &CallbackKnobs) -> (&'static str, Option<&'static str>) {
    let draw: f64 = rand::rng().random();
    if draw < knobs.failed_rate {
        ("failed", Some("30008"))
    } else if draw < knobs.failed_rate + knobs.undelivered_rate {
        ("undelivered", Some("30003"))
    } else {
        ("delivered", None)
    }
}

/// Runs the callbacks on their own task, so the send is answered at once as Twilio does.
pub(crate) fn spawn(state: &AppState, cb: StatusCallback) {
    let knobs = state.gate.knobs.read(|k| k.status_callbacks.clone());
    let client = state.client.clone();
    let recorder = state.gate.recorder.clone();
    let auth_token = state.cfg.twilio_auth_token.clone();
    tokio::spawn(async move {
        let sender = Sender {
            client,
            recorder,
            auth_token,
        };
        sender.post(&cb, "sent", None).await;
        if knobs.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(knobs.delay_ms)).await;
        }
        let (status, error_code) = final_status(&knobs);
        sender.post(&cb, status, error_code).await;
    });
}

struct Sender {
    client: reqwest::Client,
    recorder: Arc<Recorder>,
    auth_token: String,
}

impl Sender {
    async fn post(&self, cb: &StatusCallback, status: &str, error_code: Option<&str>) {
        let mut params: Vec<(String, String)> = [
            ("MessageSid", cb.message_sid.as_str()),
            ("MessageStatus", status),
            ("To", cb.to.as_str()),
            ("From", cb.from.as_str()),
            ("AccountSid", cb.account_sid.as_str()),
            ("ApiVersion", API_VERSION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(sid) = &cb.messaging_service_sid {
            params.push(("MessagingServiceSid".into(), sid.clone()));
        }
        if let Some(code) = error_code {
            params.push(("ErrorCode".into(), code.to_owned()));
        }
        let signature = twilio_signature::sign(&self.auth_token, &cb.url, &params);

        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .client
                .post(&cb.url)
                .header("X-Twilio-Signature", &signature)
                .form(&params)
                .send()
                .await;
            match sent {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    if !ok {
                        tracing::warn!(url = %cb.url, status = %resp.status(), %status, "status callback refused");
                    }
                    self.recorder.count_callback(ok);
                    return;
                }
                Err(e) if e.is_connect() && attempt < ATTEMPTS => {
                    tracing::debug!(url = %cb.url, error = %e, attempt, "status callback retry");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::warn!(url = %cb.url, error = %e, %status, "status callback failed");
                    self.recorder.count_callback(false);
                    return;
                }
            }
        }
    }
}
