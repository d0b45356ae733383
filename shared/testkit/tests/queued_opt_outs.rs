//! Send jobs already in the broker honour an opt-out or a deactivation made after they were
//! published: the sender ends them `skipped` and the provider receives nothing, whether the
//! change came before the sender started (its catch-up load) or while it ran (a Postgres
//! notice). An opt-in or a reactivation lets later sends through again.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::{eventually, Service, TestApp};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Demo person `i`'s id.
async fn person(pool: &PgPool, i: usize) -> Uuid {
    sqlx::query_scalar("SELECT id FROM people WHERE email = $1")
        .bind(format!("person{i}@example.org"))
        .fetch_one(pool)
        .await
        .expect("person")
}

/// Waits until `n` deliveries of the campaign are published (in the broker).
async fn wait_published(pool: &PgPool, campaign: Uuid, n: i64) {
    eventually("the send jobs published", TIMEOUT, || async {
        let published: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND published_at IS NOT NULL",
        )
        .bind(campaign)
        .fetch_one(pool)
        .await
        .ok()?;
        (published == n).then_some(())
    })
    .await;
}

/// (state, last_error, attempts) of a person's delivery of a campaign on a channel.
async fn delivery(
    pool: &PgPool,
    campaign: Uuid,
    person: Uuid,
    channel: Channel,
) -> (String, Option<String>, i32) {
    sqlx::query_as(
        "SELECT state, last_error, attempts FROM deliveries
         WHERE campaign_id = $1 AND person_id = $2 AND channel = $3",
    )
    .bind(campaign)
    .bind(person)
    .bind(channel.as_str())
    .fetch_one(pool)
    .await
    .expect("the delivery row")
}

