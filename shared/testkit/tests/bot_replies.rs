//! The bot's reply after a segment button (seed 004): an `invoke` (Action.Execute) gets it in
//! its response; a `message` (Action.Submit) gets exactly one reply posted to the
//! conversation by the teams-sender, through the outbox, with the segment's own text or the
//! default; a forged token gets 401 and no reply.

use pushfleet_domain::BotReplyJob;
use pushfleet_loadtest::simulator::bot_identity::{bot_claims, bot_token, sign_bot_token};
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_teams_sender::{BotReplies, ConnectorProvider, ReplyOutcome};
use pushfleet_testkit::{eventually, Service, TestApp, TEAMS_APP_ID};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn people(app: &TestApp, n: usize) -> Vec<Uuid> {
    let (status, created) = app.post("/v1/people", &app.demo_people(n)).await;
    assert_eq!(status, 201, "{created}");
    serde_json::from_value(created["ids"].clone()).expect("ids")
}

async fn segment(app: &TestApp, body: Value) -> Uuid {
    let (status, seg) = app.post("/v1/segments", &body).await;
    assert_eq!(status, 201, "{seg}");
    seg["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("segment id")
}

fn token_for(app: &TestApp) -> String {
    bot_token(TEAMS_APP_ID, &format!("{}/", app.sim.base_url())).expect("sign a token")
}

/// What Teams posts for demo person `i`'s press of an Action.Submit button.
fn message_activity(app: &TestApp, i: usize, id: &str, data: Value) -> Value {
    json!({
        "type": "message",
        "id": id,
        "channelId": "msteams",
        "serviceUrl": format!("{}/", app.sim.base_url()),
        "from": {"id": format!("29:teams-{i}"), "aadObjectId": format!("user-{i}")},
        "conversation": {"id": format!("a:conv-{i}")},
        "recipient": {"id": format!("28:{TEAMS_APP_ID}")},
        "value": data,
    })
}

/// The same press from an Action.Execute button: an `adaptiveCard/action` invoke.
fn invoke_activity(app: &TestApp, i: usize, data: Value) -> Value {
    let mut activity = message_activity(app, i, &Uuid::new_v4().to_string(), Value::Null);
    activity["type"] = json!("invoke");
    activity["name"] = json!("adaptiveCard/action");
    activity["value"] =
        json!({"action": {"type": "Action.Execute", "verb": "segment", "data": data}});
    activity
}

async fn post_activity(app: &TestApp, token: &str, activity: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/v1/teams/messages", app.api_url))
        .bearer_auth(token)
        .json(activity)
        .send()
        .await
        .expect("activity");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.env.store.pool())
        .await
        .expect("count")
}

/// The replies the simulated Connector received: (conversation, text, replyToId).
fn replies(app: &TestApp) -> Vec<(String, String, String)> {
    app.sim
        .recorder
        .messages_for(SimChannel::Teams)
        .into_iter()
        .filter_map(|m| {
            let to = m.raw["replyToId"].as_str()?.to_owned();
            Some((m.recipient, m.body, to))
        })
        .collect()
}

