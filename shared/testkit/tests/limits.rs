//! Three replicas of a sender share one fleet-wide quota: the simulator, which enforces the
//! Bot Framework's real limits and records the busiest window it saw, is never pushed over.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{LimitScope, SimConfig};
use pushfleet_ratelimit::Quota;
use pushfleet_testkit::{Service, TestApp};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_teams_replicas_stay_within_the_apps_50_per_second() {
    let sim = SimConfig::ephemeral().with_real_limits();
    let mut app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    // The production default for Teams: 45/s with a burst of 4, at most 49 in any second.
    app.sender_tuning.quota = Quota::new(45.0, 4);
    for replica in 0..3 {
        app.start_replica(Service::TeamsSender, replica).await;
    }
    let n = 180;
    let campaign = app.create_campaign(n, &[Channel::Teams]).await;
    let view = app
        .wait_for_completion(campaign, Duration::from_secs(60))
        .await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");

    let limits = app.sim.limits();
    let report = limits
        .key(LimitScope::TeamsApp, "test-app")
        .unwrap_or_else(|| panic!("no report for the app: {limits:?}"));
    let second = report.window(1000).expect("the 1 s window");
    assert_eq!(report.violations, 0, "{report:?}");
    // Within 1% of the limit (50 -> at most 50.5, so 50).
    assert!(
        (second.max_observed as f64) <= second.max as f64 * 1.01,
        "busiest second: {} > {}",
        second.max_observed,
        second.max
    );
    assert!(
        second.max_observed >= 40,
        "the quota was actually used: {report:?}"
    );
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.teams.unique, stats.teams.duplicates), (n, 0));
    app.shutdown().await;
}
