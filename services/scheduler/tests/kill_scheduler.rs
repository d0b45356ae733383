//! The real `pushfleet-scheduler` binary killed with SIGKILL while it fires due campaigns: a
//! restarted one fires the rest, and a campaign whose evaluate job was published twice (the
//! kill fell between the publish and the outbox delete) still sends each message once.

use pushfleet_domain::Channel;
use pushfleet_testkit::{eventually, soak_report, Service, ServiceProcess, TestApp};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(90);

fn spawn_scheduler(app: &TestApp) -> ServiceProcess {
    ServiceProcess::spawn(
        app,
        Service::Scheduler,
        env!("CARGO_BIN_EXE_pushfleet-scheduler"),
        // One campaign per tick: the kill lands while most are still due.
        &[("SCHEDULER_BATCH", "1"), ("SCHEDULER_TICK_MS", "20")],
    )
}

async fn fired(app: &TestApp) -> Option<i64> {
    sqlx::query_scalar("SELECT count(*) FROM campaigns WHERE status <> 'scheduled'")
        .fetch_one(app.env.store.pool())
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_while_firing_campaigns_loses_none_and_sends_each_message_once() {
    let app = TestApp::spawn_with(&[Service::Evaluator, Service::SmsSender]).await;
    let (campaigns, recipients) = (30usize, 10usize);
    let (audience, template) = app.create_audience_and_template(recipients).await;
    let mut ids: Vec<Uuid> = Vec::with_capacity(campaigns);
    for _ in 0..campaigns {
        let id = app
            .create_campaign_from(audience.clone(), template.clone(), &[Channel::Sms])
            .await;
        ids.push(id);
    }

    let mut scheduler = spawn_scheduler(&app);
    eventually("a few campaigns fired", TIMEOUT, || async {
        fired(&app).await.filter(|f| *f >= 3)
    })
    .await;
    assert!(!scheduler.kill_9().await.success());
    let before = fired(&app).await.unwrap_or_default();
    assert!(
        before < campaigns as i64,
        "killed while firing ({before} of {campaigns})"
    );

    let mut scheduler = spawn_scheduler(&app);
    for id in &ids {
        let view = app.wait_for_completion(*id, TIMEOUT).await;
        assert_eq!(view["progress"]["by_state"]["sent"], recipients, "{view}");
    }
    assert!(scheduler.terminate().await.success());

    let stats = app.sim.recorder.stats();
    // The scheduler makes no provider call: its death may repeat none.
    soak_report(stats.sms.duplicates, 0);
    assert_eq!(stats.sms.unique, campaigns * recipients, "{stats:?}");
    assert_eq!(stats.sms.duplicates, 0, "{stats:?}");
    app.shutdown().await;
}
