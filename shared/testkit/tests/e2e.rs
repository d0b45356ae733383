//! The whole flow through the six services, the real servers and the provider simulator.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::{Channel as SimChannel, ReceivedMessage};
use pushfleet_testkit::{Service, TestApp};
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

fn by_recipient(messages: &[ReceivedMessage]) -> BTreeMap<String, Vec<&ReceivedMessage>> {
    let mut map: BTreeMap<String, Vec<&ReceivedMessage>> = BTreeMap::new();
    for m in messages {
        map.entry(m.recipient.clone()).or_default().push(m);
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_reaches_every_recipient_once_on_every_channel() {
    let app = TestApp::spawn().await;
    let n = 60;
    let campaign = app.create_campaign(n, &Channel::ALL).await;

    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["total"], 3 * n);
    assert_eq!(view["progress"]["by_state"]["sent"], 3 * n, "{view}");
    for ch in ["email", "teams", "sms"] {
        assert_eq!(view["progress"]["by_channel"][ch]["sent"], n, "{view}");
    }

    let stats = app.sim.recorder.stats();
    for ch in [SimChannel::Email, SimChannel::Teams, SimChannel::Sms] {
        let s = stats.channel(ch);
        assert_eq!((s.unique, s.duplicates), (n, 0), "{ch:?}: {s:?}");
    }

    // Exactly one message per recipient and channel, each personalised for its recipient.
    let email = app.sim.recorder.messages_for(SimChannel::Email);
    let emails = by_recipient(&email);
    assert_eq!(emails.len(), n);
    for i in 0..n {
        let got = &emails[&format!("person{i}@example.org")];
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].subject.as_deref(),
            Some(format!("Welcome, First{i}").as_str())
        );
        assert_eq!(
            got[0].body.trim_end(),
            format!("Hello First{i} Last{i}, welcome aboard.")
        );
        let html = got[0].raw["html"].as_str().unwrap_or_default();
        assert!(
            html.contains(&format!("<b>First{i} Last{i}</b>")),
            "html: {html}"
        );
    }
    let teams = app.sim.recorder.messages_for(SimChannel::Teams);
    let teams = by_recipient(&teams);
    assert_eq!(teams.len(), n);
    for i in 0..n {
        let got = &teams[&format!("a:conv-{i}")];
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].body,
            format!("Hello First{i} Last{i}, welcome aboard.")
        );
    }
    let sms = app.sim.recorder.messages_for(SimChannel::Sms);
    let sms = by_recipient(&sms);
    assert_eq!(sms.len(), n);
    for i in 0..n {
        let got = &sms[&format!("+1555{i:07}")];
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].body,
            format!("Hello First{i} Last{i}, welcome aboard.")
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_due_later_waits_and_a_missing_address_is_reported_not_sent() {
    let app = TestApp::spawn().await;
    // Scheduled an hour from now: the scheduler must leave it alone.
    let (_, people) = app.post("/v1/people", &app.demo_people(2)).await;
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &serde_json::json!({"name": "later", "person_ids": people["ids"]}),
        )
        .await;
    let (_, template) = app
        .post(
            "/v1/templates",
            &serde_json::json!({"name": "t", "body": "Hi {{first_name}}"}),
        )
        .await;
    let later = chrono_like_in_one_hour();
    let (status, future) = app
        .post(
            "/v1/campaigns",
            &serde_json::json!({
                "name": "later", "audience_id": audience["id"], "template_id": template["id"],
                "channels": ["email"], "start_at": later,
            }),
        )
        .await;
    assert_eq!(status, 201, "{future}");

    // Someone with no phone in an SMS campaign that starts now.
    let (_, nophone) = app
        .post(
            "/v1/people",
            &serde_json::json!({"people": [{"email": "nophone@example.org", "first_name": "Nophone"}]}),
        )
        .await;
    let (_, audience2) = app
        .post(
            "/v1/audiences",
            &serde_json::json!({"name": "now", "person_ids": nophone["ids"]}),
        )
        .await;
    let (_, now) = app
        .post(
            "/v1/campaigns",
            &serde_json::json!({
                "name": "now", "audience_id": audience2["id"], "template_id": template["id"],
                "channels": ["sms", "email"],
            }),
        )
        .await;
    let now_id = now["id"].as_str().and_then(|s| s.parse().ok()).expect("id");
    let view = app.wait_for_completion(now_id, TIMEOUT).await;
    assert_eq!(view["progress"]["by_channel"]["sms"]["failed"], 1, "{view}");
    assert_eq!(view["progress"]["by_channel"]["email"]["sent"], 1, "{view}");

    // By now the scheduler has ticked many times; the future campaign is untouched.
    let (_, future_view) = app
        .get(&format!(
            "/v1/campaigns/{}",
            future["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(future_view["status"], "scheduled", "{future_view}");
    assert_eq!(future_view["progress"]["total"], 0);
    assert_eq!(app.sim.recorder.stats().sms.received, 0);
    assert_eq!(app.sim.recorder.stats().email.unique, 1);
    app.shutdown().await;
}

fn chrono_like_in_one_hour() -> String {
    let t = std::time::SystemTime::now() + Duration::from_secs(3600);
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // RFC 3339 in UTC without pulling chrono into the tests.
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_stopped_mid_campaign_loses_nothing_and_finishes_after_restart() {
    let mut app = TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator]).await;
    let n = 200;
    let campaign = app.create_campaign(n, &[Channel::Sms]).await;
    app.start(Service::SmsSender).await;
    assert!(app.sim.recorder.wait_for_unique(20, TIMEOUT).await);
    app.stop(Service::SmsSender).await;

    // A clean stop records every message it sent: the database and the provider agree.
    let sent_before = app.sim.recorder.unique_count();
    let (_, view) = app.get(&format!("/v1/campaigns/{campaign}")).await;
    assert_eq!(view["progress"]["by_state"]["sent"], sent_before, "{view}");

    app.start(Service::SmsSender).await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], n);
    let s = app.sim.recorder.stats();
    assert_eq!((s.sms.unique, s.sms.duplicates), (n, 0));
    app.shutdown().await;
}