fn recipients(app: &TestApp, channel: SimChannel) -> Vec<String> {
    app.sim
        .recorder
        .messages_for(channel)
        .into_iter()
        .map(|m| m.recipient)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_opt_out_made_while_the_jobs_wait_in_the_broker_skips_them_and_an_opt_in_lifts_it() {
    // No sender yet: the jobs wait in the broker.
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let n = 3;
    let pool = app.env.store.pool().clone();
    let (audience, template) = app.create_audience_and_template(n).await;
    let first = app
        .create_campaign_from(
            audience.clone(),
            template.clone(),
            &[Channel::Email, Channel::Sms],
        )
        .await;
    wait_published(&pool, first, 2 * n as i64).await;
    let (p0, p1) = (person(&pool, 0).await, person(&pool, 1).await);
    let store = app.env.store.clone();
    assert!(store
        .opt_out_of_channel(p0, Channel::Email, "email_link")
        .await
        .expect("opt out"));
    assert!(store
        .opt_out_of_channel(p1, Channel::Sms, "sms_keyword")
        .await
        .expect("opt out"));

    app.start(Service::EmailSender).await;
    app.start(Service::SmsSender).await;
    let view = app.wait_for_completion(first, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 2 * n - 2, "{view}");
    assert_eq!(view["progress"]["by_state"]["skipped"], 2, "{view}");
    assert_eq!(
        delivery(&pool, first, p0, Channel::Email).await,
        (
            "skipped".to_owned(),
            Some("opted out of email".to_owned()),
            0
        )
    );
    assert_eq!(
        delivery(&pool, first, p1, Channel::Sms).await,
        ("skipped".to_owned(), Some("opted out of sms".to_owned()), 0)
    );
    // Their other channel went out.
    assert_eq!(delivery(&pool, first, p0, Channel::Sms).await.0, "sent");
    assert_eq!(delivery(&pool, first, p1, Channel::Email).await.0, "sent");
    let emails = recipients(&app, SimChannel::Email);
    assert!(
        !emails.contains(&"person0@example.org".to_owned()),
        "{emails:?}"
    );
    let sms = recipients(&app, SimChannel::Sms);
    assert!(!sms.contains(&"+15550000001".to_owned()), "{sms:?}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.email.unique, stats.sms.unique), (n - 1, n - 1));

    // Person 0 opts in again while the sender runs: the next campaign reaches them.
    assert!(store
        .opt_in_to_channel(p0, Channel::Email)
        .await
        .expect("opt in"));
    let second = app
        .create_campaign_from(audience, template, &[Channel::Email])
        .await;
    let view = app.wait_for_completion(second, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n, "{view}");
    let emails = recipients(&app, SimChannel::Email);
    assert_eq!(
        emails
            .iter()
            .filter(|r| r.as_str() == "person0@example.org")
            .count(),
        1,
        "{emails:?}"
    );
    assert_eq!(app.sim.recorder.stats().total.duplicates, 0);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deactivation_made_while_the_jobs_wait_skips_every_channel_and_a_reactivation_lifts_it() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let n = 3;
    let pool = app.env.store.pool().clone();
    let (audience, template) = app.create_audience_and_template(n).await;
    let channels = [Channel::Email, Channel::Teams];
    let first = app
        .create_campaign_from(audience.clone(), template.clone(), &channels)
        .await;
    wait_published(&pool, first, 2 * n as i64).await;
    let p2 = person(&pool, 2).await;
    let r = app
        .http
        .delete(format!("{}/v1/people/{p2}", app.api_url))
        .send()
        .await
        .expect("deactivate");
    assert!(r.status().is_success(), "{}", r.status());

    app.start(Service::EmailSender).await;
    app.start(Service::TeamsSender).await;
    let view = app.wait_for_completion(first, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 2 * n - 2, "{view}");
    assert_eq!(view["progress"]["by_state"]["skipped"], 2, "{view}");
    for channel in channels {
        assert_eq!(
            delivery(&pool, first, p2, channel).await,
            (
                "skipped".to_owned(),
                Some("the recipient was deactivated".to_owned()),
                0
            )
        );
    }
    assert!(!recipients(&app, SimChannel::Email).contains(&"person2@example.org".to_owned()));
    assert!(!recipients(&app, SimChannel::Teams).contains(&"a:conv-2".to_owned()));

    // Reactivated by a directory import while the senders run: the next campaign reaches
    // them on both channels.
    let (status, report) = app
        .post(
            "/v1/people/import",
            &json!({"people": [{"email": "person2@example.org", "active": true}]}),
        )
        .await;
    assert_eq!((status, &report["updated"]), (200, &json!(1)), "{report}");
    let second = app
        .create_campaign_from(audience, template, &channels)
        .await;
    let view = app.wait_for_completion(second, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 2 * n, "{view}");
    assert!(recipients(&app, SimChannel::Email).contains(&"person2@example.org".to_owned()));
    assert!(recipients(&app, SimChannel::Teams).contains(&"a:conv-2".to_owned()));
    app.shutdown().await;
}

/// The live path: a job waiting in a retry delay queue (the provider failed its first try)
/// meets an opt-out made while the sender runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_waiting_in_a_delay_queue_honours_an_opt_out_made_meanwhile() {
    let app = TestApp::spawn().await;
    app.sim
        .knobs
        .update(|k| k.sms.server_error = 1.0)
        .expect("knobs");
    let n = 2;
    let pool = app.env.store.pool().clone();
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    let failed_once = app
        .sim
        .recorder
        .wait_for(|s| s.rejected.sms.server_error >= n, TIMEOUT)
        .await;
    assert!(failed_once);
    // Both retries now wait at least a second in a delay queue (RETRY_BASE_MS 500 here).
    let p0 = person(&pool, 0).await;
    assert!(app
        .env
        .store
        .opt_out_of_channel(p0, Channel::Sms, "sms_keyword")
        .await
        .expect("opt out"));
    app.sim
        .knobs
        .update(|k| k.sms.server_error = 0.0)
        .expect("knobs");

    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n - 1, "{view}");
    let (state, reason, attempts) = delivery(&pool, campaign, p0, Channel::Sms).await;
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("skipped", Some("opted out of sms"))
    );
    assert_eq!(attempts, 1, "the failed try counts, the skip does not");
    assert_eq!(
        recipients(&app, SimChannel::Sms),
        vec!["+15550000001".to_owned()]
    );
    app.shutdown().await;
}
