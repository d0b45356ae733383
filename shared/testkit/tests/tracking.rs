//! Click and open tracking through the whole fleet (issue 13): the senders rewrite links to
//! the public redirect and add the open pixel; recipients' clicks and opens reach the
//! report and its CSV; scanners are counted apart; a forged token is refused; a Postgres
//! outage loses no click.

use pushfleet_domain::{Channel, TrackedEvent, TrackingKey, TrackingToken};
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_loadtest::simulator::SimConfig;
use pushfleet_testkit::{eventually, PrivatePostgres, Servers, Service, TestApp, TRACKING_SECRET};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const GUIDE: &str = "https://intranet.example/guide?step=1&lang=en";
const FORM: &str = "https://forms.example/f/42";

/// A client that does not follow redirects: the test looks at the 302 itself.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// A person's browser following a link (no redirect followed: the test reads the 302).
async fn browse(url: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("user-agent", BROWSER)
        .send()
        .await
        .expect("the api answers")
}

/// The tracked URLs (`{public api}/{kind}/...`) in a text, in order.
fn tracked_urls(app: &TestApp, kind: &str, text: &str) -> Vec<String> {
    let prefix = format!("{}/{kind}/", app.public_api_url);
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&prefix) {
        let url = &rest[at..];
        // The token is base64url.
        let end = prefix.len()
            + url[prefix.len()..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(url.len() - prefix.len());
        found.push(url[..end].to_owned());
        rest = &url[end..];
    }
    found
}

/// A campaign of `n` demo people on `channels`, with two links in every part, sent to the
/// end; returns its id.
async fn campaign_with_links(app: &TestApp, n: usize, channels: &[Channel]) -> Uuid {
    let (status, created) = app.post("/v1/people", &app.demo_people(n)).await;
    assert_eq!(status, 201, "{created}");
    let (status, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "all", "person_ids": created["ids"]}),
        )
        .await;
    assert_eq!(status, 201, "{audience}");
    let (status, template) = app
        .post(
            "/v1/templates",
            &json!({
                "name": "with links",
                "subject": "Read this",
                "body": format!("Hi {{{{first_name}}}}, read {GUIDE}. Then fill {FORM}."),
                "html": format!("<html><body><p>Hi {{{{first_name}}}}, read \
                    <a href=\"{}\">the guide</a>, then <a href=\"{FORM}\">the form</a>.</p>\
                    </body></html>", GUIDE.replace('&', "&amp;")),
            }),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    let campaign = app
        .create_campaign_from(audience["id"].clone(), template["id"].clone(), channels)
        .await;
    app.wait_for_completion(campaign, TIMEOUT).await;
    campaign
}

/// Makes every delivery of the campaign look sent a minute ago: clicks from now on are a
/// person's, not a scanner's within a second of delivery.
async fn delivered_a_minute_ago(app: &TestApp, campaign: Uuid) {
    sqlx::query(
        "UPDATE deliveries SET updated_at = now() - interval '1 minute' WHERE campaign_id = $1",
    )
    .bind(campaign)
    .execute(app.env.store.pool())
    .await
    .expect("backdate the deliveries");
}

