//! Conversation pushes (seed 000), the model and its API: templates that may or may not be
//! pushed, fixed and dynamic lists and the locked method, the preview, users added by hand,
//! the users tab with every team leader and coach, follow-up in bulk, close, labels.

use pushfleet_api::identity::Role;
use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};

async fn api_only() -> TestApp {
    TestApp::spawn_with(&[Service::Api]).await
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn in_days(n: u64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(n)).to_string()
}

async fn template(app: &TestApp, may_be_pushed: bool, conducted_by: &str) -> String {
    let (status, t) = app
        .post(
            "/v1/conversation-templates",
            &json!({"name": "Check-in", "may_be_pushed": may_be_pushed,
                    "conducted_by": conducted_by,
                    "questions": [{"id": "how", "text": "How are you?"},
                                  {"id": "next", "text": "What next?"}]}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    t["id"].as_str().expect("id").to_owned()
}

/// People made through the import, with relations: Dev has two team leaders (Lea, Tom) and
/// a coach (Cat); Mia works in Sales.
async fn directory(app: &TestApp) -> Value {
    let csv = "External ID,E-mail,First Name,Last name,Department,Team leaders,Coaches\r\n\
        L1,lea@corp.io,Lea,Lead,Engineering,,\r\n\
        L2,tom@corp.io,Tom,Lead,Engineering,,\r\n\
        C1,cat@corp.io,Cat,Coach,HR,,\r\n\
        D1,dev@corp.io,Dev,Jones,Engineering,L1;L2,C1\r\n\
        M1,mia@corp.io,Mia,Sales,Sales,L1,\r\n";
    let r = app
        .http
        .post(format!("{}/v1/people/import", app.api_url))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let mut ids = serde_json::Map::new();
    for key in ["L1", "L2", "C1", "D1", "M1"] {
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM people WHERE external_id = $1")
            .bind(key)
            .fetch_one(app.env.store.pool())
            .await
            .expect("person");
        ids.insert(key.into(), json!(id));
    }
    Value::Object(ids)
}

/// Starts a push as the scheduler will in the next part (status only: no freeze here).
async fn mark_started(app: &TestApp, push: &str) {
    sqlx::query(
        "UPDATE pushes SET status = 'started', started_at = now() WHERE id = $1::text::uuid",
    )
    .bind(push)
    .execute(app.env.store.pool())
    .await
    .expect("start");
}

#[tokio::test]
async fn a_template_that_may_not_be_pushed_is_refused_and_dates_are_checked() {
    let app = api_only().await;
    let people = directory(&app).await;
    let closed = template(&app, false, "both").await;
    let body = json!({"template_id": closed, "name": "Q1", "start_date": today(),
                      "deadline": in_days(14), "person_ids": [people["D1"]]});
    let (status, e) = app.post("/v1/pushes", &body).await;
    assert_eq!(status, 422, "{e}");
    assert!(e.to_string().contains("may not be pushed"), "{e}");

    let open = template(&app, true, "both").await;
    for (start, deadline, field) in [
        ("2020-01-01".to_owned(), in_days(3), "start_date"),
        (in_days(10), in_days(3), "deadline"),
        (in_days(1), "9999-12-31".to_owned(), "deadline"),
    ] {
        let (status, e) = app
            .post(
                "/v1/pushes",
                &json!({"template_id": open, "name": "Q1", "start_date": start,
                        "deadline": deadline, "person_ids": []}),
            )
            .await;
        assert_eq!(status, 422, "{start} {deadline}: {e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    // NUL, unknown fields, a bad date, a bad enum: 4xx JSON, never a 500.
    for bad in [
        json!({"template_id": open, "name": "a\u{0}b", "start_date": today(), "deadline": today(), "person_ids": []}),
        json!({"template_id": open, "name": "x", "start_date": today(), "deadline": today(), "person_ids": [], "extra": 1}),
        json!({"template_id": open, "name": "x", "start_date": "2026-02-30", "deadline": today(), "person_ids": []}),
        json!({"template_id": open, "name": "x", "start_date": "+10000-01-01", "deadline": today(), "person_ids": []}),
    ] {
        let (status, e) = app.post("/v1/pushes", &bad).await;
        assert!((400..500).contains(&status), "{bad}: {status} {e}");
        assert!(e["error"]["code"].is_string(), "{e}");
    }
    let (status, e) = app
        .post(
            "/v1/conversation-templates",
            &json!({"name": "x", "conducted_by": "managers", "questions": [{"id": "a", "text": "?"}]}),
        )
        .await;
    assert!((400..500).contains(&status), "{e}");
    let (status, e) = app
        .post(
            "/v1/conversation-templates",
            &json!({"name": "x", "conducted_by": "both",
                    "questions": [{"id": "a", "text": "?"}, {"id": "a", "text": "!"}]}),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    // Allowing it afterwards makes it pushable.
    let (status, t) = app
        .patch(
            &format!("/v1/conversation-templates/{closed}"),
            &json!({"may_be_pushed": true}),
        )
        .await;
    assert_eq!((status, &t["may_be_pushed"]), (200, &json!(true)), "{t}");
    let (status, p) = app.post("/v1/pushes", &body).await;
    assert_eq!(status, 201, "{p}");
    app.shutdown().await;
}

#[tokio::test]
async fn fixed_and_dynamic_lists_preview_and_the_locked_method() {
    let app = api_only().await;
    let people = directory(&app).await;
    let t = template(&app, true, "team_leaders").await;
    // A dynamic push: who matches now, not final.
    let (status, dynamic) = app
        .post(
            "/v1/pushes",
            &json!({"template_id": t, "name": "Engineering", "start_date": in_days(2),
                    "deadline": in_days(20),
                    "criteria": {"property": "department", "op": "equals", "value": "Engineering"}}),
        )
        .await;
    assert_eq!(status, 201, "{dynamic}");
    assert_eq!(dynamic["method"], "dynamic");
    assert_eq!(dynamic["status"], "scheduled");
    assert_eq!(dynamic["counts"]["users"], 0);
    let d = dynamic["id"].as_str().expect("id");
    let (status, preview) = app.get(&format!("/v1/pushes/{d}/preview")).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["final"], false, "{preview}");
    assert_eq!(preview["count"], 3, "{preview}");
    // Before the start, users come from the criteria only.
    let (status, e) = app
        .post(
            &format!("/v1/pushes/{d}/users"),
            &json!({"person_ids": [people["M1"]]}),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    // Without users the method may still change: dynamic -> fixed -> dynamic.
    let (status, p) = app
        .patch(&format!("/v1/pushes/{d}"), &json!({"person_ids": []}))
        .await;
    assert_eq!((status, &p["method"]), (200, &json!("fixed")), "{p}");
    let (status, p) = app
        .patch(
            &format!("/v1/pushes/{d}"),
            &json!({"criteria": {"property": "department", "op": "equals", "value": "Sales"}}),
        )
        .await;
    assert_eq!((status, &p["method"]), (200, &json!("dynamic")), "{p}");

    // A fixed push starting today: its users are assigned at once, so its method is locked.
    let (status, fixed) = app
        .post(
            "/v1/pushes",
            &json!({"template_id": t, "name": "Hand-picked", "start_date": today(),
                    "deadline": today(), "person_ids": [people["D1"], people["M1"]]}),
        )
        .await;
    assert_eq!(status, 201, "{fixed}");
    assert_eq!(fixed["counts"]["users"], 2, "{fixed}");
    let f = fixed["id"].as_str().expect("id");
    let (status, e) = app
        .patch(
            &format!("/v1/pushes/{f}"),
            &json!({"criteria": {"property": "department", "op": "equals", "value": "Sales"}}),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("the user list method cannot change once users are assigned: create a new push to use the other method"),
        "{e}"
    );
    let (status, preview) = app.get(&format!("/v1/pushes/{f}/preview")).await;
    assert_eq!(
        (status, &preview["final"], &preview["count"]),
        (200, &json!(true), &json!(2)),
        "{preview}"
    );
    // Adding to a fixed push: once, then nothing; unknown ids reported per id.
    let unknown = uuid::Uuid::now_v7();
    let (status, r) = app
        .post(
            &format!("/v1/pushes/{f}/users"),
            &json!({"person_ids": [people["L1"], people["D1"], unknown]}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (&r["added"], &r["already_there"]),
        (&json!(1), &json!(1)),
        "{r}"
    );
    assert_eq!(r["errors"][0]["person_id"], json!(unknown), "{r}");
    let (status, r) = app
        .post(
            &format!("/v1/pushes/{f}/users"),
            &json!({"person_ids": [people["L1"]]}),
        )
        .await;
    assert_eq!(
        (status, &r["added"], &r["already_there"]),
        (200, &json!(0), &json!(1)),
        "{r}"
    );
    let (status, e) = app
        .post(
            &format!("/v1/pushes/{f}/users"),
            &json!({"person_ids": ["nope"]}),
        )
        .await;
    assert!((400..500).contains(&status), "{e}");

    // After the start, a dynamic push takes users by hand, matching or not.
    mark_started(&app, d).await;
    let (status, r) = app
        .post(
            &format!("/v1/pushes/{d}/users"),
            &json!({"person_ids": [people["D1"]]}),
        )
        .await;
    assert_eq!((status, &r["added"]), (200, &json!(1)), "{r}");
    let (status, users) = app.get(&format!("/v1/pushes/{d}/users")).await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users["users"][0]["source"], "added", "{users}");
    let (status, preview) = app.get(&format!("/v1/pushes/{d}/preview")).await;
    assert_eq!(
        (status, &preview["final"], &preview["count"]),
        (200, &json!(true), &json!(1)),
        "{preview}"
    );
    // Started: neither the method nor the start day changes.
    let (status, e) = app
        .patch(
            &format!("/v1/pushes/{d}"),
            &json!({"person_ids": [people["M1"]]}),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert!(e.to_string().contains("create a new push"), "{e}");
    let (status, e) = app
        .patch(
            &format!("/v1/pushes/{d}"),
            &json!({"start_date": in_days(5)}),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    // The deadline may move.
    let (status, p) = app
        .patch(
            &format!("/v1/pushes/{d}"),
            &json!({"deadline": in_days(30), "name": "Eng Q1"}),
        )
        .await;
    assert_eq!((status, &p["deadline"]), (200, &json!(in_days(30))), "{p}");

    // Lists: by status, template, text; keyset pages.
    let (status, list) = app
        .get(&format!("/v1/pushes?template_id={t}&limit=1"))
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["pushes"].as_array().map(Vec::len), Some(1), "{list}");
    let before = list["next_before"].as_str().expect("a second page");
    let (_, next) = app
        .get(&format!("/v1/pushes?template_id={t}&before={before}"))
        .await;
    assert_eq!(next["pushes"].as_array().map(Vec::len), Some(1), "{next}");
    let (_, started) = app.get("/v1/pushes?status=started").await;
    assert_eq!(started["pushes"][0]["id"], json!(d), "{started}");
    let (_, named) = app.get("/v1/pushes?q=hand").await;
    assert_eq!(named["pushes"][0]["id"], json!(f), "{named}");
    let (status, e) = app.get("/v1/pushes?status=running").await;
    assert_eq!(status, 422, "{e}");
    app.shutdown().await;
}

#[tokio::test]
async fn the_users_tab_names_every_conductor_and_follow_up_counts_completion() {
    let app = api_only().await;
    let people = directory(&app).await;
    let t = template(&app, true, "both").await;
    let (status, push) = app
        .post(
            "/v1/pushes",
            &json!({"template_id": t, "name": "Review", "start_date": today(),
                    "deadline": in_days(7), "person_ids": [people["D1"], people["M1"]]}),
        )
        .await;
    assert_eq!(status, 201, "{push}");
    let p = push["id"].as_str().expect("id");
    let (status, page) = app.get(&format!("/v1/pushes/{p}/users?q=dev")).await;
    assert_eq!(status, 200, "{page}");
    let dev = &page["users"][0];
    assert_eq!(dev["email"], "dev@corp.io", "{page}");
    assert_eq!(dev["source"], "list");
    assert_eq!(dev["status"], "not_planned");
    let mut conductors: Vec<(String, String)> = dev["conductors"]
        .as_array()
        .expect("conductors")
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap_or_default().to_owned(),
                c["email"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    conductors.sort();
    assert_eq!(
        conductors,
        vec![
            ("coach".into(), "cat@corp.io".into()),
            ("team_leader".into(), "lea@corp.io".into()),
            ("team_leader".into(), "tom@corp.io".into()),
        ],
        "{page}"
    );

    // Follow-up: per-row errors, the valid rows applied, a replay changes nothing.
    let updates = json!({"updates": [
        {"person_id": people["D1"], "status": "planned", "date": in_days(3)},
        {"person_id": people["M1"], "status": "conducted", "date": today()},
        {"person_id": people["L1"], "status": "planned", "date": in_days(3)},
        {"person_id": people["D1"], "status": "conducted", "date": today()},
        {"person_id": people["M1"], "status": "conducted"},
    ]});
    let (status, r) = app
        .post(&format!("/v1/pushes/{p}/follow-up"), &updates)
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (&r["changed"], &r["unchanged"], &r["failed"]),
        (&json!(2), &json!(0), &json!(3)),
        "{r}"
    );
    let indexes: Vec<i64> = r["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["index"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(indexes, vec![2, 3, 4], "{r}");
    let (_, again) = app
        .post(&format!("/v1/pushes/{p}/follow-up"), &updates)
        .await;
    assert_eq!(
        (&again["changed"], &again["unchanged"]),
        (&json!(0), &json!(2)),
        "{again}"
    );
    let (_, view) = app.get(&format!("/v1/pushes/{p}")).await;
    assert_eq!(
        view["counts"],
        json!({"users": 2, "not_planned": 0, "planned": 1, "conducted": 1}),
        "{view}"
    );
    let (_, planned) = app
        .get(&format!("/v1/pushes/{p}/users?status=planned"))
        .await;
    assert_eq!(
        planned["users"][0]["planned_on"],
        json!(in_days(3)),
        "{planned}"
    );
    // Malformed: the whole request refused as JSON.
    for bad in [
        json!({"updates": [{"person_id": people["D1"], "status": "done"}]}),
        json!({"updates": [{"person_id": people["D1"], "status": "planned", "date": "2026-13-01"}]}),
        json!({"updates": [], "x": 1}),
        json!({"updates": []}),
    ] {
        let (status, e) = app.post(&format!("/v1/pushes/{p}/follow-up"), &bad).await;
        assert!((400..500).contains(&status), "{bad}: {e}");
        assert!(e["error"]["code"].is_string(), "{e}");
    }
    let (_, far) = app
        .post(
            &format!("/v1/pushes/{p}/follow-up"),
            &json!({"updates": [{"person_id": people["D1"], "status": "planned", "date": "1999-12-31"}]}),
        )
        .await;
    assert_eq!(far["failed"], 1, "{far}");

    // The CSV: every user, formula-safe.
    let r = app
        .http
        .get(format!("{}/v1/pushes/{p}/users.csv", app.api_url))
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.expect("text");
    assert!(
        text.starts_with("person_id,first_name,last_name,email,source,status"),
        "{text}"
    );
    assert!(
        text.contains("lea@corp.io")
            && text.contains("tom@corp.io")
            && text.contains("cat@corp.io"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "{text}");

    // Close: results stay readable; nothing added or changed after.
    let (status, closed) = app.post(&format!("/v1/pushes/{p}/close"), &json!({})).await;
    assert_eq!(
        (status, &closed["status"]),
        (200, &json!("closed")),
        "{closed}"
    );
    let (status, _) = app.post(&format!("/v1/pushes/{p}/close"), &json!({})).await;
    assert_eq!(status, 409);
    let (status, e) = app
        .post(
            &format!("/v1/pushes/{p}/users"),
            &json!({"person_ids": [people["L2"]]}),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    let (status, _) = app
        .post(&format!("/v1/pushes/{p}/follow-up"), &updates)
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .patch(&format!("/v1/pushes/{p}"), &json!({"name": "x"}))
        .await;
    assert_eq!(status, 409);
    let (status, view) = app.get(&format!("/v1/pushes/{p}")).await;
    assert_eq!(
        (status, &view["counts"]["conducted"]),
        (200, &json!(1)),
        "{view}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_limited_organizer_sees_only_pushes_of_their_labels() {
    let app = api_only().await;
    let people = directory(&app).await;
    let t = template(&app, true, "coaches").await;
    let mut ids = Vec::new();
    for label in ["finance", "hr"] {
        let (status, p) = app
            .post(
                "/v1/pushes",
                &json!({"template_id": t, "name": label, "start_date": today(),
                        "deadline": today(), "person_ids": [people["D1"]], "labels": [label]}),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        ids.push(p["id"].as_str().expect("id").to_owned());
    }
    let organizer = TestApp::client(Some(
        &app.api_key_limited(Role::Organizer, &["finance"]).await,
    ));
    let get = |path: String| {
        let organizer = organizer.clone();
        let url = format!("{}{path}", app.api_url);
        async move {
            let r = organizer.get(url).send().await.expect("get");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, list) = get("/v1/pushes".into()).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["pushes"]
        .as_array()
        .expect("pushes")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, vec!["finance"], "{list}");
    assert_eq!(get(format!("/v1/pushes/{}", ids[0])).await.0, 200);
    assert_eq!(get(format!("/v1/pushes/{}", ids[1])).await.0, 404);
    // The template carries no label: not theirs, so not pushable by them.
    let r = organizer
        .post(format!("{}/v1/pushes", app.api_url))
        .json(
            &json!({"template_id": t, "name": "x", "start_date": today(),
                      "deadline": today(), "person_ids": []}),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 422);
    // The users tab names people: not for organizers.
    assert_eq!(get(format!("/v1/pushes/{}/users", ids[0])).await.0, 403);
    // Follow-up from an API key holding pushes:write, within its labels.
    let r = organizer
        .post(format!("{}/v1/pushes/{}/follow-up", app.api_url, ids[1]))
        .json(&json!({"updates": [{"person_id": people["D1"], "status": "not_planned"}]}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 404);
    let r = organizer
        .post(format!("{}/v1/pushes/{}/follow-up", app.api_url, ids[0]))
        .json(&json!({"updates": [{"person_id": people["D1"], "status": "not_planned"}]}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    app.shutdown().await;
}

/// Waits until the scheduler has started the push, and returns it.
async fn started(app: &TestApp, push: &str) -> Value {
    pushfleet_testkit::eventually(
        "the push started by the scheduler",
        std::time::Duration::from_secs(30),
        || async {
            let (status, p) = app.get(&format!("/v1/pushes/{push}")).await;
            (status == 200 && p["status"] == "started").then_some(p)
        },
    )
    .await
}

async fn feed(app: &TestApp, person: &Value) -> Value {
    let (status, feed) = app
        .get(&format!("/v1/people/{}/feed", person.as_str().expect("id")))
        .await;
    assert_eq!(status, 200, "{feed}");
    feed
}

#[tokio::test]
async fn a_dynamic_list_is_frozen_on_the_start_day_and_the_feed_follows_it() {
    let app = TestApp::spawn_with(&[Service::Scheduler]).await;
    let people = directory(&app).await;
    let t = template(&app, true, "team_leaders").await;
    let (status, push) = app
        .post(
            "/v1/pushes",
            &json!({"template_id": t, "name": "Engineering check-in", "start_date": in_days(1),
                    "deadline": in_days(10),
                    "criteria": {"property": "department", "op": "equals", "value": "Engineering"}}),
        )
        .await;
    assert_eq!(status, 201, "{push}");
    let id = push["id"].as_str().expect("id").to_owned();
    // Between creation and the start, Mia moves to Engineering: she is in the push.
    sqlx::query("UPDATE people SET department = 'Engineering' WHERE external_id = 'M1'")
        .execute(app.env.store.pool())
        .await
        .expect("move Mia");
    // The start day comes (moved to today rather than waiting for tomorrow).
    let (status, p) = app
        .patch(&format!("/v1/pushes/{id}"), &json!({"start_date": today()}))
        .await;
    assert_eq!(status, 200, "{p}");
    let push = started(&app, &id).await;
    assert_eq!(push["counts"]["users"], 4, "Lea, Tom, Dev and Mia: {push}");
    let (_, users) = app.get(&format!("/v1/pushes/{id}/users")).await;
    assert!(
        users["users"]
            .as_array()
            .is_some_and(|u| u.iter().all(|u| u["source"] == "criteria")),
        "{users}"
    );
    // After the start, someone who comes to match is not added by itself.
    sqlx::query("UPDATE people SET department = 'Engineering' WHERE external_id = 'C1'")
        .execute(app.env.store.pool())
        .await
        .expect("move Cat");
    let (_, preview) = app.get(&format!("/v1/pushes/{id}/preview")).await;
    assert_eq!(preview["final"], true, "{preview}");
    assert_eq!(preview["count"], 4, "{preview}");

    // Dev's feed: the task, with its deadline. Lea's: her own task, and Dev and Mia to
    // plan as their team leader. Cat coaches Dev, but this push is for team leaders.
    let dev = feed(&app, &people["D1"]).await;
    assert_eq!(dev["tasks"].as_array().map(Vec::len), Some(1), "{dev}");
    assert_eq!(dev["tasks"][0]["deadline"], in_days(10), "{dev}");
    assert_eq!(dev["tasks"][0]["template_name"], "Check-in", "{dev}");
    assert_eq!(dev["tasks"][0]["status"], "not_planned", "{dev}");
    let lea = feed(&app, &people["L1"]).await;
    assert_eq!(lea["tasks"].as_array().map(Vec::len), Some(1), "{lea}");
    let mut conduct: Vec<&str> = lea["to_conduct"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["first_name"].as_str())
        .collect();
    conduct.sort_unstable();
    assert_eq!(conduct, ["Dev", "Mia"], "{lea}");
    assert_eq!(lea["to_conduct"][0]["as_kind"], "team_leader", "{lea}");
    let cat = feed(&app, &people["C1"]).await;
    assert_eq!(cat["to_conduct"], json!([]), "{cat}");
    assert_eq!(
        cat["tasks"],
        json!([]),
        "Cat matched only after the start: {cat}"
    );

    // Close: the tasks and the "Plan" actions go; the results stay readable.
    let (status, closed) = app
        .post(&format!("/v1/pushes/{id}/close"), &json!({}))
        .await;
    assert_eq!(status, 200, "{closed}");
    let dev = feed(&app, &people["D1"]).await;
    assert_eq!(dev["tasks"], json!([]), "{dev}");
    let lea = feed(&app, &people["L1"]).await;
    assert_eq!(
        (&lea["tasks"], &lea["to_conduct"]),
        (&json!([]), &json!([])),
        "{lea}"
    );
    let (status, users) = app.get(&format!("/v1/pushes/{id}/users")).await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users["users"].as_array().map(Vec::len), Some(4), "{users}");
    let (status, _) = app
        .get(&format!("/v1/people/{}/feed", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn a_fixed_push_starting_today_starts_shortly_after_it_is_made() {
    let app = TestApp::spawn_with(&[Service::Scheduler]).await;
    let people = directory(&app).await;
    let t = template(&app, true, "both").await;
    let (status, push) = app
        .post(
            "/v1/pushes",
            &json!({"template_id": t, "name": "Today", "start_date": today(),
                    "deadline": in_days(3), "person_ids": [people["D1"]]}),
        )
        .await;
    assert_eq!(status, 201, "{push}");
    let push = started(&app, push["id"].as_str().expect("id")).await;
    assert!(push["started_at"].is_string(), "{push}");
    // Dev's three conductors each see him: two team leaders and a coach.
    for conductor in ["L1", "L2", "C1"] {
        let f = feed(&app, &people[conductor]).await;
        assert_eq!(f["to_conduct"].as_array().map(Vec::len), Some(1), "{f}");
        assert_eq!(f["to_conduct"][0]["first_name"], "Dev", "{f}");
    }
    app.shutdown().await;
}