#[tokio::test]
async fn an_invoke_gets_the_segment_reply_in_its_response() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let ids = people(&app, 2).await;
    let seg = segment(
        &app,
        json!({"name": "News", "opt_in_reply": "Welcome to {{segment}}! Leave with Opt-out."}),
    )
    .await;
    let token = token_for(&app);

    let join = invoke_activity(
        &app,
        1,
        json!({"action": "segment_opt_in", "segment_id": seg}),
    );
    let (status, body) = post_activity(&app, &token, &join).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
               "value": "Welcome to News! Leave with Opt-out."})
    );
    assert!(app
        .env
        .store
        .is_segment_member(seg, ids[1])
        .await
        .expect("member?"));

    // No text of its own for opt-out: the default names the segment and the way back.
    let leave = invoke_activity(
        &app,
        1,
        json!({"action": "segment_opt_out", "segment_id": seg}),
    );
    let (status, body) = post_activity(&app, &token, &leave).await;
    assert_eq!(status, 200, "{body}");
    let text = body["value"].as_str().unwrap_or_default();
    assert!(
        text.contains("\"News\"") && text.contains("Opt-in"),
        "{body}"
    );
    assert!(!app
        .env
        .store
        .is_segment_member(seg, ids[1])
        .await
        .expect("member?"));
    // The answer went in the responses: nothing queued to post.
    assert_eq!(count(&app, "SELECT count(*) FROM bot_replies").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox").await, 0);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_activity_gets_exactly_one_reply_posted_with_the_segments_text() {
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::TeamsSender]).await;
    let ids = people(&app, 2).await;
    let seg = segment(
        &app,
        json!({"name": "Hiking", "opt_in_reply": "You're in {{segment}}. Opt-out any time."}),
    )
    .await;
    let token = token_for(&app);

    let join = message_activity(
        &app,
        1,
        "1:join",
        json!({"action": "segment_opt_in", "segment_id": seg}),
    );
    let (status, body) = post_activity(&app, &token, &join).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"result": "opted_in", "reply_queued": true}));
    // The Bot Framework delivers the same press again (it retries on a slow answer).
    let (status, body) = post_activity(&app, &token, &join).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"result": "opted_in"}),
        "no second reply queued"
    );
    assert!(app
        .env
        .store
        .is_segment_member(seg, ids[1])
        .await
        .expect("member?"));

    let finished =
        "SELECT count(*) FROM bot_replies WHERE finished_at IS NOT NULL AND error IS NULL";
    eventually("the reply posted and marked", TIMEOUT, || async {
        (count(&app, finished).await == 1).then_some(())
    })
    .await;
    assert_eq!(
        replies(&app),
        vec![(
            "a:conv-1".to_owned(),
            "You're in Hiking. Opt-out any time.".to_owned(),
            "1:join".to_owned()
        )]
    );

    // A redelivered copy of the job finds the reply finished and posts nothing.
    let job = BotReplyJob {
        activity_id: "1:join".into(),
        service_url: format!("{}/", app.sim.base_url()),
        conversation_id: "a:conv-1".into(),
        text: "You're in Hiking. Opt-out any time.".into(),
        requested_at: chrono::Utc::now(),
    };
    let cfg = app.teams_config();
    let provider = ConnectorProvider::new(&cfg).expect("connector client");
    let bot = BotReplies::connect(&cfg, provider.replier())
        .await
        .expect("bot replies");
    assert_eq!(bot.process(&job).await, ReplyOutcome::AlreadyFinished);
    assert_eq!(replies(&app).len(), 1);

    // Leaving: the default reply, posted once too.
    let leave = message_activity(
        &app,
        1,
        "1:leave",
        json!({"action": "segment_opt_out", "segment_id": seg}),
    );
    let (status, body) = post_activity(&app, &token, &leave).await;
    assert_eq!(
        (status, &body["reply_queued"]),
        (200, &json!(true)),
        "{body}"
    );
    eventually("the second reply posted", TIMEOUT, || async {
        (count(&app, finished).await == 2).then_some(())
    })
    .await;
    let all = replies(&app);
    assert_eq!(all.len(), 2, "{all:?}");
    let (to, text, reply_to) = &all[1];
    assert_eq!((to.as_str(), reply_to.as_str()), ("a:conv-1", "1:leave"));
    assert!(
        text.contains("\"Hiking\"") && text.contains("Opt-in"),
        "{text}"
    );
    assert_eq!(app.sim.recorder.stats().teams.duplicates, 0);

    // A conversation the Connector refuses for good: given up with the reason, not retried.
    app.sim
        .knobs
        .update(|k| {
            k.teams.rejected_recipients.insert("a:gone".into());
        })
        .expect("knobs");
    let refused = BotReplyJob {
        activity_id: "1:gone".into(),
        conversation_id: "a:gone".into(),
        ..job
    };
    let outcome = bot.process(&refused).await;
    assert!(
        matches!(&outcome, ReplyOutcome::GaveUp(reason) if reason.contains("403")),
        "{outcome:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_token_gets_401_and_no_reply() {
    let app = TestApp::spawn_with(&[Service::Scheduler, Service::TeamsSender]).await;
    let ids = people(&app, 1).await;
    let seg = segment(&app, json!({"name": "News"})).await;
    let data = json!({"action": "segment_opt_in", "segment_id": seg});
    let service_url = format!("{}/", app.sim.base_url());

    // Claims swapped after signing: the signature no longer matches.
    let forged = {
        let good = token_for(&app);
        let mut parts: Vec<&str> = good.split('.').collect();
        let mut claims = bot_claims(TEAMS_APP_ID, &service_url, 3600);
        claims["exp"] = json!(4_000_000_000i64);
        let payload = base64_url(&serde_json::to_vec(&claims).expect("json"));
        parts[1] = &payload;
        parts.join(".")
    };
    let other_bot = sign_bot_token(&bot_claims("another-bot", &service_url, 3600)).expect("sign");
    for (what, token) in [
        ("forged", forged.as_str()),
        ("another bot", other_bot.as_str()),
    ] {
        let activity = message_activity(&app, 0, &format!("1:{what}"), data.clone());
        let (status, body) = post_activity(&app, token, &activity).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM bot_replies").await, 0);
    assert!(!app
        .env
        .store
        .is_segment_member(seg, ids[0])
        .await
        .expect("member?"));

    // A genuine press afterwards is answered, and its reply is the only one posted.
    let genuine = message_activity(&app, 0, "1:genuine", data);
    let (status, _) = post_activity(&app, &token_for(&app), &genuine).await;
    assert_eq!(status, 200);
    eventually("the genuine reply", TIMEOUT, || async {
        (!replies(&app).is_empty()).then_some(())
    })
    .await;
    let all = replies(&app);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].2, "1:genuine");
    app.shutdown().await;
}

