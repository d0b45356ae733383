//! A server restarted mid-campaign: each test runs the fleet on a server of its own (so the
//! shared ones, which every other test uses, are never touched), starts a campaign, restarts
//! that server while messages are going out, and audits the end: the campaign completes,
//! every recipient got each channel's message exactly once, and any repeated provider call
//! carried the same idempotency key and was absorbed by the simulator.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{Latency, LimitScope, SimConfig};
use pushfleet_ratelimit::Quota;
use pushfleet_testkit::faults::sim_channel;
use pushfleet_testkit::{
    eventually, soak_report, PrivatePostgres, PrivateRabbitMq, PrivateRedis, Servers, Service,
    TestApp,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

const N: usize = 300;
/// Generous: a RabbitMQ boot on a busy two-core machine, then the services' reconnect
/// backoff (up to 10 s), then the rest of the campaign.
const COMPLETION: Duration = Duration::from_secs(120);
/// Messages that reach the simulator before the fault: the campaign is under way.
const BEFORE_FAULT: usize = 40;

/// The fleet on `servers`, a campaign of `N` recipients over `channels` started, and some of
/// its messages arrived. Senders are paced at 60/s each with 5-10 ms provider calls, so the
/// campaign takes about 5 s undisturbed and the fault lands mid-flight.
async fn campaign_under_way(servers: &Servers, channels: &[Channel]) -> (TestApp, Campaign) {
    let sim = SimConfig {
        latency: Latency::new(5, 5),
        ..SimConfig::ephemeral()
    };
    let mut app = TestApp::spawn_on(servers, &[Service::Scheduler, Service::Evaluator], sim).await;
    app.sender_tuning.quota = Quota::new(60.0, 5);
    for c in channels {
        app.start(Service::sender(*c)).await;
    }
    let (audience, template) = app.create_audience_and_template(N).await;
    let id = app
        .create_campaign_from(audience.clone(), template.clone(), channels)
        .await;
    assert!(
        app.sim
            .recorder
            .wait_for_unique(BEFORE_FAULT, Duration::from_secs(60))
            .await,
        "the campaign started: {:?}",
        app.sim.recorder.stats()
    );
    let campaign = Campaign {
        id,
        audience,
        template,
    };
    (app, campaign)
}

struct Campaign {
    id: Uuid,
    audience: Value,
    template: Value,
}

/// After the restart, a new campaign goes through too: the scheduler, whose connection died
/// while it had nothing to publish, notices and reconnects.
async fn a_new_campaign_completes(app: &TestApp, campaign: &Campaign) {
    let id = app
        .create_campaign_from(
            campaign.audience.clone(),
            campaign.template.clone(),
            &[Channel::Email],
        )
        .await;
    let view = app.wait_for_completion(id, COMPLETION).await;
    assert_eq!(view["progress"]["by_state"]["sent"], N, "{view}");
}

/// The end of every test: completed, each recipient reached once per channel, nothing left
/// pending. Provider calls repeated with the same key are allowed up to `max_repeats` per
/// channel, and reported.
async fn audit(app: &TestApp, campaign: &Campaign, channels: &[Channel], max_repeats: usize) {
    let view = app.wait_for_completion(campaign.id, COMPLETION).await;
    assert_eq!(view["progress"]["total"], N * channels.len(), "{view}");
    assert_eq!(
        view["progress"]["by_state"]["sent"],
        N * channels.len(),
        "{view}"
    );
    let stats = app.sim.recorder.stats();
    let repeated: usize = channels
        .iter()
        .map(|c| stats.channel(sim_channel(*c)).duplicates)
        .sum();
    soak_report(repeated, max_repeats * channels.len());
    for c in channels {
        let sim_channel = sim_channel(*c);
        let s = stats.channel(sim_channel);
        eprintln!("{c}: {} unique, {} repeated calls", s.unique, s.duplicates);
        assert_eq!(s.unique, N, "{c}: one idempotency key per recipient: {s:?}");
        let recipients: BTreeSet<String> = app
            .sim
            .recorder
            .messages_for(sim_channel)
            .into_iter()
            .map(|m| m.recipient)
            .collect();
        assert_eq!(recipients.len(), N, "{c}: every recipient reached");
        assert!(
            s.duplicates <= max_repeats,
            "{c}: {} repeated calls, at most {max_repeats} expected",
            s.duplicates
        );
    }
}

/// Repeats a restart can cause per channel: the jobs a sender had in flight when the server
/// went away (`SENDER_CONCURRENCY`). A graceful restart of RabbitMQ or Postgres should cause
/// none (outcomes are written before acks, and a redelivered job checks the recorded state
/// first), but the bound is what the design promises.
fn in_flight_bound(app: &TestApp) -> usize {
    app.sender_tuning.concurrency
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_restart_mid_campaign_loses_nothing() {
    let mut rabbit = PrivateRabbitMq::spawn()
        .await
        .expect("start a private RabbitMQ");
    let channels = Channel::ALL;
    let (app, campaign) =
        campaign_under_way(&Servers::shared().with_rabbitmq(&rabbit), &channels).await;

    let t = Instant::now();
    rabbit.stop().await.expect("stop RabbitMQ");
    let at_stop = app.sim.recorder.unique_count();
    rabbit.start().await.expect("start RabbitMQ again");
    eprintln!("RabbitMQ down for {:?}", t.elapsed());
    assert!(
        at_stop < N * channels.len(),
        "stopped mid-campaign ({at_stop} sent)"
    );

    audit(&app, &campaign, &channels, in_flight_bound(&app)).await;
    a_new_campaign_completes(&app, &campaign).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_killed_mid_campaign_loses_nothing() {
    let mut rabbit = PrivateRabbitMq::spawn()
        .await
        .expect("start a private RabbitMQ");
    let channels = [Channel::Email, Channel::Sms];
    let (app, campaign) =
        campaign_under_way(&Servers::shared().with_rabbitmq(&rabbit), &channels).await;

    rabbit.kill().await.expect("kill RabbitMQ");
    let at_kill = app.sim.recorder.unique_count();
    assert!(
        at_kill < N * channels.len(),
        "killed mid-campaign ({at_kill} sent)"
    );
    rabbit.start().await.expect("start RabbitMQ again");

    audit(&app, &campaign, &channels, in_flight_bound(&app)).await;
    a_new_campaign_completes(&app, &campaign).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_mid_campaign_loses_nothing() {
    let mut redis = PrivateRedis::spawn().await.expect("start a private Redis");
    let channels = [Channel::Teams, Channel::Sms];
    let (app, campaign) =
        campaign_under_way(&Servers::shared().with_redis(&redis), &channels).await;

    redis.stop().await.expect("stop Redis");
    let at_stop = app.sim.recorder.unique_count();
    // Without Redis the senders carry on at their fallback share.
    assert!(
        app.sim
            .recorder
            .wait_for_unique(at_stop + 20, Duration::from_secs(30))
            .await,
        "sending went on while Redis was down ({at_stop} sent at the stop)"
    );
    redis.start().await.expect("start Redis again");
    assert!(
        app.sim.recorder.unique_count() < N * channels.len(),
        "restarted mid-campaign"
    );

    // Back on Redis: the limiter books slots there again.
    eventually(
        "rate-limit state in the restarted Redis",
        COMPLETION,
        || rate_limit_keys(&redis, &app),
    )
    .await;
    audit(&app, &campaign, &channels, 0).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_mid_campaign_loses_nothing() {
    let mut pg = PrivatePostgres::spawn()
        .await
        .expect("start a private Postgres");
    let channels = Channel::ALL;
    let (app, campaign) =
        campaign_under_way(&Servers::shared().with_postgres(&pg), &channels).await;

    pg.stop().await.expect("stop Postgres");
    let at_stop = app.sim.recorder.unique_count();
    // How long Postgres stays down (the scenario, not a wait for anything): senders finish
    // the calls they started, then wait to record the outcomes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start().await.expect("start Postgres again");
    assert!(
        at_stop < N * channels.len(),
        "stopped mid-campaign ({at_stop} sent)"
    );

    audit(&app, &campaign, &channels, in_flight_bound(&app)).await;
    app.shutdown().await;
}

/// Some of this test's rate-limit keys, if the fleet has written any to `redis`.
async fn rate_limit_keys(redis: &PrivateRedis, app: &TestApp) -> Option<Vec<String>> {
    let client = redis::Client::open(redis.url()).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:rl:*", app.env.namespace))
        .query_async(&mut conn)
        .await
        .ok()?;
    (!keys.is_empty()).then_some(keys)
}

/// SMS from one number, quota 40/s with a burst of 4: while Redis is down a replica uses a
/// quarter of it, 10/s with a burst of 1, so no 1 s window at the provider holds more than 11.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_a_sender_keeps_to_its_fallback_share() {
    const SMS_FROM: &str = "+15005550006";
    const FALLBACK_SHARE: f64 = 0.25;
    let mut redis = PrivateRedis::spawn().await.expect("start a private Redis");
    let servers = Servers::shared().with_redis(&redis);
    let sim = SimConfig {
        latency: Latency::new(5, 5),
        ..SimConfig::ephemeral()
    };
    let mut app = TestApp::spawn_on(&servers, &[Service::Scheduler, Service::Evaluator], sim).await;
    let quota = Quota::new(40.0, 4).expect("a quota");
    app.sender_tuning.quota = Some(quota);
    app.sender_tuning.fallback_share = FALLBACK_SHARE;
    // GCRA lets at most rate + burst through in any one second.
    let most_in_a_second = |q: Quota| (q.per_second + f64::from(q.burst)) as u64;
    let fallback_max = most_in_a_second(quota.scaled(FALLBACK_SHARE).expect("a share"));
    let full_max = most_in_a_second(quota);

    // Redis is down before the sender starts, and stays down for the whole campaign.
    redis.stop().await.expect("stop Redis");
    app.start(Service::SmsSender).await;
    let n = 50;
    let (audience, template) = app.create_audience_and_template(n).await;
    let first = app
        .create_campaign_from(audience.clone(), template.clone(), &[Channel::Sms])
        .await;
    let view = app.wait_for_completion(first, COMPLETION).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let busiest = busiest_second(&app, SMS_FROM);
    eprintln!("Redis down: busiest second {busiest}, fallback allows {fallback_max}");
    assert!(
        busiest <= fallback_max,
        "without Redis: {busiest} in one second, the fallback share allows {fallback_max}"
    );

    // Redis back: the sender returns to the fleet-wide quota.
    redis.start().await.expect("start Redis again");
    let second = app
        .create_campaign_from(audience, template, &[Channel::Sms])
        .await;
    eventually(
        "rate-limit state in the restarted Redis",
        COMPLETION,
        || rate_limit_keys(&redis, &app),
    )
    .await;
    let view = app.wait_for_completion(second, COMPLETION).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let busiest = busiest_second(&app, SMS_FROM);
    eprintln!("Redis back: busiest second {busiest}, the quota allows {full_max}");
    assert!(
        busiest > fallback_max && busiest <= full_max,
        "with Redis: {busiest} in one second, expected the full quota (at most {full_max})"
    );
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.sms.unique, stats.sms.duplicates), (2 * n, 0));
    app.shutdown().await;
}

/// The most SMS segments the simulator accepted from `from` in any one second.
fn busiest_second(app: &TestApp, from: &str) -> u64 {
    let limits = app.sim.limits();
    limits
        .key(LimitScope::SmsSender, from)
        .and_then(|k| k.window(1000))
        .map(|w| w.max_observed)
        .unwrap_or_else(|| panic!("no 1 s window for {from}: {limits:?}"))
}
