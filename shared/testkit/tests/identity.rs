//! Who may do what. The role x operation matrix is generated from the served OpenAPI
//! document: every operation is called as anonymous and as each role, and must answer 401,
//! 403 or get through exactly as the permission it declares says. An operation without a
//! declared permission fails here (and is refused by the api).

use pushfleet_api::identity::{Access, Role, OPERATIONS};
use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};

/// The permission the table declares for an operation, as the document names it.
fn declared(method: &str, path: &str) -> Option<Access> {
    OPERATIONS
        .iter()
        .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path)
        .map(|(_, _, a)| *a)
}

/// Real entities labelled `finance`, so that the matrix reaches them by id.
struct Labelled {
    template: String,
    audience: String,
    segment: String,
    campaign: String,
    survey: String,
    /// A campaign sending the survey: its survey report and CSV.
    survey_campaign: String,
    conversation_template: String,
    push: String,
}

async fn labelled_entities(app: &TestApp) -> Labelled {
    let (status, people) = app
        .post(
            "/v1/people",
            &json!({"people": [{"email": "m@example.org", "first_name": "M"}]}),
        )
        .await;
    assert_eq!(status, 201, "{people}");
    let mut ids = Vec::new();
    for (path, body) in [
        (
            "/v1/templates",
            json!({"name": "t", "body": "Hi", "labels": ["finance"]}),
        ),
        (
            "/v1/audiences",
            json!({"name": "a", "person_ids": people["ids"], "labels": ["finance"]}),
        ),
        ("/v1/segments", json!({"name": "s", "labels": ["finance"]})),
        (
            "/v1/surveys",
            json!({"name": "poll", "labels": ["finance"],
                   "questions": [{"id": "q", "prompt": "?", "kind": "free_text"}]}),
        ),
    ] {
        let (status, created) = app.post(path, &body).await;
        assert_eq!(status, 201, "{path}: {created}");
        assert_eq!(created["labels"], json!(["finance"]), "{created}");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let (status, campaign) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "c", "audience_id": ids[1], "template_id": ids[0],
                    "channels": ["email"], "status": "draft",
                    "labels": ["finance"]}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let (status, survey_campaign) = app
        .post(
            "/v1/campaigns",
            &json!({"name": "poll", "audience_id": ids[1], "survey_id": ids[3],
                    "channels": ["teams"], "status": "draft", "labels": ["finance"]}),
        )
        .await;
    assert_eq!(status, 201, "{survey_campaign}");
    let (status, conversation) = app
        .post(
            "/v1/conversation-templates",
            &json!({"name": "1:1", "may_be_pushed": true, "conducted_by": "both",
                    "questions": [{"id": "q", "text": "?"}], "labels": ["finance"]}),
        )
        .await;
    assert_eq!(status, 201, "{conversation}");
    let today = chrono::Utc::now().date_naive().to_string();
    let (status, push) = app
        .post(
            "/v1/pushes",
            &json!({"template_id": conversation["id"], "name": "p", "start_date": today,
                    "deadline": today, "person_ids": people["ids"], "labels": ["finance"]}),
        )
        .await;
    assert_eq!(status, 201, "{push}");
    Labelled {
        conversation_template: conversation["id"].as_str().expect("id").to_owned(),
        push: push["id"].as_str().expect("id").to_owned(),
        template: ids[0].clone(),
        audience: ids[1].clone(),
        segment: ids[2].clone(),
        campaign: campaign["id"].as_str().expect("id").to_owned(),
        survey: ids[3].clone(),
        survey_campaign: survey_campaign["id"].as_str().expect("id").to_owned(),
    }
}

/// The path with its `{id}` the labelled entity of its kind (a random id elsewhere, and for
/// a delete, which would take it from the operations after), and whether it names one.
fn concrete(method: &str, path: &str, labelled: &Labelled) -> (String, bool) {
    let entity = [
        ("/v1/templates/{id}", &labelled.template),
        ("/v1/audiences/{id}", &labelled.audience),
        ("/v1/segments/{id}", &labelled.segment),
        ("/v1/surveys/{id}", &labelled.survey),
        ("/v1/campaigns/{id}/survey", &labelled.survey_campaign),
        ("/v1/campaigns/{id}", &labelled.campaign),
        (
            "/v1/conversation-templates/{id}",
            &labelled.conversation_template,
        ),
        ("/v1/pushes/{id}", &labelled.push),
    ]
    .into_iter()
    .find(|(prefix, _)| path.starts_with(prefix))
    .filter(|_| method != "delete");
    let id = entity.map_or("6f1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f", |(_, id)| {
        id.as_str()
    });
    let path = path
        .replace("{id}", id)
        .replace("{upload_id}", "7a1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f")
        .replace("{token}", "not-a-token");
    // A preview renders for a person named in the query: the one made above.
    let path = if method == "get" && path.ends_with("/preview") && !path.starts_with("/v1/pushes") {
        format!("{path}?email=m@example.org")
    } else {
        path
    };
    (path, entity.is_some())
}