async fn report_when(
    app: &TestApp,
    campaign: Uuid,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, TIMEOUT, || async {
        let (status, report) = app.get(&format!("/v1/campaigns/{campaign}/report")).await;
        (status == 200 && done(&report)).then_some(report)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clicks_and_opens_reach_the_report_and_scanners_are_counted_apart() {
    let app = TestApp::spawn().await;
    let campaign = campaign_with_links(&app, 3, &[Channel::Email, Channel::Sms]).await;

    // Every part of every message has its links rewritten; nothing points at a target.
    let emails = app.sim.recorder.messages_for(SimChannel::Email);
    assert_eq!(emails.len(), 3);
    let html = emails[0].raw["html"]
        .as_str()
        .expect("an HTML part")
        .to_owned();
    for part in [&emails[0].body, &html] {
        assert!(!part.contains(GUIDE) && !part.contains(FORM), "{part}");
        assert_eq!(tracked_urls(&app, "r", part).len(), 2, "{part}");
    }
    assert_eq!(
        tracked_urls(&app, "o", &html).len(),
        1,
        "one open pixel: {html}"
    );
    assert!(
        tracked_urls(&app, "o", &emails[0].body).is_empty(),
        "no pixel in the text part"
    );
    let sms = app.sim.recorder.messages_for(SimChannel::Sms);
    let sms_links = tracked_urls(&app, "r", &sms[0].body);
    assert_eq!(sms_links.len(), 2, "{}", sms[0].body);
    assert!(
        sms_links
            .iter()
            .all(|l| l.len() < app.public_api_url.len() + 40),
        "short links: {sms_links:?}"
    );

    // A gateway fetching the link as the message arrives: within a second of delivery.
    let [guide, form] = [0, 1].map(|i| tracked_urls(&app, "r", &emails[0].body)[i].clone());
    let r = browse(&guide).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], GUIDE);
    report_when(&app, campaign, "the gateway's click recorded", |r| {
        r["engagement"]["clicks"]["scanner"] == 1
    })
    .await;

    delivered_a_minute_ago(&app, campaign).await;
    // Two people's clicks on the guide, one on the form; one recipient opens the e-mail.
    for url in [&guide, &guide, &form] {
        let r = browse(url).await;
        assert_eq!(r.status(), 302);
    }
    let other = tracked_urls(&app, "r", &emails[1].body)[0].clone();
    let r = browse(&other).await;
    assert_eq!(r.headers()["location"], GUIDE);
    let pixel = tracked_urls(&app, "o", &html)[0].clone();
    let r = browse(&pixel).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert_eq!(r.bytes().await.expect("the gif").len(), 43);
    // Scanners: a HEAD request, a scanner's user agent.
    let r = client()
        .head(&form)
        .header("user-agent", BROWSER)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), 302);
    let r = client()
        .get(&form)
        .header("user-agent", "python-requests/2.31")
        .send()
        .await
        .expect("bot");
    assert_eq!(r.status(), 302);

    let report = report_when(&app, campaign, "every click and open recorded", |r| {
        r["engagement"]["clicks"]["total"] == 4
            && r["engagement"]["clicks"]["scanner"] == 3
            && r["engagement"]["opens_approximate"]["total"] == 1
    })
    .await;
    let e = &report["engagement"];
    assert_eq!(e["delivered"], 6, "{report}");
    assert_eq!(e["clicks"]["unique"], 2, "two deliveries clicked: {report}");
    assert_eq!(e["opens_approximate"]["unique"], 1, "{report}");
    assert_eq!(e["links"][0]["url"], GUIDE);
    assert_eq!(e["links"][0]["clicks"]["total"], 3, "{report}");
    assert_eq!(e["links"][0]["clicks"]["scanner"], 1, "{report}");
    assert_eq!(e["links"][1]["url"], FORM);
    assert_eq!(e["links"][1]["clicks"]["total"], 1, "{report}");
    assert_eq!(e["links"][1]["clicks"]["scanner"], 2, "{report}");
    assert_eq!(report["result"]["success"], 6, "{report}");
    assert_eq!(report["recipients"], 6, "{report}");

    // The recipients page and the CSV say who clicked and opened.
    let (status, page) = app
        .get(&format!(
            "/v1/campaigns/{campaign}/report/recipients?limit=4"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["recipients"].as_array().map(Vec::len),
        Some(4),
        "{page}"
    );
    let (_, rest) = app
        .get(&format!(
            "/v1/campaigns/{campaign}/report/recipients?limit=4&after={}",
            page["next_after"]
        ))
        .await;
    assert_eq!(
        rest["recipients"].as_array().map(Vec::len),
        Some(2),
        "{rest}"
    );
    assert!(rest["next_after"].is_null(), "{rest}");
    let lines: Vec<Value> = page["recipients"]
        .as_array()
        .into_iter()
        .chain(rest["recipients"].as_array())
        .flatten()
        .cloned()
        .collect();
    let first_email = lines
        .iter()
        .find(|l| l["email"] == emails[0].recipient && l["channel"] == "email")
        .expect("the first e-mail's line");
    assert_eq!(first_email["clicks"], 3, "{first_email}");
    assert_eq!(first_email["result"], "success");
    let opened: Vec<&Value> = lines.iter().filter(|l| l["opened"] == true).collect();
    assert_eq!(opened.len(), 1, "{lines:?}");

    let key = TestApp::client(Some(&app.api_key))
        .get(format!(
            "{}/v1/campaigns/{campaign}/report.csv",
            app.api_url
        ))
        .send()
        .await
        .expect("the CSV");
    assert_eq!(key.status(), 200);
    let csv = key.text().await.expect("CSV text");
    let mut rows = csv.lines();
    assert!(rows
        .next()
        .is_some_and(|h| h.starts_with("delivery_id,person_id,name,email")));
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 6, "{csv}");
    assert!(
        rows.iter().any(|r| r.contains(&emails[0].recipient)
            && r.contains(",email,success,")
            && r.ends_with(",3,yes")),
        "{csv}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_or_changed_tokens_are_not_found() {
    let app = TestApp::spawn().await;
    let campaign = campaign_with_links(&app, 1, &[Channel::Teams]).await;
    let teams = app.sim.recorder.messages_for(SimChannel::Teams);
    let link = tracked_urls(&app, "r", &teams[0].raw.to_string())[0].clone();

    // Sealed with another secret, or with a character changed: 404, nothing recorded.
    let delivery_id: i64 = sqlx::query_scalar("SELECT id FROM deliveries WHERE campaign_id = $1")
        .bind(campaign)
        .fetch_one(app.env.store.pool())
        .await
        .expect("the delivery");
    let link_key: i64 = sqlx::query_scalar("SELECT link_key FROM campaigns WHERE id = $1")
        .bind(campaign)
        .fetch_one(app.env.store.pool())
        .await
        .expect("the link key");
    let token = TrackingToken {
        delivery_id,
        campaign_key: link_key,
        event: TrackedEvent::Click { link: 0 },
    };
    let forged = TrackingKey::new(b"not our secret").make(token);
    let ours = TrackingKey::new(TRACKING_SECRET.as_bytes()).make(token);
    assert!(
        link.ends_with(&ours),
        "the sender's token is the api's: {link}"
    );
    let mut changed = link.clone().into_bytes();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).expect("ascii");
    for url in [
        format!("{}/r/{forged}", app.public_api_url),
        changed,
        format!("{}/r/{}", app.public_api_url, "x".repeat(300)),
        // A click token is no pixel.
        format!("{}/o/{ours}", app.public_api_url),
    ] {
        let r = browse(&url).await;
        assert_eq!(r.status(), 404, "{url}");
        let body: Value = r.json().await.expect("a JSON error");
        assert!(
            body["error"].is_object() || body["code"].is_string(),
            "{body}"
        );
    }
    let r = browse(&link).await;
    assert_eq!(r.status(), 302);
    let report = report_when(&app, campaign, "the one good click", |r| {
        r["engagement"]["clicks"]["total"].as_i64().unwrap_or(0)
            + r["engagement"]["clicks"]["scanner"].as_i64().unwrap_or(0)
            == 1
    })
    .await;
    assert_eq!(report["engagement"]["links"][0]["url"], GUIDE, "{report}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_click_is_lost_while_postgres_is_unreachable() {
    const CLICKS: i64 = 50;
    let mut pg = PrivatePostgres::spawn()
        .await
        .expect("start a private Postgres");
    let servers = Servers::shared().with_postgres(&pg);
    let app = TestApp::spawn_on(&servers, &Service::ALL, SimConfig::ephemeral()).await;
    let campaign = campaign_with_links(&app, 1, &[Channel::Email]).await;
    delivered_a_minute_ago(&app, campaign).await;
    let email = &app.sim.recorder.messages_for(SimChannel::Email)[0];
    let link = tracked_urls(&app, "r", &email.body)[0].clone();
    // The first click reads the campaign's links into the api's cache.
    let r = browse(&link).await;
    assert_eq!(r.status(), 302);
    report_when(&app, campaign, "the first click", |r| {
        r["engagement"]["clicks"]["total"] == 1
    })
    .await;

    pg.stop().await.expect("stop Postgres");
    for _ in 0..CLICKS {
        let r = browse(&link).await;
        assert_eq!(r.status(), 302, "answered while Postgres is down");
        assert_eq!(r.headers()["location"], GUIDE);
    }
    pg.start().await.expect("start Postgres again");

    let report = report_when(
        &app,
        campaign,
        "every click written after the outage",
        |r| r["engagement"]["clicks"]["total"].as_i64() == Some(CLICKS + 1),
    )
    .await;
    assert_eq!(report["engagement"]["clicks"]["unique"], 1, "{report}");
    app.shutdown().await;
}