async fn patch(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .patch(format!("{}{path}", app.api_url))
        .json(body)
        .send()
        .await
        .expect("PATCH");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn segment_replies_are_set_on_create_and_changed_or_reset_by_patch() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (status, created) = app
        .post(
            "/v1/segments",
            &json!({"name": "Book club", "opt_out_reply": "Sorry to see you leave {{segment}}."}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["opt_out_reply"],
        "Sorry to see you leave Book club."
    );
    assert_eq!(created["custom_opt_out_reply"], true);
    assert_eq!(created["custom_opt_in_reply"], false);
    let default_in = created["opt_in_reply"].as_str().unwrap_or_default();
    assert!(
        default_in.contains("\"Book club\"") && default_in.contains("Opt-out"),
        "{created}"
    );
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/segments/{id}");

    // Renamed, opt-in text set, opt-out text back to the default; the defaults follow the name.
    let (status, changed) = patch(
        &app,
        &path,
        &json!({"name": "Readers", "opt_in_reply": "Welcome!", "opt_out_reply": null}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Readers");
    assert_eq!(changed["opt_in_reply"], "Welcome!");
    assert_eq!(changed["custom_opt_out_reply"], false);
    assert!(
        changed["opt_out_reply"]
            .as_str()
            .unwrap_or_default()
            .contains("\"Readers\""),
        "{changed}"
    );
    // A field left out stays as it is.
    let (status, kept) = patch(&app, &path, &json!({"name": "Readers 2"})).await;
    assert_eq!(
        (status, &kept["opt_in_reply"]),
        (200, &json!("Welcome!")),
        "{kept}"
    );
    let (_, got) = app.get(&path).await;
    assert_eq!(got["opt_in_reply"], "Welcome!");

    // Empty or oversized texts are refused with the field named, and change nothing.
    for body in [
        json!({"opt_in_reply": "  "}),
        json!({"opt_in_reply": "x".repeat(2001)}),
    ] {
        let (status, err) = patch(&app, &path, &body).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["details"][0]["field"], "opt_in_reply", "{err}");
    }
    let (status, err) = app
        .post("/v1/segments", &json!({"name": "x", "opt_out_reply": ""}))
        .await;
    assert_eq!(status, 422, "{err}");
    let (_, got) = app.get(&path).await;
    assert_eq!(got["opt_in_reply"], "Welcome!");
    let (status, _) = patch(
        &app,
        &format!("/v1/segments/{}", Uuid::new_v4()),
        &json!({"name": "y"}),
    )
    .await;
    assert_eq!(status, 404);
    app.shutdown().await;
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.encode(bytes)
}
