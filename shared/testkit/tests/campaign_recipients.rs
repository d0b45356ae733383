//! A campaign's recipients (seed 001): besides an audience, a segment's members or everyone
//! who has the bot installed in Teams. One source per campaign; the count before sending
//! and the broadcast read the same people.

use pushfleet_api::identity::Role;
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::TestApp;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn people(app: &TestApp, n: usize) -> Vec<Uuid> {
    let (status, created) = app.post("/v1/people", &app.demo_people(n)).await;
    assert_eq!(status, 201, "{created}");
    serde_json::from_value(created["ids"].clone()).expect("ids")
}

async fn sql(app: &TestApp, statement: &str, id: Uuid) {
    sqlx::query(statement)
        .bind(id)
        .execute(app.env.store.pool())
        .await
        .expect(statement);
}

async fn template(app: &TestApp) -> Value {
    let (status, t) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "subject": "Hi", "body": "Hello {{first_name}}"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    t["id"].clone()
}

/// A segment named `name` with `emails` pasted in.
async fn segment(app: &TestApp, name: &str, emails: &[&str], labels: Value) -> Uuid {
    let (status, s) = app
        .post("/v1/segments", &json!({"name": name, "labels": labels}))
        .await;
    assert_eq!(status, 201, "{s}");
    let id: Uuid = s["id"].as_str().and_then(|s| s.parse().ok()).expect("id");
    if !emails.is_empty() {
        let (status, report) = app
            .post_raw(
                &format!("/v1/segments/{id}/members"),
                "text/plain",
                &emails.join("\n"),
            )
            .await;
        assert_eq!(status, 200, "{report}");
    }
    id
}