/// The recorder writes a batch again when it cannot tell whether its commit landed: the
/// events' ids make the second write add nothing, to the events or to the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_written_twice_counts_once() {
    let app = TestApp::spawn().await;
    let campaign = campaign_with_links(&app, 2, &[Channel::Email]).await;
    delivered_a_minute_ago(&app, campaign).await;
    let deliveries: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE campaign_id = $1 ORDER BY id")
            .bind(campaign)
            .fetch_all(app.env.store.pool())
            .await
            .expect("the deliveries");
    let event = |delivery_id: i64, link: Option<u16>| pushfleet_store::NewTrackingEvent {
        event_id: Uuid::now_v7(),
        campaign_id: campaign,
        delivery_id,
        link,
        occurred_at: chrono::Utc::now(),
        scanner: None,
        user_agent: Some(BROWSER.into()),
    };
    let batch = vec![
        event(deliveries[0], Some(0)),
        event(deliveries[0], Some(1)),
        event(deliveries[1], Some(0)),
        event(deliveries[1], None),
    ];
    for _ in 0..2 {
        app.env
            .store
            .record_tracking_events(&batch)
            .await
            .expect("write the batch");
    }
    let (_, report) = app.get(&format!("/v1/campaigns/{campaign}/report")).await;
    let e = &report["engagement"];
    assert_eq!(e["clicks"]["total"], 3, "{report}");
    assert_eq!(e["clicks"]["unique"], 2, "{report}");
    assert_eq!(e["links"][0]["clicks"]["unique"], 2, "{report}");
    assert_eq!(e["links"][1]["clicks"]["total"], 1, "{report}");
    assert_eq!(e["opens_approximate"]["total"], 1, "{report}");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM tracking_events")
        .fetch_one(app.env.store.pool())
        .await
        .expect("count");
    assert_eq!(events, 4);
    app.shutdown().await;
}
