//! Rate limits over real sockets: enforced like the providers, violations counted, and the
//! busiest window reported per key.

mod common;

use common::{retry_after, twilio_code, Sim, Smtp, APP_ID};
use futures::future::join_all;
use pushfleet_loadtest::simulator::{LimitScope, LimitsReport, SimConfig, Window};
use serde_json::{json, Value};

#[tokio::test]
async fn teams_conversation_limit_refuses_past_seven_per_second() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral().with_real_limits()).await?;
    let token = sim.bot_token().await?;
    // All at once, so all 20 land inside one second.
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let responses = join_all(keys.iter().map(|k| sim.activity(&token, "a:busy", k))).await;
    let mut accepted = 0;
    let mut throttled = 0;
    for resp in responses {
        let resp = resp?;
        match resp.status().as_u16() {
            201 => accepted += 1,
            429 => {
                throttled += 1;
                assert_eq!(retry_after(&resp).as_deref(), Some("1"));
                let body: Value = resp.json().await?;
                assert_eq!(body["error"]["code"], "Throttled");
            }
            other => anyhow::bail!("unexpected status {other}"),
        }
    }
    assert_eq!((accepted, throttled), (7, 13));
    // Another conversation has its own windows.
    assert_eq!(sim.activity(&token, "a:quiet", "q").await?.status(), 201);

    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.teams.received, 8);
    assert_eq!(stats.rejected.teams.rate_limited, 13);

    let report = sim.handle.limits();
    assert!(report.enabled);
    let busy = report
        .key(LimitScope::TeamsConversation, "a:busy")
        .ok_or_else(|| anyhow::anyhow!("no report for a:busy"))?;
    assert_eq!((busy.accepted, busy.violations), (7, 13));
    let windows: Vec<(u64, u32, u64)> = busy
        .windows
        .iter()
        .map(|w| (w.window_ms, w.max, w.max_observed))
        .collect();
    assert_eq!(
        windows,
        [
            (1_000, 7, 7),
            (2_000, 8, 7),
            (30_000, 60, 7),
            (3_600_000, 1_800, 7)
        ]
    );
    let app = report.key(LimitScope::TeamsApp, APP_ID);
    assert_eq!(app.map(|a| (a.accepted, a.violations)), Some((8, 0)));

    // The same over HTTP.
    let over_http: LimitsReport = sim
        .client
        .get(sim.url("/_sim/limits"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(over_http, report);
    sim.stop().await
}

#[tokio::test]
async fn teams_app_limit_spans_conversations() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral().with_real_limits()).await?;
    // A long window keeps the count independent of how fast the requests go.
    sim.handle
        .knobs
        .update(|k| k.limits.teams_per_app = vec![Window::new(5, 60_000)])?;
    let token = sim.bot_token().await?;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let resp = sim.activity(&token, &format!("a:{i}"), "k").await?;
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429, 429, 429]);
    // Conversation creation counts against the app too.
    let created = sim
        .client
        .post(sim.url("/v3/conversations"))
        .bearer_auth(&token)
        .json(&json!({
            "bot": { "id": "28:app" },
            "members": [{ "id": "29:user" }],
            "channelData": { "tenant": { "id": "t" } },
        }))
        .send()
        .await?;
    assert_eq!(created.status(), 429);

    // Another app's token has its own budget.
    let other = sim
        .token("other-app", "https://api.botframework.com/.default")
        .await?;
    assert_eq!(sim.activity(&other, "a:0", "k2").await?.status(), 201);

    let report = sim.handle.limits();
    let app = report.key(LimitScope::TeamsApp, APP_ID);
    assert_eq!(app.map(|a| (a.accepted, a.violations)), Some((5, 4)));
    let refused_conversation = report.key(LimitScope::TeamsConversation, "a:7");
    assert_eq!(
        refused_conversation.map(|c| (c.accepted, c.violations)),
        Some((0, 0)),
        "an app refusal is not charged to the conversation"
    );
    sim.stop().await
}

