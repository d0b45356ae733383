//! The real `pushfleet-email-sender` binary, stopped with SIGTERM mid-campaign: it exits 0
//! after recording what it sent, and a restarted one completes the campaign with nothing
//! lost and nothing sent twice.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{Latency, SimConfig};
use pushfleet_testkit::{Service, TestApp};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const TIMEOUT: Duration = Duration::from_secs(60);

fn spawn_sender(app: &TestApp) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pushfleet-email-sender"))
        .envs(app.env.env_vars())
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", app.sim.smtp_addr.port().to_string())
        .env("SENDER_CONCURRENCY", "4")
        .env("SENDER_PREFETCH", "20")
        .env("RATE_LIMIT_PER_SECOND", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the email-sender binary")
}

async fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    signal_and_wait(child, "-TERM").await
}

async fn signal_and_wait(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().expect("the sender is running");
    let killed = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .await
        .expect("run kill");
    assert!(killed.success());
    tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("the sender stops within the timeout")
        .expect("wait for the sender")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_campaign_loses_nothing() {
    // Each SMTP answer takes 20-30 ms, so the campaign is still running when SIGTERM lands.
    let sim = SimConfig {
        latency: Latency::new(20, 10),
        ..SimConfig::ephemeral()
    };
    let app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    let n = 300;
    let campaign = app.create_campaign(n, &[Channel::Email]).await;

    let mut sender = spawn_sender(&app);
    assert!(app.sim.recorder.wait_for_unique(30, TIMEOUT).await);
    let status = sigterm_and_wait(&mut sender).await;
    assert!(
        status.success(),
        "SIGTERM ends the sender cleanly: {status:?}"
    );

    let received = app.sim.recorder.unique_count();
    assert!(
        received < n,
        "stopped mid-campaign ({received} of {n} sent)"
    );
    let (_, view) = app.get(&format!("/v1/campaigns/{campaign}")).await;
    assert_eq!(
        view["progress"]["by_state"]["sent"], received,
        "every message the provider received is recorded as sent: {view}"
    );

    let mut sender = spawn_sender(&app);
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let status = sigterm_and_wait(&mut sender).await;
    assert!(status.success());

    let stats = app.sim.recorder.stats();
    assert_eq!((stats.email.unique, stats.email.duplicates), (n, 0));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_campaign_loses_nothing_and_repeats_at_most_the_jobs_in_flight() {
    let sim = SimConfig {
        latency: Latency::new(20, 10),
        ..SimConfig::ephemeral()
    };
    let app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    let n = 300;
    let campaign = app.create_campaign(n, &[Channel::Email]).await;

    let mut sender = spawn_sender(&app);
    assert!(app.sim.recorder.wait_for_unique(40, TIMEOUT).await);
    let status = signal_and_wait(&mut sender, "-KILL").await;
    assert!(!status.success(), "killed, not stopped: {status:?}");
    assert!(app.sim.recorder.unique_count() < n, "killed mid-campaign");

    let mut sender = spawn_sender(&app);
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    assert!(sigterm_and_wait(&mut sender).await.success());

    // Every recipient got the message once; the provider saw at most the killed replica's
    // in-flight jobs again, under the same idempotency key (SENDER_CONCURRENCY = 4).
    let stats = app.sim.recorder.stats();
    assert_eq!(stats.email.unique, n);
    assert!(stats.email.duplicates <= 4, "{stats:?}");
    let per_recipient = app
        .sim
        .recorder
        .messages_for(pushfleet_loadtest::simulator::Channel::Email)
        .into_iter()
        .filter(|m| !m.duplicate)
        .fold(
            std::collections::BTreeMap::<String, usize>::new(),
            |mut acc, m| {
                *acc.entry(m.recipient).or_default() += 1;
                acc
            },
        );
    assert_eq!(per_recipient.len(), n);
    assert!(per_recipient.values().all(|&c| c == 1));
    app.shutdown().await;
}
