//! A campaign's life (seed 001): a draft is edited freely, sent now or up to six days later;
//! once broadcast it answers 409 to a change, keeps the message it was sent with whatever
//! happens to its template, is cloned into a new draft, and leaves the list on delete with
//! its report kept.

use chrono::{Duration as ChronoDuration, Utc};
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn patch(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .patch(format!("{}{path}", app.api_url))
        .json(body)
        .send()
        .await
        .expect("PATCH");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app
        .http
        .delete(format!("{}{path}", app.api_url))
        .send()
        .await
        .expect("DELETE");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draft_is_edited_sent_and_then_only_read_cloned_or_removed() {
    let app =
        TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator, Service::EmailSender]).await;
    let (audience, template) = app.create_audience_and_template(3).await;

    // A draft may start without recipients or message.
    let (status, draft) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "welcome", "status": "draft", "channels": ["email"]}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["created_by"]["name"], "test admin", "{draft}");
    let id = draft["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/campaigns/{id}");

    // Sending it incomplete names what is missing.
    let (status, body) = app.post(&format!("{path}/send"), &json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"], "audience_id",
        "{body}"
    );

    let (status, edited) = patch(
        &app,
        &path,
        &json!({"name": "welcome aboard", "audience_id": audience, "template_id": template}),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["name"], "welcome aboard");
    assert_eq!(edited["audience_name"], "everyone");
    assert_eq!(edited["status"], "draft");

    // Send later: at most six days ahead.
    let too_late = Utc::now() + ChronoDuration::days(7);
    let (status, body) = app
        .post(&format!("{path}/send"), &json!({"start_at": too_late}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "start_at", "{body}");
    let later = Utc::now() + ChronoDuration::days(5);
    let (status, scheduled) = app
        .post(&format!("{path}/send"), &json!({"start_at": later}))
        .await;
    assert_eq!(status, 200, "{scheduled}");
    assert_eq!(scheduled["status"], "scheduled");
    // Still not broadcast: still editable, and sent now instead.
    let (status, _) = patch(&app, &path, &json!({"name": "welcome, all"})).await;
    assert_eq!(status, 200);
    let (status, sending) = app.post(&format!("{path}/send"), &json!({})).await;
    assert_eq!(status, 200, "{sending}");
    let view = app
        .wait_for_completion(id.parse().expect("uuid"), TIMEOUT)
        .await;
    assert_eq!(view["progress"]["by_state"]["sent"], 3, "{view}");
    assert!(view["message_frozen_at"].is_string(), "{view}");
    assert_eq!(
        view["template_id"], template,
        "the template chosen, not its copy"
    );

    // Broadcast: no change, whatever it is.
    for change in [
        json!({"name": "renamed"}),
        json!({"channels": ["sms"]}),
        json!({"template_id": template}),
    ] {
        let (status, body) = patch(&app, &path, &change).await;
        assert_eq!(status, 409, "{change}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not yet been broadcast")),
            "names the rule: {body}"
        );
    }
    let (status, _) = app.post(&format!("{path}/send"), &json!({})).await;
    assert_eq!(status, 409, "sent once");

    // Editing the template changes what a clone sends, not what was sent.
    let template_path = format!("/v1/templates/{}", template.as_str().expect("id"));
    let (status, body) = patch(
        &app,
        &template_path,
        &json!({"body": "Second edition for {{first_name}}."}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // What the broadcast campaign's sends (and any retry of them) read: the frozen copy.
    let frozen: String = sqlx::query_scalar(
        "SELECT t.body FROM campaigns c JOIN templates t ON t.id = c.template_id
         WHERE c.id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(app.env.store.pool())
    .await
    .expect("the campaign's message");
    assert_eq!(
        frozen,
        "Hello {{first_name}} {{last_name}}, welcome aboard."
    );
    let (status, copy) = app
        .post(&format!("{path}/clone"), &json!({"name": "welcome again"}))
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["status"], "draft");
    assert_eq!(copy["audience_id"], audience);
    assert_eq!(copy["template_id"], template);
    let copy_id = copy["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .post(&format!("/v1/campaigns/{copy_id}/send"), &json!({}))
        .await;
    assert_eq!(status, 200);
    app.wait_for_completion(copy_id.parse().expect("uuid"), TIMEOUT)
        .await;
    let bodies: Vec<String> = app
        .sim
        .recorder
        .messages_for(SimChannel::Email)
        .into_iter()
        .filter(|m| m.recipient == "person0@example.org")
        .map(|m| m.body.trim_end().to_owned())
        .collect();
    assert_eq!(
        bodies,
        [
            "Hello First0 Last0, welcome aboard.",
            "Second edition for First0."
        ],
        "the first campaign kept its message"
    );

    // Listed newest first, filtered; the seed's "Completed" tab.
    let (_, page) = app.get("/v1/campaigns?status=completed").await;
    let names: Vec<&str> = page["campaigns"]
        .as_array()
        .expect("campaigns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["welcome again", "welcome, all"], "{page}");
    let (_, page) = app.get("/v1/campaigns?q=AGAIN&channel=email").await;
    assert_eq!(
        page["campaigns"].as_array().map(Vec::len),
        Some(1),
        "{page}"
    );
    let (status, _) = app.get("/v1/campaigns?status=finished").await;
    assert_eq!(status, 422);

    // Deleting a broadcast campaign removes it from the list; its report stays.
    let (status, body) = delete(&app, &path).await;
    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "removed");
    let (_, page) = app.get("/v1/campaigns").await;
    assert_eq!(
        page["campaigns"].as_array().map(Vec::len),
        Some(1),
        "{page}"
    );
    let (status, kept) = app.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(kept["progress"]["by_state"]["sent"], 3, "{kept}");
    assert!(kept["deleted_at"].is_string());
    app.shutdown().await;
}

#[tokio::test]
async fn a_draft_or_scheduled_campaign_is_deleted_whole_and_pages_are_keyset() {
    let app = TestApp::spawn_with(&[]).await;
    let (audience, template) = app.create_audience_and_template(1).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (status, c) = app
            .post(
                "/v1/campaigns",
                &json!({"name": format!("c{i}"), "audience_id": audience,
                        "template_id": template, "channels": ["email"],
                        "start_at": Utc::now() + ChronoDuration::days(2)}),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        ids.push(c["id"].as_str().expect("id").to_owned());
    }
    let (_, first) = app.get("/v1/campaigns?limit=2").await;
    let before = first["next_before"].as_str().expect("a next page");
    let (_, second) = app
        .get(&format!("/v1/campaigns?limit=2&before={before}"))
        .await;
    let (_, third) = app
        .get(&format!(
            "/v1/campaigns?limit=2&before={}",
            second["next_before"].as_str().expect("a third page")
        ))
        .await;
    let listed: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["campaigns"].as_array().expect("campaigns").iter())
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(listed, ["c4", "c3", "c2", "c1", "c0"]);
    assert!(third["next_before"].is_null());

    let (status, body) = delete(&app, &format!("/v1/campaigns/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(body["outcome"], "deleted");
    let (status, _) = app.get(&format!("/v1/campaigns/{}", ids[0])).await;
    assert_eq!(status, 404, "a scheduled campaign is gone whole");
    // Scheduling more than six days ahead is refused at creation too.
    let (status, body) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "far", "audience_id": audience, "template_id": template,
                    "channels": ["email"], "start_at": Utc::now() + ChronoDuration::days(8)}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    app.shutdown().await;
}
