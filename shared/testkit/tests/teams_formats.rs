//! Seed 001's Teams message formats reach the Bot Framework as Adaptive Card attachments,
//! personalised per recipient.

use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::TestApp;
use serde_json::{json, Value};
use std::time::Duration;

async fn campaign_with(app: &TestApp, people: &Value, template: Value) -> uuid::Uuid {
    let (status, t) = app.post("/v1/templates", &template).await;
    assert_eq!(status, 201, "{t}");
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "a", "person_ids": people["ids"]}),
        )
        .await;
    let (status, c) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "cards", "audience_id": audience["id"], "template_id": t["id"],
                    "channels": ["teams"]}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adaptive_cards_and_styled_formats_arrive_personalised() {
    let app = TestApp::spawn().await;
    let (_, people) = app.post("/v1/people", &app.demo_people(3)).await;

    let card = json!({
        "type": "AdaptiveCard", "version": "1.5",
        "body": [{"type": "TextBlock", "text": "Hello {{first_name}}!", "wrap": true}],
        "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://intranet.test/{{email}}"}]
    });
    let id = campaign_with(
        &app,
        &people,
        json!({"name": "card", "body": "Hello {{first_name}}", "teams_format": "adaptive_card", "card": card}),
    )
    .await;
    app.wait_for_completion(id, Duration::from_secs(30)).await;

    let received = app.sim.recorder.messages_for(SimChannel::Teams);
    assert_eq!(received.len(), 3);
    for i in 0..3 {
        let m = received
            .iter()
            .find(|m| m.recipient == format!("a:conv-{i}"))
            .expect("one card per conversation");
        let card: Value = serde_json::from_str(&m.body).expect("the card JSON");
        assert_eq!(card["body"][0]["text"], format!("Hello First{i}!"));
        assert_eq!(
            card["actions"][0]["url"],
            format!("https://intranet.test/person{i}@example.org")
        );
    }

    app.sim.recorder.reset();
    let id = campaign_with(
        &app,
        &people,
        json!({"name": "deadline", "body": "{{first_name}}, the deadline is Friday.", "teams_format": "important"}),
    )
    .await;
    app.wait_for_completion(id, Duration::from_secs(30)).await;
    let received = app.sim.recorder.messages_for(SimChannel::Teams);
    assert_eq!(received.len(), 3);
    for m in received {
        let card: Value = serde_json::from_str(&m.body).expect("a card");
        assert_eq!(card["body"][0]["style"], "attention");
        assert!(card["body"][1]["text"]
            .as_str()
            .unwrap_or_default()
            .ends_with("the deadline is Friday."));
    }
    app.shutdown().await;
}

/// The hardening issue: a card without `version` was stored, then every send got a 400 from
/// the Bot Framework. It is now refused when saved, naming the path, and nothing is stored;
/// each problem of a card is a detail of its own.
#[tokio::test]
async fn a_card_teams_would_refuse_is_refused_when_saved_naming_the_path() {
    let app = TestApp::spawn_with(&[]).await;
    let templates = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM templates")
            .fetch_one(app.env.store.pool())
            .await
            .expect("count templates")
    };
    let card = json!({"type": "AdaptiveCard",
        "body": [{"type": "TextBlock", "text": "Hello {{first_name}}"}]});
    let (status, err) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "x", "teams_format": "adaptive_card", "card": card}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "validation_failed");
    assert_eq!(
        err["error"]["details"],
        json!([{"field": "card.version", "message": "is required"}])
    );
    assert_eq!(templates().await, 0);

    let card = json!({"type": "AdaptiveCard", "version": "1.6",
        "body": [{"type": "TextBlock"}, {"type": "Input.Text", "id": "q"},
                 {"type": "Input.Number", "id": "q"}],
        "actions": [{"type": "Action.Http"}]});
    let (status, err) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "x", "teams_format": "adaptive_card", "card": card}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    let fields: Vec<&str> = err["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "card.version",
            "card.body[0].text",
            "card.body[2].id",
            "card.actions[0].type"
        ],
        "{err}"
    );
    assert_eq!(templates().await, 0);

    // With a version and the rest in order, the same card is stored.
    let card = json!({"type": "AdaptiveCard", "version": "1.5",
        "body": [{"type": "TextBlock", "text": "Hello {{first_name}}"}]});
    let (status, t) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "x", "teams_format": "adaptive_card", "card": card}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(templates().await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn card_mistakes_are_refused_when_the_template_is_saved() {
    let app = TestApp::spawn_with(&[]).await;
    for (body, needle) in [
        (
            json!({"name": "t", "body": "x", "teams_format": "adaptive_card"}),
            "needs a card",
        ),
        (
            json!({"name": "t", "body": "x", "teams_format": "adaptive_card", "card": {"type": "Poster"}}),
            "AdaptiveCard",
        ),
        (
            json!({"name": "t", "body": "x", "teams_format": "adaptive_card",
                "card": {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "{{nickname}}"}]}}),
            "nickname",
        ),
        (
            json!({"name": "t", "body": "x", "teams_format": "idea", "card": {"type": "AdaptiveCard"}}),
            "only used",
        ),
    ] {
        let (status, err) = app.post("/v1/templates", &body).await;
        assert_eq!(status, 422, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{err}"
        );
    }
    let (status, err) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "x", "teams_format": "poster"}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    app.shutdown().await;
}
