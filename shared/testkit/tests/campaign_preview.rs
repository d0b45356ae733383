//! Preview (seed 001's "refresh Preview"): a campaign's message rendered for one person per
//! channel, with the senders' own code, and whether each channel reaches them. What the
//! preview shows is what the providers then receive.

use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::TestApp;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Ada: every address, a department and a custom attribute. Grace: an e-mail address only
/// (no phone, no bot), no last name, and opted out of e-mail.
/// Returns (Ada's id, Grace's id).
async fn people(app: &TestApp) -> (Uuid, Uuid) {
    let (status, report) = app
        .post(
            "/v1/people/import",
            &json!({"people": [
                {"external_id": "E1", "email": "ada@corp.io", "first_name": "Ada",
                 "last_name": "Lovelace", "department": "Engineering", "phone": "+33612345678",
                 "attributes": {"cost_center": "CC-12"},
                 "teams_conversation": {"service_url": format!("{}/", app.sim.base_url()),
                                        "conversation_id": "a:conv-ada", "user_id": "user-ada"}},
                {"external_id": "E2", "email": "grace@corp.io", "first_name": "Grace"}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM people ORDER BY external_id")
        .fetch_all(app.env.store.pool())
        .await
        .expect("people");
    sqlx::query(
        "INSERT INTO channel_opt_outs (person_id, channel, source) VALUES ($1, 'email', 'test')",
    )
    .bind(ids[1])
    .execute(app.env.store.pool())
    .await
    .expect("opt-out");
    (ids[0], ids[1])
}

async fn template(app: &TestApp, body: Value) -> Value {
    let (status, t) = app.post("/v1/templates", &body).await;
    assert_eq!(status, 201, "{t}");
    t["id"].clone()
}

async fn draft(app: &TestApp, audience: &Value, template: &Value, channels: Value) -> String {
    let (status, c) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "preview", "status": "draft", "audience_id": audience,
                    "template_id": template, "channels": channels}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    format!("/v1/campaigns/{}", c["id"].as_str().expect("id"))
}

fn channel<'a>(preview: &'a Value, name: &str) -> &'a Value {
    preview["channels"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["channel"] == name))
        .unwrap_or_else(|| panic!("no {name} in {preview}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_preview_shows_per_channel_what_the_providers_then_receive() {
    let app = TestApp::spawn().await;
    let (ada, grace) = people(&app).await;
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "both", "person_ids": [ada, grace]}),
        )
        .await;
    let audience = audience["id"].clone();
    let template = template(
        &app,
        json!({"name": "idea", "teams_format": "idea",
               "subject": "Hi [FIRSTNAME]",
               "body": "Hello {{first_name}} {{last_name | \"colleague\"}} of {{department | 'the team'}} ({{attributes.cost_center | \"none\"}}) ł",
               "html": "<p>{{full_name}} &amp; {{attributes.cost_center}}</p>"}),
    )
    .await;
    let path = draft(&app, &audience, &template, json!(["email", "teams", "sms"])).await;

    // Ada: every channel, her properties and attribute rendered.
    let (status, preview) = app.get(&format!("{path}/preview?email=ADA@corp.io")).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["person_id"], json!(ada));
    let text = "Hello Ada Lovelace of Engineering (CC-12) ł";
    assert_eq!(
        channel(&preview, "email"),
        &json!({"channel": "email", "reachable": true, "reason": null,
                "email": {"to": "ada@corp.io", "subject": "Hi Ada", "text": text,
                          "html": "<p>Ada Lovelace &amp; CC-12</p>"}})
    );
    let sms = channel(&preview, "sms");
    assert_eq!(sms["reachable"], true, "{sms}");
    assert_eq!(
        sms["sms"],
        json!({"to": "+33612345678", "text": text, "segments": 1, "encoding": "ucs2"})
    );
    let teams = channel(&preview, "teams");
    assert_eq!(teams["reachable"], true, "{teams}");
    let activity = teams["teams"]["activity"].clone();
    assert_eq!(
        activity["attachments"][0]["content"]["body"][1]["text"],
        text
    );

    // Grace: fallbacks; no phone, no bot; opted out of e-mail.
    let (status, preview) = app.get(&format!("{path}/preview?person_id={grace}")).await;
    assert_eq!(status, 200, "{preview}");
    let email = channel(&preview, "email");
    assert_eq!(email["reachable"], false);
    assert_eq!(email["reason"], "the person opted out of this channel");
    assert_eq!(
        email["email"]["text"],
        "Hello Grace colleague of the team (none) ł"
    );
    assert_eq!(
        channel(&preview, "sms")["reason"],
        "the person has no phone number"
    );
    assert_eq!(channel(&preview, "sms")["sms"]["to"], Value::Null);
    assert!(channel(&preview, "teams")["reason"]
        .as_str()
        .is_some_and(|r| r.contains("not installed the bot")));

    // The same template on its own, for any channel.
    let (status, by_template) = app
        .post(
            &format!("/v1/templates/{}/preview", template.as_str().expect("id")),
            &json!({"person_id": ada}),
        )
        .await;
    assert_eq!(status, 200, "{by_template}");
    assert_eq!(
        channel(&by_template, "teams")["teams"]["activity"],
        activity
    );

    // Sent: the simulator receives exactly the activity and the e-mail the preview showed.
    let (status, sent) = app.post(&format!("{path}/send"), &json!({})).await;
    assert_eq!(status, 200, "{sent}");
    let id: Uuid = sent["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    app.wait_for_completion(id, TIMEOUT).await;
    let teams = app.sim.recorder.messages_for(SimChannel::Teams);
    assert_eq!(teams.len(), 1, "only Ada has the bot");
    assert_eq!(teams[0].recipient, "a:conv-ada");
    assert_eq!(
        teams[0].raw, activity,
        "the activity posted is the preview's"
    );
    let mails = app.sim.recorder.messages_for(SimChannel::Email);
    assert_eq!(mails.len(), 1, "Grace opted out of e-mail");
    assert_eq!(mails[0].subject.as_deref(), Some("Hi Ada"));
    assert_eq!(mails[0].body.trim_end(), text);
    let sms = app.sim.recorder.messages_for(SimChannel::Sms);
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].body, text);

    // Broadcast: the preview renders the frozen message, not a later edit of the template.
    let (status, edited) = app
        .patch(
            &format!("/v1/templates/{}", template.as_str().expect("id")),
            &json!({"body": "Changed {{first_name}}"}),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    let (status, after) = app.get(&format!("{path}/preview?person_id={ada}")).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(channel(&after, "teams")["teams"]["activity"], activity);
    assert_ne!(after["template_id"], template, "the frozen copy");
    app.shutdown().await;
}

