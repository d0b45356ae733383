//! Personalisation through the whole fleet (issue 13, seed 001): directory properties,
//! custom attributes, the seed's bracket placeholders and fallbacks, from the import to the
//! e-mail the provider receives.

use pushfleet_domain::Channel;
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::TestApp;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_fills_directory_properties_brackets_and_fallbacks() {
    let app = TestApp::spawn().await;
    // POST /v1/people takes names and addresses only; the directory's properties come in
    // through the import. Grace has no last name and no joining date.
    let (status, report) = app
        .post(
            "/v1/people/import",
            &json!({"people": [
                {"external_id": "E1", "email": "ada@corp.io", "first_name": "Ada",
                 "last_name": "Lovelace", "department": "Engineering",
                 "joining_date": "2026-03-01", "attributes": {"cost_center": "CC-12"}},
                {"external_id": "E2", "email": "grace@corp.io", "first_name": "Grace",
                 "department": "R&D <labs>", "attributes": {"cost_center": "CC-7"}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM people ORDER BY external_id")
        .fetch_all(app.env.store.pool())
        .await
        .expect("people");
    let (status, audience) = app
        .post("/v1/audiences", &json!({"name": "both", "person_ids": ids}))
        .await;
    assert_eq!(status, 201, "{audience}");

    // An unknown name is refused when the template is saved, naming what is known.
    let (status, refused) = app
        .post(
            "/v1/templates",
            &json!({"name": "bad", "body": "Hi {{nickname | \"you\"}}"}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused.to_string().contains("attributes.<key>"),
        "{refused}"
    );

    let (status, template) = app
        .post(
            "/v1/templates",
            &json!({
                "name": "seed 001",
                "subject": "[draft] Hello, [FIRSTNAME] +[LASTNAME]",
                "body": "Hello, [FIRSTNAME] {{last_name | \"colleague\"}} of {{department}} \
                         ({{attributes.cost_center}}), with us since {{joining_date | 'today'}}.",
                "html": "<p>{{department}}, {{ last_name|'colleague' }}</p>",
            }),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    let campaign = app
        .create_campaign_from(
            audience["id"].clone(),
            template["id"].clone(),
            &[Channel::Email],
        )
        .await;
    let view = app.wait_for_completion(campaign, TIMEOUT).await;
    assert_eq!(view["progress"]["by_state"]["sent"], 2, "{view}");

    let email = app.sim.recorder.messages_for(SimChannel::Email);
    let by: BTreeMap<&str, _> = email.iter().map(|m| (m.recipient.as_str(), m)).collect();
    assert_eq!(by.len(), 2, "{email:?}");
    let ada = by["ada@corp.io"];
    assert_eq!(ada.subject.as_deref(), Some("[draft] Hello, Ada +Lovelace"));
    assert_eq!(
        ada.body.trim_end(),
        "Hello, Ada Lovelace of Engineering (CC-12), with us since 2026-03-01."
    );
    // The HTML part ends with the open pixel (tests/tracking.rs).
    let html = |m: &pushfleet_loadtest::simulator::ReceivedMessage| {
        let html = m.raw["html"].as_str().unwrap_or_default().to_owned();
        html.split("<img src=")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(html(ada), "<p>Engineering, Lovelace</p>");
    let grace = by["grace@corp.io"];
    assert_eq!(grace.subject.as_deref(), Some("[draft] Hello, Grace +"));
    assert_eq!(
        grace.body.trim_end(),
        "Hello, Grace colleague of R&D <labs> (CC-7), with us since today."
    );
    assert_eq!(html(grace), "<p>R&amp;D &lt;labs&gt;, colleague</p>");
    app.shutdown().await;
}
