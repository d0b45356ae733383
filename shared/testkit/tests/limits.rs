//! Three replicas of a sender share one fleet-wide quota: the simulator, which enforces the
//! Bot Framework's real limits and records the busiest window it saw, is never pushed over.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{
    Channel as SimChannel, Latency, LimitScope, SimConfig, Window,
};
use pushfleet_ratelimit::Quota;
use pushfleet_sender::SenderConfig;
use pushfleet_testkit::{Service, TestApp};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_teams_replicas_stay_within_the_apps_50_per_second() {
    let sim = SimConfig::ephemeral().with_real_limits();
    let mut app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    // The production default for Teams (see `SenderConfig::default_quota`).
    let (rate, burst) = SenderConfig::default_quota(Channel::Teams);
    app.sender_tuning.quota = Quota::new(rate, burst);
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

/// Who the campaign goes to.
#[derive(Clone, Copy)]
enum People {
    /// Each with a stored conversation: one Connector call a message.
    WithConversations,
    /// Known only by user and tenant id: a conversation is created first, two calls.
    New,
}

/// What the provider counts, in windows of one and five seconds, for a Teams campaign of `n`
/// sent by `replicas` teams-senders at `quota`, with `latency` between sender and provider.
/// Limits are observed, not enforced: nothing is refused (no 429 pauses the senders), so
/// the counts are the senders' own pacing as the provider receives it.
struct Arrivals {
    busiest_sliding_second: u64,
    busiest_sliding_5s: u64,
    busiest_calendar_second: usize,
}

async fn teams_arrivals(
    quota: Quota,
    replicas: usize,
    n: usize,
    latency: Latency,
    people: People,
) -> Arrivals {
    let mut sim = SimConfig::ephemeral();
    sim.knobs.teams.latency = latency;
    sim.knobs.limits.teams_per_app = vec![Window::new(50, 1_000), Window::new(250, 5_000)];
    let mut app = TestApp::spawn_with_sim(&[Service::Scheduler, Service::Evaluator], sim).await;
    app.sender_tuning.quota = Some(quota);
    // As in production: enough job slots and provider calls that neither holds a send back.
    app.sender_tuning.concurrency = 256;
    app.sender_tuning.provider_concurrency = 64;
    for replica in 0..replicas {
        app.start_replica(Service::TeamsSender, replica).await;
    }
    let campaign = match people {
        People::WithConversations => app.create_campaign(n, &[Channel::Teams]).await,
        People::New => {
            let people: Vec<_> = (0..n)
                .map(|i| {
                    json!({"first_name": format!("New{i}"),
                           "teams": {"service_url": format!("{}/", app.sim.base_url()),
                                     "user_id": format!("aad-{i}"), "tenant_id": "tenant-1"}})
                })
                .collect();
            let (status, created) = app.post("/v1/people", &json!({ "people": people })).await;
            assert_eq!(status, 201, "{created}");
            let (status, audience) = app
                .post(
                    "/v1/audiences",
                    &json!({"name": "new", "person_ids": created["ids"]}),
                )
                .await;
            assert_eq!(status, 201, "{audience}");
            let (status, template) = app
                .post(
                    "/v1/templates",
                    &json!({"name": "t", "body": "Hi {{first_name}}"}),
                )
                .await;
            assert_eq!(status, 201, "{template}");
            app.create_campaign_from(
                audience["id"].clone(),
                template["id"].clone(),
                &[Channel::Teams],
            )
            .await
        }
    };
    let view = app
        .wait_for_completion(campaign, Duration::from_secs(120))
        .await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let limits = app.sim.limits();
    let report = limits
        .key(LimitScope::TeamsApp, "test-app")
        .unwrap_or_else(|| panic!("no report for the app: {limits:?}"))
        .clone();
    let observed = |ms| report.window(ms).map_or(0, |w| w.max_observed);
    let mut per_second = std::collections::BTreeMap::<i64, usize>::new();
    for m in app.sim.recorder.messages_for(SimChannel::Teams) {
        *per_second.entry(m.received_at.timestamp()).or_default() += 1;
    }
    app.shutdown().await;
    Arrivals {
        busiest_sliding_second: observed(1_000),
        busiest_sliding_5s: observed(5_000),
        busiest_calendar_second: per_second.values().copied().max().unwrap_or(0),
    }
}

/// The hardening issue: at 45/s with a burst of 4, up to 52 messages arrived within one
/// sliding second (47 per calendar second, 229 over 5 s) where the Bot Framework counts 50
/// per second per app. GCRA bounds what *leaves* (burst + rate x 1 s = 49); what *arrives*
/// is squeezed further by latency that varies from call to call. With the production default
/// quota, three replicas and a provider whose arrival times vary by up to 100 ms, the busiest
/// sliding second at the provider stays within 50 (measured: 47 to 48; before, 49 to 52).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teams_default_quota_stays_within_50_in_any_sliding_second_at_the_provider() {
    let (rate, burst) = SenderConfig::default_quota(Channel::Teams);
    let quota = Quota::new(rate, burst).expect("a Teams quota");
    let arrivals = teams_arrivals(
        quota,
        3,
        400,
        Latency::new(5, 100),
        People::WithConversations,
    )
    .await;
    eprintln!(
        "Teams at {rate}/s, burst {burst}, 3 replicas, 5-105 ms latency: busiest sliding \
         second {}, busiest calendar second {}, busiest 5 s {}",
        arrivals.busiest_sliding_second,
        arrivals.busiest_calendar_second,
        arrivals.busiest_sliding_5s
    );
    assert!(
        arrivals.busiest_sliding_second <= 50,
        "the provider counted {} in one second",
        arrivals.busiest_sliding_second
    );
    assert!(arrivals.busiest_sliding_5s <= 250);
    assert!(
        arrivals.busiest_sliding_second >= 40,
        "the quota was actually used: {}",
        arrivals.busiest_sliding_second
    );
}

/// A first message to a person known only by user id is two Connector calls (create the
/// conversation, then post), and the provider counts both against the app's 50 per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teams_first_messages_count_both_connector_calls_against_the_quota() {
    let (rate, burst) = SenderConfig::default_quota(Channel::Teams);
    let quota = Quota::new(rate, burst).expect("a Teams quota");
    let arrivals = teams_arrivals(quota, 3, 200, Latency::new(5, 100), People::New).await;
    eprintln!(
        "Teams first messages at {rate}/s, burst {burst}, 3 replicas, 5-105 ms latency: \
         busiest sliding second {}, busiest calendar second {}, busiest 5 s {}",
        arrivals.busiest_sliding_second,
        arrivals.busiest_calendar_second,
        arrivals.busiest_sliding_5s
    );
    assert!(
        arrivals.busiest_sliding_second <= 50,
        "the provider counted {} in one second",
        arrivals.busiest_sliding_second
    );
}