#[tokio::test]
async fn a_preview_needs_a_message_a_known_person_and_a_visible_campaign() {
    let app = TestApp::spawn_with(&[]).await;
    let (ada, _) = people(&app).await;
    let (_, audience) = app
        .post("/v1/audiences", &json!({"name": "a", "person_ids": [ada]}))
        .await;
    let (status, bare) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "bare", "status": "draft", "audience_id": audience["id"],
                    "channels": ["email"], "labels": ["finance"]}),
        )
        .await;
    assert_eq!(status, 201, "{bare}");
    let path = format!("/v1/campaigns/{}", bare["id"].as_str().expect("id"));

    let (status, body) = app.get(&format!("{path}/preview?person_id={ada}")).await;
    assert_eq!(status, 422, "no message yet: {body}");
    assert_eq!(body["error"]["details"][0]["field"], "template_id");

    let t = template(&app, json!({"name": "t", "body": "Hi {{first_name}}"})).await;
    let (status, _) = app.patch(&path, &json!({"template_id": t})).await;
    assert_eq!(status, 200);
    let (status, body) = app.get(&format!("{path}/preview")).await;
    assert_eq!(status, 422, "nobody named: {body}");
    let (status, body) = app
        .get(&format!("{path}/preview?person_id={}", Uuid::now_v7()))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .get(&format!("{path}/preview?email=nobody@corp.io"))
        .await;
    assert_eq!(status, 404, "{body}");
    sqlx::query("UPDATE people SET active = false WHERE id = $1")
        .bind(ada)
        .execute(app.env.store.pool())
        .await
        .expect("deactivate");
    let (status, body) = app.get(&format!("{path}/preview?person_id={ada}")).await;
    assert_eq!(status, 404, "a deactivated person: {body}");
    let (status, _) = app
        .get(&format!(
            "/v1/campaigns/{}/preview?person_id={ada}",
            Uuid::now_v7()
        ))
        .await;
    assert_eq!(status, 404);

    // Another label's caller sees no such campaign.
    let key = app
        .api_key_limited(pushfleet_api::identity::Role::Admin, &["hr"])
        .await;
    let r = TestApp::client(Some(&key))
        .get(format!("{}{path}/preview?person_id={ada}", app.api_url))
        .send()
        .await
        .expect("call");
    assert_eq!(r.status().as_u16(), 404);
    app.shutdown().await;
}