fn received(app: &TestApp, channel: SimChannel) -> BTreeSet<String> {
    app.sim
        .recorder
        .messages_for(channel)
        .into_iter()
        .map(|m| m.recipient)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn id_of(v: &Value) -> Uuid {
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segment_campaign_reaches_its_members_as_counted_and_no_one_else() {
    let app = TestApp::spawn().await;
    let ids = people(&app, 6).await;
    let template = template(&app).await;
    let seg = segment(
        &app,
        "new starters",
        &[
            "person0@example.org",
            "person1@example.org",
            "person2@example.org",
            "person3@example.org",
            "person4@example.org",
        ],
        json!([]),
    )
    .await;
    // person1 opted out of e-mail, person2 has no Teams bot, person3 left the segment on
    // their own, person4 was deactivated; person5 is not a member at all.
    app.env
        .store
        .opt_out_of_segment(seg, ids[3], "test", None)
        .await
        .expect("segment opt-out");
    sql(
        &app,
        "INSERT INTO channel_opt_outs (person_id, channel, source) VALUES ($1, 'email', 'test')",
        ids[1],
    )
    .await;
    sql(
        &app,
        "UPDATE people SET teams_conversation = NULL WHERE id = $1",
        ids[2],
    )
    .await;
    sql(
        &app,
        "UPDATE people SET active = false WHERE id = $1",
        ids[4],
    )
    .await;

    let (status, draft) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "to starters", "status": "draft", "segment_id": seg,
                    "template_id": template, "channels": ["email", "teams"]}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!(draft["segment_id"], json!(seg));
    assert_eq!(draft["segment_name"], "new starters");
    assert_eq!(draft["list_name"], "new starters");
    assert_eq!(draft["audience_id"], Value::Null);
    let path = format!("/v1/campaigns/{}", id_of(&draft));
    let (status, reach) = app.get(&format!("{path}/recipients")).await;
    assert_eq!(status, 200, "{reach}");
    assert_eq!(
        reach,
        json!({"recipients": 3, "channels": [
            {"channel": "email", "reachable": 2, "no_address": 0, "opted_out": 1},
            {"channel": "teams", "reachable": 2, "no_address": 1, "opted_out": 0},
        ]})
    );

    // A clone keeps the segment.
    let (status, copy) = app
        .post(&format!("{path}/clone"), &json!({"name": "again"}))
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["segment_id"], json!(seg));

    let (status, sent) = app.post(&format!("{path}/send"), &json!({})).await;
    assert_eq!(status, 200, "{sent}");
    let view = app.wait_for_completion(id_of(&draft), TIMEOUT).await;
    let by_channel = &view["progress"]["by_channel"];
    assert_eq!(
        by_channel["email"],
        json!({"sent": 2, "skipped": 1}),
        "{view}"
    );
    assert_eq!(
        by_channel["teams"],
        json!({"sent": 2, "failed": 1}),
        "{view}"
    );
    assert_eq!(
        received(&app, SimChannel::Email),
        set(&["person0@example.org", "person2@example.org"])
    );
    assert_eq!(
        received(&app, SimChannel::Teams),
        set(&["a:conv-0", "a:conv-1"])
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everyone_with_the_bot_is_exactly_the_people_with_a_conversation() {
    let app = TestApp::spawn().await;
    let ids = people(&app, 5).await;
    let template = template(&app).await;
    // person3 has no bot; person4 has one but was deactivated.
    sql(
        &app,
        "UPDATE people SET teams_conversation = NULL WHERE id = $1",
        ids[3],
    )
    .await;
    sql(
        &app,
        "UPDATE people SET active = false WHERE id = $1",
        ids[4],
    )
    .await;
    let (status, draft) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "all bot users", "status": "draft", "all_bot_users": true,
                    "template_id": template, "channels": ["teams"]}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!(draft["all_bot_users"], true);
    assert_eq!(draft["list_name"], "everyone with the bot");
    let path = format!("/v1/campaigns/{}", id_of(&draft));
    let (status, reach) = app.get(&format!("{path}/recipients")).await;
    assert_eq!(status, 200, "{reach}");
    assert_eq!(
        reach,
        json!({"recipients": 3, "channels": [
            {"channel": "teams", "reachable": 3, "no_address": 0, "opted_out": 0},
        ]})
    );
    let (status, sent) = app.post(&format!("{path}/send"), &json!({})).await;
    assert_eq!(status, 200, "{sent}");
    let view = app.wait_for_completion(id_of(&draft), TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"], json!({"sent": 3}), "{view}");
    assert_eq!(
        received(&app, SimChannel::Teams),
        set(&["a:conv-0", "a:conv-1", "a:conv-2"])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn one_source_of_recipients_and_everyone_with_the_bot_only_on_teams() {
    let app = TestApp::spawn_with(&[]).await;
    let ids = people(&app, 2).await;
    let template = template(&app).await;
    let (_, audience) = app
        .post("/v1/audiences", &json!({"name": "a", "person_ids": ids}))
        .await;
    let audience = audience["id"].clone();
    let seg = segment(&app, "s", &["person0@example.org"], json!(["finance"])).await;
    let empty = segment(&app, "empty", &[], json!([])).await;
    let field = |body: &Value| body["error"]["details"][0]["field"].clone();

    // Two sources: refused, naming the field.
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "two", "audience_id": audience, "segment_id": seg,
                    "template_id": template, "channels": ["email"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "segment_id");
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "two", "status": "draft", "audience_id": audience,
                    "all_bot_users": true, "channels": ["teams"]}),
        )
        .await;
    assert_eq!(status, 422, "a draft too: {body}");
    assert_eq!(field(&body), "all_bot_users");
    // Everyone with the bot on e-mail: refused.
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "bot mail", "all_bot_users": true, "template_id": template,
                    "channels": ["email", "teams"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "all_bot_users");
    // None, to be sent now: refused.
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "none", "template_id": template, "channels": ["email"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "audience_id");
    // An empty segment cannot be sent to.
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "empty", "segment_id": empty, "template_id": template,
                    "channels": ["email"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "segment_id");

    // A change names one source, which replaces the other.
    let (status, draft) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "d", "status": "draft", "audience_id": audience,
                    "template_id": template, "channels": ["teams"]}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let path = format!("/v1/campaigns/{}", id_of(&draft));
    let (status, changed) = app.patch(&path, &json!({"segment_id": seg})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["segment_id"], json!(seg));
    assert_eq!(changed["audience_id"], Value::Null);
    let (status, changed) = app.patch(&path, &json!({"all_bot_users": true})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["segment_id"], Value::Null);
    assert_eq!(changed["all_bot_users"], true);
    let (status, body) = app
        .patch(&path, &json!({"channels": ["email", "teams"]}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "all_bot_users");
    let (status, body) = app
        .patch(&path, &json!({"audience_id": audience, "segment_id": seg}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field(&body), "segment_id");
    let (status, changed) = app.patch(&path, &json!({"all_bot_users": false})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["list_name"], Value::Null);
    let (status, body) = app.post(&format!("{path}/send"), &json!({})).await;
    assert_eq!(status, 422, "no recipients: {body}");
    let (status, body) = app.get(&format!("{path}/recipients")).await;
    assert_eq!(status, 422, "{body}");

    // A segment the caller's labels do not reach is, to it, not there.
    let key = app.api_key_limited(Role::Organizer, &["hr"]).await;
    let r = TestApp::client(Some(&key))
        .post(format!("{}/v1/campaigns", app.api_url))
        .json(
            &json!({"name": "hidden", "status": "draft", "segment_id": seg,
                      "channels": ["email"]}),
        )
        .send()
        .await
        .expect("call");
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(field(&body), "segment_id");
    assert!(
        body.to_string().contains("no segment with this id"),
        "{body}"
    );
    app.shutdown().await;
}
