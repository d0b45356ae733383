//! Knobs over real sockets: injected failures (rate 1.0, so deterministic), per-recipient
//! failures, outage windows, presence, runtime latency, and the `/_sim/knobs` endpoint.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{retry_after, twilio_code, Sim, Smtp, WAIT};
use pushfleet_loadtest::simulator::{
    Availability, Channel, ChannelKnobs, KnobSet, Latency, Outage, RejectKind, Rejections,
    SimConfig,
};
use serde_json::{json, Value};

/// One failure of each kind, in this order: server error, throttle, permanent.
fn kinds() -> [ChannelKnobs; 3] {
    let base = ChannelKnobs {
        retry_after_secs: 7,
        ..ChannelKnobs::default()
    };
    [
        ChannelKnobs {
            server_error: 1.0,
            ..base.clone()
        },
        ChannelKnobs {
            throttle: 1.0,
            ..base.clone()
        },
        ChannelKnobs {
            permanent: 1.0,
            ..base
        },
    ]
}

fn one_of_each() -> Rejections {
    Rejections {
        server_error: 1,
        throttle: 1,
        permanent: 1,
        ..Rejections::default()
    }
}

#[tokio::test]
async fn teams_injected_failures_by_kind() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let token = sim.bot_token().await?;
    let [server_error, throttle, permanent] = kinds();

    sim.handle.knobs.update(|k| k.teams = server_error)?;
    let resp = sim.activity(&token, "a:1", "k1").await?;
    assert_eq!(resp.status(), 500);
    assert!(resp.json::<Value>().await?["error"]["code"].is_string());

    sim.handle.knobs.update(|k| k.teams = throttle)?;
    let resp = sim.activity(&token, "a:1", "k1").await?;
    assert_eq!(resp.status(), 429);
    assert_eq!(retry_after(&resp).as_deref(), Some("7"));

    sim.handle.knobs.update(|k| k.teams = permanent)?;
    let resp = sim.activity(&token, "a:1", "k1").await?;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "BotNotInConversationRoster");

    sim.handle.knobs.reset();
    assert_eq!(sim.activity(&token, "a:1", "k1").await?.status(), 201);

    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.teams.received, 1, "refusals are not recorded");
    assert_eq!(sim.handle.recorder.messages_for(Channel::Teams).len(), 1);
    assert_eq!(stats.rejected.teams, one_of_each());
    assert_eq!(stats.rejected.sms.total(), 0);
    sim.stop().await
}

#[tokio::test]
async fn twilio_injected_failures_by_kind() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let [server_error, throttle, permanent] = kinds();
    let send = || sim.sms("+15550000001", "+4915112345678", "Hi", &[]);

    sim.handle.knobs.update(|k| k.sms = server_error)?;
    let resp = send().await?;
    assert_eq!(resp.status(), 500);

    sim.handle.knobs.update(|k| k.sms = throttle)?;
    let resp = send().await?;
    assert_eq!(resp.status(), 429);
    assert_eq!(retry_after(&resp).as_deref(), Some("7"));
    assert_eq!(twilio_code(resp).await?, 20429);

    sim.handle.knobs.update(|k| k.sms = permanent)?;
    let resp = send().await?;
    assert_eq!(resp.status(), 400);
    assert_eq!(twilio_code(resp).await?, 21211);

    sim.handle.knobs.reset();
    assert_eq!(send().await?.status(), 201);
    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.sms.received, 1);
    assert_eq!(stats.rejected.sms, one_of_each());
    sim.stop().await
}

#[tokio::test]
async fn sendgrid_injected_failures_by_kind() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let [server_error, throttle, permanent] = kinds();
    let to = ["ada@example.com"];

    sim.handle.knobs.update(|k| k.email = server_error)?;
    assert_eq!(sim.sendgrid(&to).await?.status(), 500);

    sim.handle.knobs.update(|k| k.email = throttle)?;
    let resp = sim.sendgrid(&to).await?;
    assert_eq!(resp.status(), 429);
    assert_eq!(retry_after(&resp).as_deref(), Some("7"));
    assert_eq!(
        resp.headers()
            .get("x-ratelimit-remaining")
            .map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );

    sim.handle.knobs.update(|k| k.email = permanent)?;
    let resp = sim.sendgrid(&to).await?;
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await?["errors"][0]["message"].is_string());

    sim.handle.knobs.reset();
    assert_eq!(sim.sendgrid(&to).await?.status(), 202);
    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.email.received, 1);
    assert_eq!(stats.rejected.email, one_of_each());
    sim.stop().await
}

