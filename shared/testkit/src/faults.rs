//! Fault scenarios shared by the services' own tests (each binary is only reachable from
//! its own crate's tests): a process killed at the worst moment, then the promise checked
//! against what the simulated provider received.

use crate::{soak_report, Service, ServiceProcess, TestApp};
use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{self, Latency, SimConfig};
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);
/// `SENDER_CONCURRENCY` of the killed sender: the most provider calls its death may repeat.
const KILLED_CONCURRENCY: usize = 4;

/// The simulator's name for a channel.
pub fn sim_channel(channel: Channel) -> simulator::Channel {
    match channel {
        Channel::Email => simulator::Channel::Email,
        Channel::Teams => simulator::Channel::Teams,
        Channel::Sms => simulator::Channel::Sms,
    }
}

/// A sender binary killed with SIGKILL mid-campaign, then started again: every recipient gets
/// the message exactly once, and the provider sees at most the killed replica's in-flight
/// calls again (under the same idempotency key).
pub async fn kill_9_sender_mid_campaign(channel: Channel, binary: &str) {
    // Each answer takes 20-30 ms, so the campaign is still running when the kill lands.
    let sim = SimConfig {
        latency: Latency::new(20, 10),
        ..SimConfig::ephemeral()
    };
    let app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    let n = 300;
    let campaign = app.create_campaign(n, &[channel]).await;
    let service = Service::sender(channel);
    let concurrency = KILLED_CONCURRENCY.to_string();
    let tuning = [
        ("SENDER_CONCURRENCY", concurrency.as_str()),
        ("SENDER_PREFETCH", "20"),
    ];

    let mut sender = ServiceProcess::spawn(&app, service, binary, &tuning);
    assert!(app.sim.recorder.wait_for_unique(40, TIMEOUT).await);
    let status = sender.kill_9().await;
    assert!(!status.success(), "killed, not stopped: {status:?}");
    assert!(app.sim.recorder.unique_count() < n, "killed mid-campaign");

    let mut sender = ServiceProcess::spawn(&app, service, binary, &tuning);
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    assert!(sender.terminate().await.success());

    let stats = app.sim.recorder.stats();
    let stats = stats.channel(sim_channel(channel));
    soak_report(stats.duplicates, KILLED_CONCURRENCY);
    assert_eq!(stats.unique, n);
    assert!(stats.duplicates <= KILLED_CONCURRENCY, "{stats:?}");
    assert_each_recipient_once(&app, channel, n);
    app.shutdown().await;
}

/// Every one of `n` recipients received exactly one distinct message on `channel` (repeats
/// under the same idempotency key aside).
pub fn assert_each_recipient_once(app: &TestApp, channel: Channel, n: usize) {
    let per_recipient = app
        .sim
        .recorder
        .messages_for(sim_channel(channel))
        .into_iter()
        .filter(|m| !m.duplicate)
        .fold(BTreeMap::<String, usize>::new(), |mut acc, m| {
            *acc.entry(m.recipient).or_default() += 1;
            acc
        });
    assert_eq!(per_recipient.len(), n, "recipients reached");
    assert!(
        per_recipient.values().all(|&c| c == 1),
        "a recipient got two distinct messages"
    );
}