async fn call(client: &reqwest::Client, app: &TestApp, method: &str, path: &str) -> (u16, String) {
    let url = format!("{}{}", app.api_url, path);
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let mut request = client.request(method.clone(), url);
    if method == reqwest::Method::POST || method == reqwest::Method::PATCH {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("call the api");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap_or_default();
    (status, format!("{challenge} {body}"))
}

/// A caller of the matrix: a role, and the labels it is limited to (`None`: not limited).
struct Caller {
    role: Role,
    labels: Option<&'static [&'static str]>,
    client: reqwest::Client,
}

impl Caller {
    fn name(&self) -> String {
        format!("{}{:?}", self.role, self.labels)
    }

    /// Whether the caller reaches the `finance` entities.
    fn sees_finance(&self) -> bool {
        self.labels.is_none_or(|l| l.contains(&"finance"))
            && !(self.role == Role::Organizer && self.labels.is_none())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_each_role_as_its_declared_permission_says() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let labelled = labelled_entities(&app).await;
    let anonymous = TestApp::client(None);
    let mut callers = Vec::new();
    for role in Role::ALL {
        callers.push(Caller {
            role,
            labels: None,
            client: TestApp::client(Some(&app.api_key_with(role).await)),
        });
    }
    // Organizers with the right label, with another one; a viewer limited to another one.
    for (role, labels) in [
        (Role::Organizer, &["finance"][..]),
        (Role::Organizer, &["hr"][..]),
        (Role::Viewer, &["hr"][..]),
    ] {
        callers.push(Caller {
            role,
            labels: Some(labels),
            client: TestApp::client(Some(&app.api_key_limited(role, labels).await)),
        });
    }
    let (_, doc): (u16, Value) = {
        let r = anonymous
            .get(format!("{}/openapi.json", app.api_url))
            .send()
            .await
            .expect("the document");
        (r.status().as_u16(), r.json().await.expect("JSON"))
    };
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "{doc}"
    );
    let mut checked = 0;
    let mut reached_by_label = 0;
    for (route, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let access = declared(method, route)
                .unwrap_or_else(|| panic!("{method} {route} declares no permission"));
            let documented = op["x-pushfleet-permission"].as_str();
            let p = match access {
                Access::Public => {
                    assert_eq!(documented, None, "{method} {route}");
                    assert_eq!(op["security"], json!([{}]), "{method} {route} is public");
                    continue;
                }
                Access::Requires(p) => p,
            };
            assert_eq!(documented, Some(p.as_str()), "{method} {route}");
            assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {route}");
            let (path, names_labelled) = concrete(method, route, &labelled);
            let (status, text) = call(&anonymous, &app, method, &path).await;
            assert_eq!(status, 401, "anonymous {method} {route}: {text}");
            assert!(text.starts_with("Bearer"), "WWW-Authenticate: {text}");
            for caller in &callers {
                let who = caller.name();
                let (status, text) = call(&caller.client, &app, method, &path).await;
                let holds_none =
                    p.label_scoped() && caller.role == Role::Organizer && caller.labels.is_none();
                if !caller.role.allows(p) || holds_none {
                    assert_eq!(status, 403, "{who} {method} {route}: {text}");
                    assert!(text.contains(p.as_str()), "names the permission: {text}");
                    continue;
                }
                assert!(
                    status != 401 && status != 403,
                    "{who} {method} {route}: {status} {text}"
                );
                // A labelled entity is there for whom its label reaches, and not at all
                // for the others.
                if names_labelled && method == "get" && !route.contains("{upload_id}") {
                    if caller.sees_finance() {
                        assert_eq!(status, 200, "{who} {method} {route}: {text}");
                        reached_by_label += 1;
                    } else {
                        assert_eq!(status, 404, "{who} {method} {route}: {text}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} operations checked");
    assert!(reached_by_label >= 5, "{reached_by_label} labelled reads");
    app.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_shown_once_used_listed_revoked_and_expire() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (status, created) = app
        .post(
            "/v1/api-keys",
            &json!({"name": "hr-sync", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with(created["prefix"].as_str().expect("prefix")));
    let id = created["id"].as_str().expect("id").to_owned();

    let viewer = TestApp::client(Some(&secret));
    let r = viewer
        .get(format!("{}/v1/segments", app.api_url))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200, "a viewer reads segments");
    let r = viewer
        .post(format!("{}/v1/api-keys", app.api_url))
        .json(&json!({"name": "escalate", "role": "admin"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403, "a viewer makes no keys");

    let (_, page) = app.get("/v1/api-keys").await;
    let listed = page["api_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(
        listed.get("secret").is_none(),
        "never shown again: {listed}"
    );
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(app.env.store.pool())
            .await
            .expect("stored");
    assert_ne!(stored, secret.as_bytes(), "only a hash is stored");

    let (status, revoked) = app
        .http
        .delete(format!("{}/v1/api-keys/{id}", app.api_url))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("DELETE");
    assert_eq!(status, 200, "{revoked:?}");
    let r = viewer
        .get(format!("{}/v1/segments", app.api_url))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401, "a revoked key is refused at once");

    let (status, expired) = app
        .post(
            "/v1/api-keys",
            &json!({"name": "old", "role": "admin", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{expired}");
    let old = TestApp::client(expired["secret"].as_str());
    let r = old
        .get(format!("{}/v1/segments", app.api_url))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401, "an expired key is refused");
    let forged = TestApp::client(Some("pf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    let r = forged
        .get(format!("{}/v1/segments", app.api_url))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    app.shutdown().await;
}

#[tokio::test]
async fn writes_and_personal_data_reads_are_audited_in_an_append_only_log() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (status, created) = app
        .post(
            "/v1/people",
            &json!({"people": [{"email": "a@example.org", "first_name": "A"}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let person = created["ids"][0].as_str().expect("id").to_owned();
    let (status, _) = app.get(&format!("/v1/people/{person}")).await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/v1/segments").await;
    assert_eq!(status, 200, "a read of no personal data");
    // A viewer's refused write is recorded too.
    let viewer = TestApp::client(Some(&app.api_key_with(Role::Viewer).await));
    let r = viewer
        .post(format!("{}/v1/campaigns", app.api_url))
        .json(&json!({}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);

    let (status, page) = app.get("/v1/audit-log").await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().expect("entries");
    let summary: Vec<(String, String, i64, Option<String>)> = entries
        .iter()
        .map(|e| {
            (
                e["route"].as_str().unwrap_or_default().to_owned(),
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["status"].as_i64().unwrap_or_default(),
                e["entity_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("/v1/campaigns".to_owned(), "write".to_owned(), 403, None),
            (
                "/v1/people/{id}".to_owned(),
                "personal_data_read".to_owned(),
                200,
                Some(person.clone())
            ),
            (
                "/v1/people".to_owned(),
                "write".to_owned(),
                201,
                Some(person.clone())
            ),
        ],
        "newest first, GET /v1/segments not audited: {page}"
    );
    assert_eq!(entries[0]["actor_role"], "viewer");
    assert!(entries[1]["client_addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1")));
    let (_, filtered) = app
        .get(&format!(
            "/v1/audit-log?entity_id={person}&kind=personal_data_read"
        ))
        .await;
    assert_eq!(
        filtered["entries"].as_array().map(Vec::len),
        Some(1),
        "{filtered}"
    );

    // Append-only, whoever asks the database.
    for statement in [
        "UPDATE audit_log SET status = 200",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::query(statement).execute(app.env.store.pool()).await;
        assert!(refused.is_err(), "{statement} is refused");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_public_listener_serves_the_webhooks_and_links_alone() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let public = &app.public_api_url;
    // An admin key does not make an admin operation reachable there.
    for path in [
        "/v1/segments",
        "/v1/people/6f1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
        "/openapi.json",
        "/v1/audit-log",
    ] {
        let r = app
            .http
            .get(format!("{public}{path}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 404, "{path} is not on the public listener");
    }
    let r = app
        .http
        .post(format!("{public}/v1/campaigns"))
        .json(&json!({}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 404);
    // The webhooks are, each behind its own signature check.
    let r = reqwest::Client::new()
        .post(format!("{public}/v1/twilio/inbound"))
        .form(&[("From", "+15005550006"), ("Body", "STOP")])
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert!(
        status == 401 || status == 403,
        "reached, and refused for its missing signature: {status} {body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn head_needs_what_get_needs_and_other_methods_stop_at_the_door() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let anonymous = TestApp::client(None);
    let person = "6f1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f";
    let r = anonymous
        .head(format!("{}/v1/people/{person}", app.api_url))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(r.status(), 401, "HEAD runs the GET handler: it needs a key");
    let viewer = TestApp::client(Some(&app.api_key_with(Role::Viewer).await));
    let r = viewer
        .head(format!("{}/v1/audit-log", app.api_url))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(r.status(), 403);
    // A method the route does not have is refused before any layer behind the door runs:
    // no idempotency record for an anonymous caller.
    let r = anonymous
        .post(format!("{}/v1/audit-log", app.api_url))
        .header("idempotency-key", "k")
        .json(&json!({}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 405);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(app.env.store.pool())
        .await
        .expect("count");
    assert_eq!(kept, 0);
    // A key's secret is never kept for a replay.
    let (status, _) = {
        let r = app
            .http
            .post(format!("{}/v1/api-keys", app.api_url))
            .header("idempotency-key", "new-key")
            .json(&json!({"name": "k", "role": "viewer"}))
            .send()
            .await
            .expect("POST");
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 201);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(app.env.store.pool())
        .await
        .expect("count");
    assert_eq!(kept, 0, "the answer with the secret is not stored");
    app.shutdown().await;
}