#[tokio::test]
async fn smtp_injected_failures_by_kind() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let [server_error, throttle, permanent] = kinds();
    let (mut smtp, _) = Smtp::connect(&sim).await?;
    smtp.expect("EHLO client.test", "250").await?;

    sim.handle.knobs.update(|k| k.email = server_error)?;
    let reply = smtp.mail("a@b.c", &["ada@example.com"], "m1").await?;
    assert!(reply.starts_with("451 "), "{reply}");

    sim.handle.knobs.update(|k| k.email = permanent)?;
    let reply = smtp.mail("a@b.c", &["ada@example.com"], "m1").await?;
    assert!(reply.starts_with("550 "), "{reply}");

    // 421 closes the connection, as RFC 5321 says it does.
    sim.handle.knobs.update(|k| k.email = throttle)?;
    let reply = smtp.mail("a@b.c", &["ada@example.com"], "m1").await?;
    assert!(reply.starts_with("421 "), "{reply}");
    assert!(smtp.closed().await?);

    sim.handle.knobs.reset();
    let (mut smtp, _) = Smtp::connect(&sim).await?;
    smtp.expect("EHLO client.test", "250").await?;
    let reply = smtp.mail("a@b.c", &["ada@example.com"], "m1").await?;
    assert!(reply.starts_with("250 "), "{reply}");
    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.email.received, 1);
    assert_eq!(stats.rejected.email, one_of_each());
    sim.stop().await
}

#[tokio::test]
async fn per_recipient_permanent_failures() -> anyhow::Result<()> {
    let mut cfg = SimConfig::ephemeral();
    cfg.knobs
        .teams
        .rejected_recipients
        .insert("a:removed".into());
    let sim = Sim::start(cfg).await?;
    sim.handle.knobs.update(|k| {
        k.sms.rejected_recipients.insert("+15559990000".into());
        k.email
            .rejected_recipients
            .insert("gone@example.com".into());
    })?;

    let token = sim.bot_token().await?;
    let resp = sim.activity(&token, "a:removed", "t1").await?;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await?["error"]["code"],
        "BotNotInConversationRoster"
    );
    assert_eq!(sim.activity(&token, "a:kept", "t2").await?.status(), 201);

    let resp = sim.sms("+15550000001", "+15559990000", "Hi", &[]).await?;
    assert_eq!(resp.status(), 400);
    assert_eq!(twilio_code(resp).await?, 21211);
    let resp = sim.sms("+15550000001", "+15559990001", "Hi", &[]).await?;
    assert_eq!(resp.status(), 201);

    // SendGrid refuses the whole request; SMTP refuses just that RCPT.
    let resp = sim
        .sendgrid(&["ada@example.com", "gone@example.com"])
        .await?;
    assert_eq!(resp.status(), 400);
    let (mut smtp, _) = Smtp::connect(&sim).await?;
    smtp.expect("HELO c", "250").await?;
    smtp.expect("MAIL FROM:<a@b.c>", "250").await?;
    smtp.expect("RCPT TO:<gone@example.com>", "550").await?;
    smtp.expect("RCPT TO:<ada@example.com>", "250").await?;
    smtp.expect("DATA", "354").await?;
    let reply = smtp
        .send("Message-ID: <r1@t>\r\nSubject: s\r\n\r\nhi\r\n.\r\n")
        .await?;
    assert!(reply.starts_with("250 "), "{reply}");

    let rec = &sim.handle.recorder;
    let emails = rec.messages_for(Channel::Email);
    let recipients: Vec<&str> = emails.iter().map(|m| m.recipient.as_str()).collect();
    assert_eq!(recipients, ["ada@example.com"]);
    let stats = rec.stats();
    assert_eq!(
        (
            stats.teams.received,
            stats.sms.received,
            stats.email.received
        ),
        (1, 1, 1)
    );
    for channel in [Channel::Teams, Channel::Sms] {
        assert_eq!(
            stats.rejected.channel(channel).get(RejectKind::Permanent),
            1
        );
    }
    assert_eq!(stats.rejected.email.permanent, 2);
    sim.stop().await
}

#[tokio::test]
async fn per_recipient_transient_failures_last_while_listed() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    sim.handle.knobs.update(|k| {
        k.sms.failing_recipients.insert("+15559990000".into());
        k.email
            .failing_recipients
            .insert("later@example.com".into());
    })?;
    let resp = sim.sms("+15550000001", "+15559990000", "Hi", &[]).await?;
    assert_eq!(resp.status(), 500);
    let resp = sim.sms("+15550000001", "+15559990001", "Hi", &[]).await?;
    assert_eq!(resp.status(), 201);
    let (mut smtp, _) = Smtp::connect(&sim).await?;
    smtp.expect("HELO c", "250").await?;
    smtp.expect("MAIL FROM:<a@b.c>", "250").await?;
    smtp.expect("RCPT TO:<later@example.com>", "451").await?;

    // Taken off the list, the recipient is served.
    sim.handle
        .knobs
        .update(|k| k.sms.failing_recipients.clear())?;
    let resp = sim.sms("+15550000001", "+15559990000", "Hi", &[]).await?;
    assert_eq!(resp.status(), 201);
    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.sms.received, 2);
    assert_eq!(stats.rejected.sms.server_error, 1);
    assert_eq!(stats.rejected.email.server_error, 1);
    sim.stop().await
}

