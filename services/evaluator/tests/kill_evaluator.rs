//! The real `pushfleet-evaluator` binary, killed with SIGKILL while it publishes a campaign's
//! send jobs: a restarted evaluator publishes the rest, and every recipient gets one message.

use pushfleet_domain::Channel;
use pushfleet_testkit::{eventually, soak_report, Service, ServiceProcess, TestApp};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);

fn spawn_evaluator(app: &TestApp) -> ServiceProcess {
    ServiceProcess::spawn(
        app,
        Service::Evaluator,
        env!("CARGO_BIN_EXE_pushfleet-evaluator"),
        // Small batches: many commits, so the kill lands between publish and commit. One
        // batch per message, so a re-published message repeats an original whole.
        &[("PUBLISH_BATCH", "50"), ("SEND_JOBS_PER_MESSAGE", "50")],
    )
}

async fn published(app: &TestApp) -> Option<i64> {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE published_at IS NOT NULL")
        .fetch_one(app.env.store.pool())
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_publish_loses_nothing_and_delivers_each_once() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler]).await;
    let n: i64 = 3000;
    let campaign = app.create_campaign(n as usize, &[Channel::Sms]).await;

    let mut evaluator = spawn_evaluator(&app);
    eventually("some send jobs published", TIMEOUT, || async {
        published(&app).await.filter(|p| *p >= 100)
    })
    .await;
    assert!(!evaluator.kill_9().await.success());
    let before = published(&app).await.unwrap_or_default();
    assert!(before < n, "killed mid-publish ({before} of {n} published)");

    let mut evaluator = spawn_evaluator(&app);
    eventually("every send job published", TIMEOUT, || async {
        published(&app).await.filter(|p| *p == n)
    })
    .await;
    // Senders start only now, so every copy a crash left behind is in the queue at once.
    app.start(Service::SmsSender).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    assert!(evaluator.terminate().await.success());

    let stats = app.sim.recorder.stats();
    // The evaluator makes no provider call: its death may repeat none.
    soak_report(stats.sms.duplicates, 0);
    assert_eq!(stats.sms.unique as i64, n, "{stats:?}");
    assert_eq!(
        stats.sms.duplicates, 0,
        "re-published jobs are dropped by the outcome check"
    );
    app.shutdown().await;
}
