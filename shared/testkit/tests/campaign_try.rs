//! Try (seed 001): the campaign's message now, to one person given by e-mail, on the
//! channels they can receive; refused with the reason when none (Teams: no bot installed);
//! kept out of the campaign's list and report.

use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::{Service, TestApp};
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_try_reaches_one_person_on_what_they_can_receive_and_counts_nowhere() {
    let app =
        TestApp::spawn_with(&[Service::Scheduler, Service::Evaluator, Service::EmailSender]).await;
    let (audience, template) = app.create_audience_and_template(3).await;
    // Ada has an e-mail address and no bot; Bob no e-mail address.
    let (status, people) = app
        .post(
            "/v1/people",
            &json!({"people": [
                {"email": "Ada@Example.org", "first_name": "Ada", "last_name": "Lovelace"},
                {"first_name": "Bob", "phone": "+33612345678"}]}),
        )
        .await;
    assert_eq!(status, 201, "{people}");
    let (status, draft) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "launch", "status": "draft", "audience_id": audience,
                    "template_id": template, "channels": ["email", "teams"]}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let path = format!("/v1/campaigns/{}", draft["id"].as_str().expect("id"));

    let (status, tried) = app
        .post(&format!("{path}/try"), &json!({"email": "ada@example.org"}))
        .await;
    assert_eq!(status, 202, "{tried}");
    assert_eq!(tried["try"]["channels"], json!(["email"]), "{tried}");
    assert_eq!(tried["unreachable"][0]["channel"], "teams");
    assert!(tried["unreachable"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("bot")));
    let try_id = tried["try"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let done = app.wait_for_completion(try_id, TIMEOUT).await;
    assert_eq!(done["progress"]["by_state"]["sent"], 1, "{done}");
    let got: Vec<(String, String)> = app
        .sim
        .recorder
        .messages_for(SimChannel::Email)
        .into_iter()
        .map(|m| (m.recipient, m.body.trim_end().to_owned()))
        .collect();
    assert_eq!(
        got,
        [(
            // As stored: the domain lowercased, the local part kept.
            "Ada@example.org".to_owned(),
            "Hello Ada Lovelace, welcome aboard.".to_owned()
        )]
    );

    // Not in the campaign's report, nor in the list; the draft is still a draft.
    let (_, view) = app.get(&path).await;
    assert_eq!(view["status"], "draft");
    assert_eq!(view["progress"]["total"], 0, "{view}");
    let (_, page) = app.get("/v1/campaigns").await;
    assert_eq!(
        page["campaigns"].as_array().map(Vec::len),
        Some(1),
        "{page}"
    );

    // Refusals name why.
    let (status, body) = app
        .post(
            &format!("{path}/try"),
            &json!({"email": "nobody@example.org"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "email");
    let (status, teams_only) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "teams", "status": "draft", "audience_id": audience,
                    "template_id": template, "channels": ["teams"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .post(
            &format!(
                "/v1/campaigns/{}/try",
                teams_only["id"].as_str().expect("id")
            ),
            &json!({"email": "ada@example.org"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"], "channels.teams",
        "{body}"
    );
    assert!(body["error"]["details"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("not installed the bot")));
    app.shutdown().await;
}

#[tokio::test]
async fn the_recipients_are_counted_per_channel_before_sending_with_why_some_are_not() {
    let app = TestApp::spawn_with(&[]).await;
    let (audience, template) = app.create_audience_and_template(4).await;
    let pool = app.env.store.pool();
    // person0 has no phone; person1 opted out of e-mail; person2 has no Teams bot; person3
    // was deactivated (not a recipient at all).
    for statement in [
        "UPDATE people SET phone = NULL WHERE email = 'person0@example.org'",
        "INSERT INTO channel_opt_outs (person_id, channel, source)
         SELECT id, 'email', 'test' FROM people WHERE email = 'person1@example.org'",
        "UPDATE people SET teams_conversation = NULL WHERE email = 'person2@example.org'",
        "UPDATE people SET active = false WHERE email = 'person3@example.org'",
    ] {
        sqlx::query(statement).execute(pool).await.expect(statement);
    }
    let (status, draft) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "reach", "status": "draft", "audience_id": audience,
                    "template_id": template, "channels": ["email", "sms", "teams"]}),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let (status, reach) = app
        .get(&format!(
            "/v1/campaigns/{}/recipients",
            draft["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, 200, "{reach}");
    assert_eq!(
        reach,
        json!({"recipients": 3, "channels": [
            {"channel": "email", "reachable": 2, "no_address": 0, "opted_out": 1},
            {"channel": "teams", "reachable": 2, "no_address": 1, "opted_out": 0},
            {"channel": "sms", "reachable": 2, "no_address": 1, "opted_out": 0},
        ]})
    );
    // A draft without recipients says so.
    let (_, bare) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "bare", "status": "draft", "channels": ["email"]}),
        )
        .await;
    let (status, body) = app
        .get(&format!(
            "/v1/campaigns/{}/recipients",
            bare["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, 422, "{body}");
    app.shutdown().await;
}