#[tokio::test]
async fn outage_windows_fail_transiently() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let token = sim.bot_token().await?;

    // "Starting now for a minute", over HTTP.
    let resp = sim
        .put_knobs(
            json!({ "sms": { "outage_for_ms": 60_000 }, "teams": { "outage_for_ms": 60_000 } }),
        )
        .await?;
    assert_eq!(resp.status(), 200);
    let knobs: Value = resp.json().await?;
    assert_eq!(knobs["sms"]["outages"].as_array().map(Vec::len), Some(1));
    assert_eq!(knobs["sms"]["outages"][0]["duration_ms"], 60_000);
    assert!(knobs["sms"].get("outage_for_ms").is_none());

    let resp = sim.sms("+15550000001", "+4915112345678", "Hi", &[]).await?;
    assert_eq!(resp.status(), 503);
    assert_eq!(twilio_code(resp).await?, 20503);
    let resp = sim.activity(&token, "a:1", "k").await?;
    assert_eq!(resp.status(), 503);
    // Entra ID and Graph are separate services and stay up.
    sim.bot_token().await?;
    let presence = sim
        .client
        .get(sim.url("/v1.0/users/u1/presence"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(presence.status(), 200);
    // Other channels are unaffected.
    assert_eq!(sim.sendgrid(&["ada@example.com"]).await?.status(), 202);

    // Explicit RFC 3339 windows: one over, one not yet begun, so no outage now. The one that
    // is over is dropped.
    let hour = chrono::Duration::hours(1);
    let windows = json!([
        { "start": (Utc::now() - hour * 2).to_rfc3339(), "duration_ms": 3_600_000 },
        { "start": (Utc::now() + hour).to_rfc3339(), "duration_ms": 1_000 },
    ]);
    let knobs: Value = sim
        .put_knobs(json!({ "sms": { "outages": windows }, "teams": { "outages": [] } }))
        .await?
        .json()
        .await?;
    assert_eq!(knobs["sms"]["outages"].as_array().map(Vec::len), Some(1));
    let resp = sim.sms("+15550000001", "+4915112345678", "Hi", &[]).await?;
    assert_eq!(resp.status(), 201);
    assert_eq!(sim.activity(&token, "a:1", "k").await?.status(), 201);

    // SMTP: a relay that is down answers 421 and hangs up.
    sim.handle.knobs.update(|k| {
        k.email.outages = vec![Outage::starting_now(Duration::from_secs(60))];
    })?;
    let (mut smtp, greeting) = Smtp::connect(&sim).await?;
    assert!(greeting.starts_with("421 "), "{greeting}");
    assert!(smtp.closed().await?);

    let stats = sim.handle.recorder.stats();
    assert_eq!(stats.rejected.sms.outage, 1);
    assert_eq!(stats.rejected.teams.outage, 1);
    assert_eq!(stats.rejected.email.outage, 1);
    assert_eq!(
        (
            stats.sms.received,
            stats.teams.received,
            stats.email.received
        ),
        (1, 1, 1)
    );
    sim.stop().await
}

#[tokio::test]
async fn presence_default_and_per_user() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let presence = |id: &str, token: Option<&str>| {
        let req = sim
            .client
            .get(sim.url(&format!("/v1.0/users/{id}/presence")));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
        .send()
    };
    assert_eq!(presence("u1", None).await?.status(), 401);
    assert_eq!(presence("u1", Some("made-up")).await?.status(), 401);

    // A Graph-scoped token from another app works as well as the bot's.
    let token = sim
        .token("graph-app", "https://graph.microsoft.com/.default")
        .await?;
    let body: Value = presence("u1", Some(&token)).await?.json().await?;
    assert_eq!(body["availability"], "Available");
    assert_eq!(body["id"], "u1");

    let resp = sim
        .put_knobs(json!({
            "presence": { "default": "Away", "users": { "u1": "Busy", "u2": "Offline" } }
        }))
        .await?;
    assert_eq!(resp.status(), 200);
    sim.handle.knobs.update(|k| {
        k.presence
            .users
            .insert("u3".into(), Availability::DoNotDisturb);
    })?;
    for (id, want) in [
        ("u1", "Busy"),
        ("u2", "Offline"),
        ("u3", "DoNotDisturb"),
        ("u4", "Away"),
    ] {
        let body: Value = presence(id, Some(&token)).await?.json().await?;
        assert_eq!(body["availability"], want, "{id}");
        assert!(body["activity"].is_string());
    }

    let bad = sim
        .put_knobs(json!({ "presence": { "default": "Sleepy" } }))
        .await?;
    assert_eq!(bad.status(), 400);
    sim.stop().await
}

