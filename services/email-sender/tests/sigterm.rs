//! The real `pushfleet-email-sender` binary, stopped with SIGTERM mid-campaign: it exits 0
//! after recording what it sent, and a restarted one completes the campaign with nothing
//! lost and nothing sent twice.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{Latency, SimConfig};
use pushfleet_testkit::faults::kill_9_sender_mid_campaign;
use pushfleet_testkit::{soak_report, Service, ServiceProcess, TestApp};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

fn spawn_sender(app: &TestApp) -> ServiceProcess {
    ServiceProcess::spawn(
        app,
        Service::EmailSender,
        env!("CARGO_BIN_EXE_pushfleet-email-sender"),
        &[("SENDER_CONCURRENCY", "4"), ("SENDER_PREFETCH", "20")],
    )
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
    let status = sender.terminate().await;
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
    let status = sender.terminate().await;
    assert!(status.success());

    let stats = app.sim.recorder.stats();
    soak_report(stats.email.duplicates, 0);
    assert_eq!((stats.email.unique, stats.email.duplicates), (n, 0));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_campaign_loses_nothing_and_repeats_at_most_the_jobs_in_flight() {
    kill_9_sender_mid_campaign(Channel::Email, env!("CARGO_BIN_EXE_pushfleet-email-sender")).await;
}