#[tokio::test]
async fn twilio_sender_limits_count_segments() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral().with_real_limits()).await?;
    sim.handle.knobs.update(|k| {
        let senders = &mut k.limits.sms_senders;
        senders.insert("+15550000100".into(), vec![Window::new(100, 1_000)]);
        senders.insert("+15550000003".into(), vec![Window::new(3, 60_000)]);
    })?;
    let to = "+4915112345678";

    // A long code: 1 segment/s.
    let first = sim.sms("+15550000001", to, "one", &[]).await?;
    assert_eq!(first.status(), 201);
    let second = sim.sms("+15550000001", to, "two", &[]).await?;
    assert_eq!(second.status(), 429);
    assert!(retry_after(&second).is_some());
    assert_eq!(twilio_code(second).await?, 20429);

    // A messaging service is a sender of its own.
    let service = [("MessagingServiceSid", "MGservice")];
    let mut form = vec![("To", to), ("Body", "svc")];
    form.extend_from_slice(&service);
    let mut service_statuses = Vec::new();
    for _ in 0..2 {
        let resp = sim
            .client
            .post(sim.url("/2010-04-01/Accounts/ACsim/Messages.json"))
            .basic_auth("ACsim", Some("sim-token"))
            .form(&form)
            .send()
            .await?;
        service_statuses.push(resp.status().as_u16());
    }
    assert_eq!(service_statuses, [201, 429]);

    // A short code at 100/s takes a burst.
    let bodies: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    let burst = bodies.iter().map(|b| sim.sms("+15550000100", to, b, &[]));
    for resp in join_all(burst).await {
        assert_eq!(resp?.status(), 201);
    }

    // Three segments a minute: a two-segment message uses two of them.
    let two_segments = "a".repeat(200);
    let sender = "+15550000003";
    assert_eq!(sim.sms(sender, to, &two_segments, &[]).await?.status(), 201);
    assert_eq!(sim.sms(sender, to, &two_segments, &[]).await?.status(), 429);
    assert_eq!(sim.sms(sender, to, "short", &[]).await?.status(), 201);

    let report = sim.handle.limits();
    let key = |k: &str| {
        report
            .key(LimitScope::SmsSender, k)
            .map(|r| (r.accepted, r.violations))
    };
    assert_eq!(key("+15550000001"), Some((1, 1)));
    assert_eq!(key("MGservice"), Some((1, 1)));
    assert_eq!(key("+15550000100"), Some((20, 0)));
    assert_eq!(key("+15550000003"), Some((3, 1)));
    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.sms.received, 1 + 1 + 20 + 2);
    assert_eq!(stats.rejected.sms.rate_limited, 3);
    sim.stop().await
}

#[tokio::test]
async fn email_account_limit_is_optional() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral().with_real_limits()).await?;
    // Off by default.
    for _ in 0..5 {
        assert_eq!(sim.sendgrid(&["ada@example.com"]).await?.status(), 202);
    }
    sim.handle
        .knobs
        .update(|k| k.limits.email_per_account = vec![Window::new(3, 60_000)])?;
    let post = sim.client.post(sim.url("/_sim/reset")).send().await?;
    assert!(post.status().is_success());

    // Recipients count: 2 + 2 would be 4 > 3.
    let pair = ["ada@example.com", "bob@example.com"];
    assert_eq!(sim.sendgrid(&pair).await?.status(), 202);
    assert_eq!(sim.sendgrid(&pair).await?.status(), 429);
    assert_eq!(sim.sendgrid(&pair[..1]).await?.status(), 202);

    // SMTP accounts are envelope senders; over the limit a relay says 421 and hangs up.
    let (mut smtp, _) = Smtp::connect(&sim).await?;
    smtp.expect("HELO c", "250").await?;
    for i in 0..3 {
        let reply = smtp
            .mail("bulk@pushfleet.test", &["u@example.com"], &format!("m{i}"))
            .await?;
        assert!(reply.starts_with("250 "), "{reply}");
    }
    let reply = smtp
        .mail("bulk@pushfleet.test", &["u@example.com"], "m3")
        .await?;
    assert!(reply.starts_with("421 "), "{reply}");
    assert!(smtp.closed().await?);

    let report = sim.handle.limits();
    let accounts: Vec<(u64, u64)> = report
        .email_account
        .values()
        .map(|r| (r.accepted, r.violations))
        .collect();
    assert_eq!(accounts.len(), 2);
    assert!(accounts.contains(&(3, 1)));
    let smtp_account = report.key(LimitScope::EmailAccount, "smtp:bulk@pushfleet.test");
    assert_eq!(
        smtp_account.map(|r| (r.accepted, r.violations)),
        Some((3, 1))
    );
    // The SendGrid key itself is not shown.
    assert!(report.email_account.keys().all(|k| !k.contains("SG.")));
    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.rejected.email.rate_limited, 2);
    assert_eq!(stats.email.received, 3 + 3);
    sim.stop().await
}

#[tokio::test]
async fn observe_only_reports_the_busiest_window() -> anyhow::Result<()> {
    // Tests' default: the real windows are measured but nothing is refused.
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let token = sim.bot_token().await?;
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    for resp in join_all(keys.iter().map(|k| sim.activity(&token, "a:1", k))).await {
        assert_eq!(resp?.status(), 201);
    }
    let bodies: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
    let sms = bodies
        .iter()
        .map(|b| sim.sms("+15550000001", "+4915112345678", b, &[]));
    for resp in join_all(sms).await {
        assert_eq!(resp?.status(), 201);
    }

    let report: Value = sim
        .client
        .get(sim.url("/_sim/limits"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(report["enabled"], false);
    let conversation = &report["teams_conversation"]["a:1"];
    assert_eq!(conversation["accepted"], 12);
    assert_eq!(conversation["violations"], 0);
    assert_eq!(
        conversation["windows"][0],
        json!({ "window_ms": 1000, "max": 7, "max_observed": 12 })
    );
    let sender = &report["sms_sender"]["+15550000001"];
    assert_eq!(
        sender["windows"],
        json!([{ "window_ms": 1000, "max": 1, "max_observed": 5 }])
    );
    assert_eq!(report["teams_app"][APP_ID]["accepted"], 12);
    assert_eq!(report["email_account"], json!({}));

    // A reset forgets the windows too.
    let reset = sim.client.post(sim.url("/_sim/reset")).send().await?;
    assert!(reset.status().is_success());
    assert_eq!(sim.handle.limits(), LimitsReport::default());
    sim.stop().await
}
