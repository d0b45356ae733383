//! A person known to Teams only by user and tenant id: the first send creates the 1:1
//! conversation (`POST /v3/conversations`), stores it on the person, and later sends use it.

use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::TestApp;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_send_creates_the_conversation_and_later_sends_reuse_it() {
    let app = TestApp::spawn().await;
    let people: Vec<_> = (0..3)
        .map(|i| {
            json!({"first_name": format!("New{i}"), "email": format!("new{i}@example.org"),
                   "teams": {"service_url": format!("{}/", app.sim.base_url()),
                             "user_id": format!("aad-{i}"), "tenant_id": "tenant-1"}})
        })
        .collect();
    let (status, created) = app.post("/v1/people", &json!({ "people": people })).await;
    assert_eq!(status, 201, "{created}");
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "new", "person_ids": created["ids"]}),
        )
        .await;
    let (_, template) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "Welcome {{first_name}}"}),
        )
        .await;
    let campaign = || async {
        let (status, c) = app
            .post(
                "/v1/campaigns",
                &json!({"name": "c", "audience_id": audience["id"], "template_id": template["id"],
                        "channels": ["teams"]}),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_str().and_then(|s| s.parse().ok()).expect("id");
        app.wait_for_completion(id, Duration::from_secs(30)).await
    };

    let view = campaign().await;
    assert_eq!(view["progress"]["by_state"]["sent"], 3, "{view}");
    let mut stored = Vec::new();
    for id in created["ids"].as_array().cloned().unwrap_or_default() {
        let (_, person) = app
            .get(&format!("/v1/people/{}", id.as_str().unwrap_or_default()))
            .await;
        let conversation = person["teams"]["conversation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("conversation stored on {person}"))
            .to_owned();
        stored.push(conversation);
    }
    let mut received: Vec<String> = app
        .sim
        .recorder
        .messages_for(SimChannel::Teams)
        .into_iter()
        .map(|m| m.recipient)
        .collect();
    received.sort();
    stored.sort();
    assert_eq!(
        received, stored,
        "each message went to the created conversation"
    );

    // A second campaign sends to the stored conversations.
    let view = campaign().await;
    assert_eq!(view["progress"]["by_state"]["sent"], 3, "{view}");
    let stats = app.sim.recorder.stats();
    assert_eq!((stats.teams.unique, stats.teams.duplicates), (6, 0));
    app.shutdown().await;
}

#[tokio::test]
async fn a_teams_reference_must_say_how_to_reach_the_user() {
    let app = TestApp::spawn_with(&[]).await;
    let (status, body) = app
        .post(
            "/v1/people",
            &json!({"people": [{"first_name": "X", "teams": {"service_url": "https://smba.example/", "user_id": "aad-1"}}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"],
        "people[0].teams.conversation_id"
    );
    app.shutdown().await;
}