#[tokio::test]
async fn knobs_endpoint_round_trip() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let get = || async {
        let resp = sim.client.get(sim.url("/_sim/knobs")).send().await?;
        anyhow::ensure!(resp.status() == 200, "status {}", resp.status());
        Ok::<Value, anyhow::Error>(resp.json().await?)
    };
    let initial = get().await?;
    assert_eq!(initial["teams"]["server_error"], 0.0);
    assert_eq!(initial["teams"]["latency"]["kind"], "fixed");
    assert_eq!(initial["limits"]["enabled"], false);
    assert_eq!(
        initial["limits"]["teams_per_conversation"][0],
        json!({ "max": 7, "window_ms": 1000 })
    );
    assert_eq!(initial["presence"]["default"], "Available");

    let resp = sim
        .put_knobs(json!({
            "teams": {
                "throttle": 0.25,
                "retry_after_secs": 3,
                "latency": { "kind": "log_normal", "p50_ms": 1, "p99_ms": 4 },
            },
            "sms": { "rejected_recipients": ["+15550001111"] },
            "limits": { "enabled": true, "sms_senders": { "+15550000100": [{ "max": 100, "window_ms": 1000 }] } },
            "status_callbacks": { "undelivered_rate": 0.5 },
        }))
        .await?;
    assert_eq!(resp.status(), 200);
    let answered: Value = resp.json().await?;
    let now = get().await?;
    assert_eq!(answered, now);
    assert_eq!(
        serde_json::from_value::<KnobSet>(now.clone())?,
        sim.handle.knobs.get()
    );
    let knobs = sim.handle.knobs.get();
    assert_eq!(knobs.teams.throttle, 0.25);
    assert_eq!(knobs.teams.latency, Latency::log_normal(1, 4));
    assert!(knobs.sms.rejected_recipients.contains("+15550001111"));
    assert!(knobs.limits.enabled);
    assert_eq!(knobs.status_callbacks.undelivered_rate, 0.5);
    // Untouched fields keep their values.
    assert_eq!(now["teams"]["server_error"], 0.0);
    assert_eq!(
        now["limits"]["teams_per_app"],
        initial["limits"]["teams_per_app"]
    );

    // Invalid changes are refused whole.
    for bad in [
        json!({ "teams": { "server_error": 1.5, "throttle": 0.0 } }),
        json!({ "teams": { "latency": { "kind": "log_normal", "p50_ms": 9, "p99_ms": 2 } } }),
        json!({ "limits": { "teams_per_app": [{ "max": 0, "window_ms": 1000 }] } }),
        json!({ "teams": { "typo": 1 } }),
    ] {
        let resp = sim.put_knobs(bad.clone()).await?;
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(resp.json::<Value>().await?["error"].is_string());
    }
    let not_json = sim
        .client
        .put(sim.url("/_sim/knobs"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await?;
    assert_eq!(not_json.status(), 400);
    assert_eq!(get().await?, now);

    let reset = sim.client.delete(sim.url("/_sim/knobs")).send().await?;
    assert_eq!(reset.status(), 200);
    assert_eq!(reset.json::<Value>().await?, initial);
    assert_eq!(get().await?, initial);
    sim.stop().await
}

#[tokio::test]
async fn latency_knob_changes_at_runtime_per_channel() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    sim.handle
        .knobs
        .update(|k| k.sms.latency = Latency::new(150, 0))?;
    let started = Instant::now();
    let resp = sim.sms("+15550000001", "+4915112345678", "Hi", &[]).await?;
    assert_eq!(resp.status(), 201);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(sim.handle.recorder.wait_for_unique(1, WAIT).await);

    // The start-up latency fills in every channel left at zero.
    let cfg = SimConfig {
        latency: Latency::log_normal(5, 20),
        ..SimConfig::ephemeral()
    };
    let other = Sim::start(cfg).await?;
    let knobs = other.handle.knobs.get();
    for channel in [Channel::Email, Channel::Teams, Channel::Sms] {
        assert_eq!(knobs.channel(channel).latency, Latency::log_normal(5, 20));
    }
    other.stop().await?;
    sim.stop().await
}
