//! Dynamic audiences through the api: criteria checked when saved, the preview of who
//! matches now, snapshots that later directory changes do not move, and a campaign that
//! freezes its audience at evaluation and skips opted-out channels.

use pushfleet_domain::Channel;
use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

async fn import_csv(app: &TestApp, csv: &str) -> Value {
    let (status, report) = app.post_raw("/v1/people/import", "text/csv", csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    report
}

/// 4 engineers (2 joined recently), 3 in sales, one trainer in marketing, a chain of managers.
const DIRECTORY: &str =
    "external_id,email,first_name,department,job_title,roles,joining_date,manager,phone
M0,boss@corp.io,Boss,Board,CEO,,2015-01-01,,+15550000000
E1,e1@corp.io,Eve,Engineering,Junior developer,,JOINED_RECENTLY,E2,+15550000001
E2,e2@corp.io,Ed,Engineering,Lead,admin,2019-05-01,M0,+15550000002
E3,e3@corp.io,Ela,engineering,Trainee,,JOINED_RECENTLY,E2,+15550000003
E4,e4@corp.io,Eli,Engineering,Senior developer,,2018-01-01,E2,+15550000004
S1,s1@corp.io,Sam,Sales,Junior seller,,2021-01-01,M0,+15550000005
S2,s2@corp.io,Sue,Sales,Seller,,2022-01-01,S1,+15550000006
S3,s3@corp.io,Sid,Sales,Seller,,2023-01-01,S1,+15550000007
K1,k1@corp.io,Kim,Marketing,Coordinator,trainer,2020-01-01,M0,+15550000008
";

fn directory() -> String {
    let recent = (chrono::Utc::now().date_naive() - chrono::Duration::days(30)).to_string();
    DIRECTORY.replace("JOINED_RECENTLY", &recent)
}

/// Seed 000's two examples, OR-ed: new engineers, or juniors and trainees by title; plus
/// anyone with the trainer role.
fn seed_criteria() -> Value {
    json!({"any": [
        {"all": [
            {"property": "department", "op": "equals", "value": "ENGINEERING"},
            {"property": "joining_date", "op": "within_last", "value": {"months": 6}}
        ]},
        {"any": [
            {"property": "job_title", "op": "contains", "value": "junior"},
            {"property": "job_title", "op": "contains", "value": "trainee"}
        ]},
        {"property": "roles", "op": "has_role", "value": "trainer"}
    ]})
}

fn emails(people: &Value) -> Vec<String> {
    let mut v: Vec<String> = people
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["email"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn criteria_are_checked_when_saved() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    import_csv(&app, &directory()).await;
    let (status, body) = app
        .post(
            "/v1/audiences",
            &json!({"name": "bad", "criteria": {"all": [
                {"property": "favourite_colour", "op": "equals", "value": "blue"},
                {"property": "joining_date", "op": "starts_with", "value": "2020"},
                {"property": "manager", "op": "reports_to", "value": "nobody@corp.io"},
                {"property": "segment", "op": "member_of", "value": Uuid::now_v7()}
            ]}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let details = body["error"]["details"].as_array().expect("details");
    assert_eq!(details[0]["field"], "criteria.all[0].property", "{body}");
    assert!(details[0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("unknown property \"favourite_colour\""));
    assert_eq!(details[1]["field"], "criteria.all[1].op", "{body}");
    // Shape errors come first; references are checked once the shape is right.
    let (status, body) = app
        .post(
            "/v1/audiences",
            &json!({"name": "bad refs", "criteria": {"any": [
                {"property": "manager", "op": "reports_to", "value": "nobody@corp.io"},
                {"property": "segment", "op": "member_of", "value": Uuid::now_v7()}
            ]}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/v1/audiences",
            &json!({"name": "both", "criteria": seed_criteria(), "person_ids": []}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audiences")
        .fetch_one(app.env.store.pool())
        .await
        .expect("count");
    assert_eq!(count, 0, "nothing saved");
}

#[tokio::test]
async fn preview_then_snapshot_then_the_directory_moves_on() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    import_csv(&app, &directory()).await;
    let (status, preview) = app
        .post(
            "/v1/audiences/preview",
            &json!({"criteria": seed_criteria(), "limit": 2}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["count"], 4,
        "e1, e3 (new engineers), s1 (junior), k1 (trainer): {preview}"
    );
    assert_eq!(preview["people"].as_array().map(Vec::len), Some(2));
    let (status, page2) = app
        .post(
            "/v1/audiences/preview",
            &json!({"criteria": seed_criteria(), "limit": 2, "after": preview["next_after"]}),
        )
        .await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(page2["people"].as_array().map(Vec::len), Some(2));
    assert!(page2["next_after"].is_null(), "4 people, 2 pages: {page2}");

    // Everyone under Ed, through the chain, found by e-mail.
    let (status, under_ed) = app
        .post(
            "/v1/audiences/preview",
            &json!({"criteria": {"property": "manager", "op": "reports_to", "value": "E2@corp.io"}}),
        )
        .await;
    assert_eq!(status, 200, "{under_ed}");
    assert_eq!(
        emails(&under_ed["people"]),
        vec!["e1@corp.io", "e3@corp.io", "e4@corp.io"]
    );

    let (status, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "new and junior", "criteria": seed_criteria()}),
        )
        .await;
    assert_eq!(status, 201, "{audience}");
    assert_eq!(audience["kind"], "dynamic");
    let id = audience["id"].as_str().expect("id").to_owned();
    let (status, snapshot) = app
        .post(&format!("/v1/audiences/{id}/snapshots"), &json!({}))
        .await;
    assert_eq!(status, 201, "{snapshot}");
    assert_eq!(snapshot["member_count"], 4);

    // The directory changes: a new trainer, a junior deactivated.
    import_csv(&app, "external_id,email,roles\nT9,t9@corp.io,trainer\n").await;
    import_csv(&app, "external_id,active\nS1,false\n").await;
    let (_, now) = app.get(&format!("/v1/audiences/{id}/preview")).await;
    let now_emails = emails(&now["people"]);
    assert!(
        now_emails.contains(&"t9@corp.io".to_owned())
            && !now_emails.contains(&"s1@corp.io".to_owned()),
        "{now}"
    );
    let (status, frozen) = app
        .get(&format!(
            "/v1/snapshots/{}?limit=100",
            snapshot["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, 200, "{frozen}");
    assert_eq!(
        emails(&frozen["people"]),
        vec!["e1@corp.io", "e3@corp.io", "k1@corp.io", "s1@corp.io"],
        "who got it does not move: {frozen}"
    );
}

#[tokio::test]
async fn a_campaign_freezes_its_dynamic_audience_and_skips_opted_out_channels() {
    let app = TestApp::spawn_with(&[
        Service::Api,
        Service::Scheduler,
        Service::Evaluator,
        Service::SmsSender,
    ])
    .await;
    import_csv(&app, &directory()).await;
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "engineering", "criteria": {"property": "department", "op": "equals", "value": "engineering"}}),
        )
        .await;
    // Ela replied STOP earlier: her SMS is skipped, not sent and not failed.
    sqlx::query(
        "INSERT INTO channel_opt_outs (person_id, channel, source)
         SELECT id, 'sms', 'test' FROM people WHERE external_id = 'E3'",
    )
    .execute(app.env.store.pool())
    .await
    .expect("opt out");
    let (status, template) = app
        .post(
            "/v1/templates",
            &json!({"name": "t", "body": "Hi {{first_name}}"}),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    let campaign = app
        .create_campaign_from(
            audience["id"].clone(),
            template["id"].clone(),
            &[Channel::Sms],
        )
        .await;
    let done = app
        .wait_for_completion(campaign, Duration::from_secs(30))
        .await;
    assert_eq!(done["progress"]["by_state"]["sent"], 3, "{done}");
    assert_eq!(done["progress"]["by_state"]["skipped"], 1, "{done}");
    let skipped: (String, Option<String>) = sqlx::query_as(
        "SELECT p.external_id, d.last_error FROM deliveries d JOIN people p ON p.id = d.person_id
         WHERE d.state = 'skipped'",
    )
    .fetch_one(app.env.store.pool())
    .await
    .expect("skipped row");
    assert_eq!(
        skipped,
        ("E3".to_owned(), Some("opted out of sms".to_owned()))
    );
    assert_eq!(
        app.sim.recorder.stats().sms.unique,
        3,
        "the simulator saw exactly the three sends"
    );
    // The campaign kept the snapshot it sent to.
    let snapshot: Option<Uuid> =
        sqlx::query_scalar("SELECT snapshot_id FROM campaigns WHERE id = $1")
            .bind(campaign)
            .fetch_one(app.env.store.pool())
            .await
            .expect("campaign");
    assert!(snapshot.is_some());
}

#[tokio::test]
async fn an_opt_out_after_evaluation_is_honoured_by_the_publish() {
    // The api alone: this test plays the evaluator's part through the store.
    let app = TestApp::spawn_with(&[Service::Api]).await;
    import_csv(&app, &directory()).await;
    let (_, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "sales", "criteria": {"property": "department", "op": "equals", "value": "sales"}}),
        )
        .await;
    let (_, template) = app
        .post("/v1/templates", &json!({"name": "t", "body": "Hi"}))
        .await;
    let campaign = app
        .create_campaign_from(
            audience["id"].clone(),
            template["id"].clone(),
            &[Channel::Sms, Channel::Email],
        )
        .await;
    let store = &app.env.store;
    let expansion = store.expand_campaign(campaign).await.expect("expand");
    assert_eq!((expansion.inserted, expansion.skipped), (6, 0));
    // After evaluation, before publishing: Sue replies STOP, Sid is deactivated.
    sqlx::query(
        "INSERT INTO channel_opt_outs (person_id, channel, source)
         SELECT id, 'sms', 'test' FROM people WHERE external_id = 'S2'",
    )
    .execute(store.pool())
    .await
    .expect("opt out");
    import_csv(&app, "external_id,active\nS3,false\n").await;
    let batch = store
        .claim_unpublished(campaign, 0, 100, false)
        .await
        .expect("claim");
    assert_eq!(batch.jobs.len(), 3, "Sam twice, Sue by e-mail");
    assert_eq!(batch.skipped.len(), 3, "Sue's SMS, both of Sid's");
    batch.mark_published().await.expect("commit");
    let states: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT p.external_id, d.channel || ':' || d.state, d.last_error
         FROM deliveries d JOIN people p ON p.id = d.person_id
         WHERE d.state = 'skipped' ORDER BY 1, 2",
    )
    .fetch_all(store.pool())
    .await
    .expect("states");
    assert_eq!(
        states,
        vec![
            (
                "S2".into(),
                "sms:skipped".into(),
                Some("opted out of sms".into())
            ),
            (
                "S3".into(),
                "email:skipped".into(),
                Some("the recipient was deactivated".into())
            ),
            (
                "S3".into(),
                "sms:skipped".into(),
                Some("the recipient was deactivated".into())
            ),
        ]
    );
}
