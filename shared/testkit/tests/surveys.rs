//! Survey campaigns (seed 001): a survey is made and checked, sent to people in Teams as an
//! Adaptive Card, answered through the bot's messaging endpoint (one answer per person, a
//! second submit replaces it, a wrong one is refused with a reply and stores nothing), and
//! reported per question and as CSV.

use pushfleet_loadtest::simulator::bot_identity::bot_token;
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::{eventually, TestApp, TEAMS_APP_ID};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

fn survey_body() -> Value {
    json!({
        "name": "Team offsite",
        "questions": [
            {"id": "venue", "prompt": "Where, {{first_name}}?", "kind": "single_choice", "required": true,
             "choices": [{"id": "lake", "label": "By the lake"}, {"id": "city", "label": "In the city"}]},
            {"id": "food", "prompt": "What should we eat?", "kind": "multiple_choice",
             "choices": [{"id": "veg", "label": "Vegetarian"}, {"id": "fish", "label": "Fish"},
                         {"id": "meat", "label": "Meat"}]},
            {"id": "mood", "prompt": "How do you feel about it?", "kind": "rating", "min": 1, "max": 5,
             "required": true},
            {"id": "notes", "prompt": "Anything else?", "kind": "free_text"}
        ]
    })
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

fn fields(err: &Value) -> Vec<String> {
    err["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["field"].as_str().map(str::to_owned))
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.env.store.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn surveys_are_checked_listed_read_and_changed() {
    let app = TestApp::spawn_with(&[]).await;
    let (status, survey) = app.post("/v1/surveys", &survey_body()).await;
    assert_eq!(status, 201, "{survey}");
    assert_eq!(survey["name"], "Team offsite");
    assert_eq!(survey["questions"][2]["max"], 5);
    assert_eq!(survey["created_by"]["name"], "test admin");
    assert!(survey["first_sent_at"].is_null());
    let id = survey["id"].as_str().expect("id").to_owned();

    // Every problem named by its field, nothing stored.
    let bad = json!({"name": " ", "questions": [
        {"id": "venue", "prompt": "Where?", "kind": "single_choice", "choices": [{"id": "a", "label": "A"}]},
        {"id": "venue", "prompt": "Rate", "kind": "rating", "min": 1, "max": 42},
        {"id": "survey_id", "prompt": "x", "kind": "free_text"},
        {"id": "why", "prompt": "Hi {{nickname}}", "kind": "free_text"}
    ]});
    let (status, err) = app.post("/v1/surveys", &bad).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(
        fields(&err),
        [
            "name",
            "questions[0].choices",
            "questions[1].id",
            "questions[1].max",
            "questions[2].id"
        ],
        "{err}"
    );
    // An unknown placeholder is found in the card the questions make.
    let mut unknown = survey_body();
    unknown["questions"][3]["prompt"] = json!("Hi {{nickname}}");
    let (status, err) = app.post("/v1/surveys", &unknown).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(fields(&err), ["questions"], "{err}");
    let mut too_many = survey_body();
    too_many["questions"] = (0..31)
        .map(|i| json!({"id": format!("q{i}"), "prompt": "p", "kind": "free_text"}))
        .collect();
    let (status, err) = app.post("/v1/surveys", &too_many).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(fields(&err), ["questions"], "{err}");
    let mut nul = survey_body();
    nul["questions"][0]["prompt"] = json!("a\u{0}b");
    let (status, _) = app.post("/v1/surveys", &nul).await;
    assert_eq!(status, 422);
    let (status, _) = app
        .post_raw("/v1/surveys", "application/json", "{\"name\": ")
        .await;
    assert_eq!(status, 400);
    assert_eq!(count(&app, "SELECT count(*) FROM surveys").await, 1);

    // Listed (keyset pages), read, changed while no campaign has sent it.
    let (status, second) = app
        .post(
            "/v1/surveys",
            &json!({"name": "Second", "questions": [{"id": "q", "prompt": "?", "kind": "free_text"}]}),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let (status, page) = app.get("/v1/surveys?limit=1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["surveys"][0]["name"], "Second");
    let next = page["next_before"].as_str().expect("a next page");
    let (_, page) = app.get(&format!("/v1/surveys?limit=1&before={next}")).await;
    assert_eq!(page["surveys"][0]["id"], id.as_str());
    assert!(page["next_before"].is_null());
    let (status, read) = app.get(&format!("/v1/surveys/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["questions"], survey["questions"]);
    let (status, changed) = patch(
        &app,
        &format!("/v1/surveys/{id}"),
        &json!({"name": "Offsite 2027"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Offsite 2027");
    assert_eq!(changed["questions"], survey["questions"]);
    let (status, _) = app.get(&format!("/v1/surveys/{}", Uuid::now_v7())).await;
    assert_eq!(status, 404);

    // A survey campaign is a Teams campaign with a survey and no template.
    let (_, people) = app.post("/v1/people", &app.demo_people(1)).await;
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "a", "person_ids": people["ids"]}),
        )
        .await;
    let (_, template) = app
        .post("/v1/templates", &json!({"name": "t", "body": "hello"}))
        .await;
    let campaign = |channels: Value, extra: Value| {
        let mut body = json!({"name": "c", "audience_id": audience["id"], "channels": channels});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let (status, err) = app
        .post(
            "/v1/campaigns",
            &campaign(json!(["email"]), json!({"survey_id": id})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(fields(&err), ["channels"], "{err}");
    let (status, err) = app
        .post(
            "/v1/campaigns",
            &campaign(
                json!(["teams", "sms"]),
                json!({"survey_id": id, "status": "draft"}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(fields(&err), ["channels"], "{err}");
    let (status, err) = app
        .post(
            "/v1/campaigns",
            &campaign(
                json!(["teams"]),
                json!({"survey_id": id, "template_id": template["id"]}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(fields(&err), ["survey_id"], "{err}");
    let (status, err) = app
        .post(
            "/v1/campaigns",
            &campaign(json!(["teams"]), json!({"survey_id": Uuid::now_v7()})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(fields(&err), ["survey_id"], "{err}");
    let (status, err) = app
        .post("/v1/campaigns", &campaign(json!(["teams"]), json!({})))
        .await;
    assert_eq!(status, 422, "{err}");
    // A draft may leave its message for later, then take a survey; a template replaces it.
    let (status, draft) = app
        .post(
            "/v1/campaigns",
            &campaign(json!(["teams"]), json!({"status": "draft"})),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let draft_id = draft["id"].as_str().expect("id");
    let (status, view) = patch(
        &app,
        &format!("/v1/campaigns/{draft_id}"),
        &json!({"survey_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["survey_id"], id.as_str());
    assert!(view["template_id"].is_null());
    let (status, err) = patch(
        &app,
        &format!("/v1/campaigns/{draft_id}"),
        &json!({"channels": ["email"]}),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    let (status, view) = patch(
        &app,
        &format!("/v1/campaigns/{draft_id}"),
        &json!({"template_id": template["id"], "channels": ["email"]}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert!(view["survey_id"].is_null());
    assert_eq!(view["template_id"], template["id"]);
    // A template campaign has no survey report.
    let (status, _) = app.get(&format!("/v1/campaigns/{draft_id}/survey")).await;
    assert_eq!(status, 404);
    app.shutdown().await;
}

fn activity(app: &TestApp, i: usize, id: &str, value: Value) -> Value {
    json!({
        "type": "message",
        "id": id,
        "channelId": "msteams",
        "serviceUrl": format!("{}/", app.sim.base_url()),
        "from": {"id": format!("29:teams-{i}"), "aadObjectId": format!("user-{i}")},
        "conversation": {"id": format!("a:conv-{i}")},
        "recipient": {"id": format!("28:{TEAMS_APP_ID}")},
        "value": value,
    })
}

async fn post_activity(app: &TestApp, activity: &Value) -> (u16, Value) {
    let token = bot_token(TEAMS_APP_ID, &format!("{}/", app.sim.base_url())).expect("sign a token");
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

/// What the card submits: its data merged with the inputs, as Teams does.
fn submit(campaign: &str, survey: &str, inputs: Value) -> Value {
    let mut value =
        json!({"action": "survey_answer", "campaign_id": campaign, "survey_id": survey});
    for (k, v) in inputs.as_object().expect("inputs") {
        value[k] = v.clone();
    }
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_survey_campaign_is_answered_through_the_bot_and_reported() {
    let app = TestApp::spawn().await;
    let (status, people) = app.post("/v1/people", &app.demo_people(4)).await;
    assert_eq!(status, 201, "{people}");
    let ids: Vec<Uuid> = serde_json::from_value(people["ids"].clone()).expect("ids");
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "team", "person_ids": &people["ids"].as_array().expect("ids")[..3]}),
        )
        .await;
    let (_, survey) = app.post("/v1/surveys", &survey_body()).await;
    let survey_id = survey["id"].as_str().expect("survey id").to_owned();
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "offsite poll", "audience_id": audience["id"], "survey_id": survey_id,
                    "channels": ["teams"]}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let campaign_id: Uuid = campaign["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let cid = campaign_id.to_string();
    let view = app.wait_for_completion(campaign_id, TIMEOUT).await;
    assert_eq!(view["survey_id"], survey_id.as_str());
    assert!(view["template_id"].is_null(), "{view}");

    // Each recipient got the card: one input per question, ids the question ids, and a
    // submit naming the survey and the campaign; prompts personalised.
    let received = app.sim.recorder.messages_for(SimChannel::Teams);
    assert_eq!(received.len(), 3);
    let card_of = |conv: &str| -> Value {
        let m = received
            .iter()
            .find(|m| m.recipient == conv)
            .expect("a card");
        serde_json::from_str(&m.body).expect("card JSON")
    };
    let card = card_of("a:conv-1");
    let inputs: Vec<(&str, &str)> = card["body"]
        .as_array()
        .expect("body")
        .iter()
        .filter_map(|e| Some((e["type"].as_str()?, e["id"].as_str()?)))
        .collect();
    assert_eq!(
        inputs,
        [
            ("Input.ChoiceSet", "venue"),
            ("Input.ChoiceSet", "food"),
            ("Input.ChoiceSet", "mood"),
            ("Input.Text", "notes")
        ]
    );
    assert_eq!(card["body"][1]["label"], "Where, First1?");
    assert_eq!(card["body"][2]["isMultiSelect"], true);
    assert_eq!(card["body"][3]["choices"][4]["value"], "5");
    assert_eq!(
        card["actions"][0]["data"],
        json!({"action": "survey_answer", "survey_id": survey_id, "campaign_id": cid})
    );

    // Sent: the survey is fixed now.
    let (status, err) = patch(
        &app,
        &format!("/v1/surveys/{survey_id}"),
        &json!({"name": "x"}),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("until a campaign has sent it"),
        "{err}"
    );

    // Person 0 answers, then changes their mind: one answer, the last.
    let first = submit(
        &cid,
        &survey_id,
        json!({"venue": "lake", "food": "veg", "mood": "2"}),
    );
    let (status, body) = post_activity(&app, &activity(&app, 0, "0:a", first)).await;
    assert_eq!(
        (status, body.clone()),
        (200, json!({"result": "answer_saved", "reply_queued": true})),
        "{body}"
    );
    let second = submit(
        &cid,
        &survey_id,
        json!({"venue": "city", "food": "meat,veg", "mood": "4", "notes": "=HYPERLINK(\"x\")"}),
    );
    let (status, body) = post_activity(&app, &activity(&app, 0, "0:b", second)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "answer_updated");
    let answers = |person: Uuid| {
        let pool = app.env.store.pool().clone();
        async move {
            sqlx::query_scalar::<_, Value>(
                "SELECT answers FROM survey_answers WHERE campaign_id = $1 AND person_id = $2",
            )
            .bind(campaign_id)
            .bind(person)
            .fetch_optional(&pool)
            .await
            .expect("answers")
        }
    };
    assert_eq!(
        answers(ids[0]).await,
        Some(
            json!({"venue": "city", "food": ["veg", "meat"], "mood": 4, "notes": "=HYPERLINK(\"x\")"})
        )
    );

    // Person 1: an unknown choice, then a missing required answer; nothing stored, each
    // gets a reply saying why. Then a good one.
    let wrong = submit(&cid, &survey_id, json!({"venue": "moon", "mood": "3"}));
    let (status, body) = post_activity(&app, &activity(&app, 1, "1:a", wrong)).await;
    assert_eq!(
        (status, body.clone()),
        (
            200,
            json!({"result": "answer_refused", "reply_queued": true})
        ),
        "{body}"
    );
    let missing = submit(&cid, &survey_id, json!({"venue": "lake", "mood": ""}));
    let (_, body) = post_activity(&app, &activity(&app, 1, "1:b", missing)).await;
    assert_eq!(body["result"], "answer_refused");
    let out_of_range = submit(&cid, &survey_id, json!({"venue": "lake", "mood": "9"}));
    let (_, body) = post_activity(&app, &activity(&app, 1, "1:c", out_of_range)).await;
    assert_eq!(body["result"], "answer_refused");
    assert_eq!(answers(ids[1]).await, None);

    // Person 2 through Action.Execute: the reply is in the invoke's response.
    let mut invoke = activity(&app, 2, "2:a", Value::Null);
    invoke["type"] = json!("invoke");
    invoke["name"] = json!("adaptiveCard/action");
    invoke["value"] = json!({"action": {"type": "Action.Execute", "verb": "survey",
        "data": submit(&cid, &survey_id, json!({"venue": "lake", "food": "fish,veg", "mood": "5", "notes": "see you"}))}});
    let (status, body) = post_activity(&app, &invoke).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], "Thanks, your answers are saved.");

    // Person 3 was not sent the survey; a stranger is not in the directory.
    let (_, body) = post_activity(
        &app,
        &activity(
            &app,
            3,
            "3:a",
            submit(&cid, &survey_id, json!({"venue": "lake", "mood": "1"})),
        ),
    )
    .await;
    assert_eq!(body["result"], "not_sent");
    let (_, body) = post_activity(
        &app,
        &activity(
            &app,
            9,
            "9:a",
            submit(&cid, &survey_id, json!({"venue": "lake", "mood": "1"})),
        ),
    )
    .await;
    assert_eq!(body["result"], "unknown_user");
    // The survey id must be the campaign's.
    let (status, _) = post_activity(
        &app,
        &activity(
            &app,
            0,
            "0:c",
            submit(&cid, &Uuid::now_v7().to_string(), json!({})),
        ),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(count(&app, "SELECT count(*) FROM survey_answers").await, 2);

    // Every message activity got its reply posted, once.
    let finished =
        "SELECT count(*) FROM bot_replies WHERE finished_at IS NOT NULL AND error IS NULL";
    eventually("the bot's replies posted", TIMEOUT, || async {
        (count(&app, finished).await == 7).then_some(())
    })
    .await;
    let replies: Vec<(String, String)> = app
        .sim
        .recorder
        .messages_for(SimChannel::Teams)
        .into_iter()
        .filter_map(|m| Some((m.raw["replyToId"].as_str()?.to_owned(), m.body)))
        .collect();
    let reply_to = |id: &str| {
        replies
            .iter()
            .filter(|(to, _)| to == id)
            .map(|(_, text)| text.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(reply_to("0:b"), ["Thanks, your answers are saved."]);
    assert_eq!(
        reply_to("1:a"),
        ["Your answers were not saved: \"moon\" is not one of the choices of \"Where, {{first_name}}?\". Please correct it and press Submit again."]
    );
    assert!(reply_to("1:b")[0].contains("\"How do you feel about it?\" needs an answer."));
    assert!(reply_to("1:c")[0].contains("from 1 to 5"));

    // The report: per question, counts; respondents against deliveries.
    let (status, report) = app.get(&format!("/v1/campaigns/{cid}/survey")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["respondents"], 2);
    assert_eq!(report["delivered"], 3);
    let q = &report["questions"];
    assert_eq!(q[0]["answered"], 2);
    assert_eq!(
        q[0]["choices"],
        json!([{"id": "lake", "label": "By the lake", "count": 1},
               {"id": "city", "label": "In the city", "count": 1}])
    );
    assert_eq!(q[1]["answered"], 2);
    assert_eq!(
        q[1]["choices"],
        json!([{"id": "veg", "label": "Vegetarian", "count": 2},
               {"id": "fish", "label": "Fish", "count": 1},
               {"id": "meat", "label": "Meat", "count": 1}])
    );
    assert_eq!(
        q[2]["ratings"],
        json!([{"value": 1, "count": 0}, {"value": 2, "count": 0}, {"value": 3, "count": 0},
               {"value": 4, "count": 1}, {"value": 5, "count": 1}])
    );
    assert_eq!(q[2]["average"], 4.5);
    assert_eq!(q[3]["kind"], "free_text");
    assert_eq!(q[3]["answered"], 2);
    assert!(q[3].get("choices").is_none());

    // The CSV: one row per respondent, choices by label, formulas defused.
    let r = app
        .http
        .get(format!("{}/v1/campaigns/{cid}/survey.csv", app.api_url))
        .send()
        .await
        .expect("CSV");
    assert_eq!(r.status().as_u16(), 200);
    let csv = r.text().await.expect("CSV text");
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(
        lines[0],
        "person_id,email,name,answered_at,venue,food,mood,notes"
    );
    let row_of = |person: Uuid| {
        lines
            .iter()
            .find(|l| l.starts_with(&person.to_string()))
            .copied()
            .unwrap_or_default()
    };
    let row0 = row_of(ids[0]);
    assert!(
        row0.contains(",person0@example.org,First0 Last0,"),
        "{row0}"
    );
    assert!(
        row0.ends_with(",In the city,Vegetarian; Meat,4,\"'=HYPERLINK(\"\"x\"\")\""),
        "{row0}"
    );
    let row2 = row_of(ids[2]);
    assert!(
        row2.ends_with(",By the lake,Vegetarian; Fish,5,see you"),
        "{row2}"
    );
    assert!(row_of(ids[1]).is_empty(), "a refused answer is no row");

    // A clone is a new draft with the same survey; the report of a campaign is its own.
    let (status, copy) = app
        .post(
            &format!("/v1/campaigns/{cid}/clone"),
            &json!({"name": "again"}),
        )
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["survey_id"], survey_id.as_str());
    assert!(copy["template_id"].is_null());
    let (_, report) = app
        .get(&format!(
            "/v1/campaigns/{}/survey",
            copy["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(report["respondents"], 0);
    app.shutdown().await;
}
