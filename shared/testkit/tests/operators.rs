//! Operators sign in with the organisation's identity provider (the simulator's, with
//! discovery and a JWKS, as Entra ID and Keycloak serve them), and permission labels hide
//! what is not theirs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pushfleet_api::identity::Role;
use pushfleet_loadtest::simulator::bot_identity::sign_rs256;
use pushfleet_loadtest::simulator::identity_provider::{
    operator_claims, sign_operator_token, IDP_KEY_ID,
};
use pushfleet_testkit::{Service, TestApp};
use serde_json::{json, Value};

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value, String) {
    let r = TestApp::client(Some(token))
        .get(format!("{}{path}", app.api_url))
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, challenge)
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = TestApp::client(Some(token))
        .post(format!("{}{path}", app.api_url))
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_operator_signs_in_with_the_identity_providers_token_and_nothing_else_passes() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let issuer = app.sim.oidc_issuer();
    let token = app.operator_token("ana", &["viewer"], None);
    let (status, me, _) = get(&app, &token, "/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "operator");
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["name"], "Operator ana");
    assert!(me["permissions"]
        .as_array()
        .is_some_and(|p| p.contains(&json!("campaigns:read"))));
    let (status, _, _) = get(&app, &token, "/v1/segments").await;
    assert_eq!(status, 200, "a viewer reads segments");
    let (status, body) = post(&app, &token, "/v1/segments", &json!({"name": "x"})).await;
    assert_eq!(status, 403, "a viewer writes nothing: {body}");

    // The operator is recorded, for admins to see.
    let (status, page) = app.get("/v1/operators").await;
    assert_eq!(status, 200, "{page}");
    let operators = page["operators"].as_array().expect("operators");
    assert_eq!(operators.len(), 1, "{page}");
    assert_eq!(operators[0]["subject"], "ana");
    assert_eq!(operators[0]["issuer"], issuer.as_str());
    assert_eq!(operators[0]["id"], me["id"]);

    let refused = |claims: Value| sign_operator_token(&claims).expect("sign");
    let mut wrong_audience = operator_claims(&issuer, "ana", &["admin"], None, 3600);
    wrong_audience["aud"] = json!("another-app");
    let mut no_subject = operator_claims(&issuer, "ana", &["admin"], None, 3600);
    no_subject.as_object_mut().expect("claims").remove("sub");
    let valid_claims = operator_claims(&issuer, "ana", &["admin"], None, 3600);
    let unknown_key = sign_rs256(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "not-a-key-of-the-provider"}),
        &valid_claims,
    )
    .expect("sign");
    // `alg: none`: a token anyone can make.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": IDP_KEY_ID}).to_string()),
        URL_SAFE_NO_PAD.encode(valid_claims.to_string())
    );
    // HS256 keyed with something public: the algorithm confusion of old JWT libraries.
    let hs256 = {
        use hmac::{Hmac, Mac};
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD
                .encode(json!({"alg": "HS256", "typ": "JWT", "kid": IDP_KEY_ID}).to_string()),
            URL_SAFE_NO_PAD.encode(valid_claims.to_string())
        );
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(IDP_KEY_ID.as_bytes())
            .expect("any key length");
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let valid = refused(valid_claims.clone());
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        let mut claims = valid_claims.clone();
        claims["sub"] = json!("mallory");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        parts.join(".")
    };
    for (case, token) in [
        (
            "expired",
            refused(operator_claims(&issuer, "ana", &["admin"], None, -3600)),
        ),
        ("wrong audience", refused(wrong_audience)),
        (
            "wrong issuer",
            refused(operator_claims(
                "https://evil.example.org/realms/acme",
                "ana",
                &["admin"],
                None,
                3600,
            )),
        ),
        ("no subject", refused(no_subject)),
        ("unknown key", unknown_key),
        ("alg none", unsigned),
        ("HS256", hs256),
        ("tampered claims", tampered),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let (status, body, challenge) = get(&app, &token, "/v1/segments").await;
        assert_eq!(status, 401, "{case}: {body}");
        assert!(challenge.starts_with("Bearer"), "{case}: {challenge}");
        assert_eq!(body["error"]["code"], "unauthorized", "{case}: {body}");
    }
    let (status, _, _) = get(&app, &valid, "/v1/audit-log").await;
    assert_eq!(
        status, 200,
        "the same claims, properly signed, are an admin's"
    );

    // A real token of the provider that grants no pushfleet role: known, but not allowed.
    let stranger = app.operator_token("bob", &["offline_access"], None);
    let (status, body, _) = get(&app, &stranger, "/v1/segments").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("role")),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_operator_is_linked_to_their_person_and_given_an_owner_scope() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let (status, people) = app
        .post(
            "/v1/people",
            &json!({"people": [{"email": "Ana@Example.org", "first_name": "Ana"}]}),
        )
        .await;
    assert_eq!(status, 201, "{people}");
    let person = people["ids"][0].clone();
    let token = app.operator_token("ana", &["organizer"], Some(&["finance"]));
    let (status, me, _) = get(&app, &token, "/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["labels"], json!(["finance"]));
    assert_eq!(me["scope_audience_id"], Value::Null);
    let (status, operator) = app
        .get(&format!("/v1/operators/{}", me["id"].as_str().expect("id")))
        .await;
    assert_eq!(status, 200, "{operator}");
    assert_eq!(
        operator["person_id"], person,
        "found by e-mail, whatever its case"
    );

    let (status, audience) = app
        .post(
            "/v1/audiences",
            &json!({"name": "Finland", "criteria": {"property": "location", "op": "equals", "value": "Helsinki"}}),
        )
        .await;
    assert_eq!(status, 201, "{audience}");
    let path = format!("/v1/operators/{}", me["id"].as_str().expect("id"));
    let r = app
        .http
        .patch(format!("{}{path}", app.api_url))
        .json(&json!({"scope_audience_id": audience["id"]}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    let (_, me, _) = get(&app, &token, "/v1/me").await;
    assert_eq!(me["scope_audience_id"], audience["id"], "{me}");
    let r = app
        .http
        .patch(format!("{}{path}", app.api_url))
        .json(&json!({"scope_audience_id": "6f1c2e34-8a3b-4c1d-9e2f-0a1b2c3d4e5f"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 404, "no such audience");
    // An organizer manages no operators.
    let r = TestApp::client(Some(&token))
        .patch(format!("{}{path}", app.api_url))
        .json(&json!({"scope_audience_id": null}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 403);
    app.shutdown().await;
}

#[tokio::test]
async fn permission_labels_hide_what_is_not_an_operators_own() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let mut ids = std::collections::HashMap::new();
    for label in ["finance", "hr"] {
        for (path, body) in [
            (
                "/v1/templates",
                json!({"name": label, "body": "Hi", "labels": [label]}),
            ),
            ("/v1/segments", json!({"name": label, "labels": [label]})),
            (
                "/v1/audiences",
                json!({"name": label, "criteria": {"property": "department", "op": "equals", "value": label}, "labels": [label]}),
            ),
        ] {
            let (status, created) = app.post(path, &body).await;
            assert_eq!(status, 201, "{created}");
            ids.insert(
                (path, label),
                created["id"].as_str().expect("id").to_owned(),
            );
        }
    }
    let finance = app.operator_token("fiona", &["organizer"], Some(&["finance"]));

    // Reads: their own label's entities, and nothing else, not even its existence.
    let (status, page, _) = get(&app, &finance, "/v1/segments").await;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["finance"], "{page}");
    for path in ["/v1/templates", "/v1/segments", "/v1/audiences"] {
        let (status, body, _) = get(
            &app,
            &finance,
            &format!("{path}/{}", ids[&(path, "finance")]),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        let (status, body, _) =
            get(&app, &finance, &format!("{path}/{}", ids[&(path, "hr")])).await;
        assert_eq!(status, 404, "{path}: {body}");
    }

    // Writes: what they make carries their labels; they cannot give labels they lack, nor
    // use what they cannot see.
    let (status, made) = post(
        &app,
        &finance,
        "/v1/templates",
        &json!({"name": "mine", "body": "Hi"}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["labels"], json!(["finance"]));
    let (status, body) = post(
        &app,
        &finance,
        "/v1/segments",
        &json!({"name": "theirs", "labels": ["hr"]}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("hr")),
        "{body}"
    );
    let (status, body) = post(
        &app,
        &finance,
        "/v1/campaigns",
        &json!({"name": "c", "audience_id": ids[&("/v1/audiences", "finance")],
                "template_id": ids[&("/v1/templates", "hr")], "channels": ["email"]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"], "template_id",
        "{body}"
    );
    let (status, body) = post(
        &app,
        &finance,
        "/v1/audiences",
        &json!({"name": "in hr's segment", "criteria": {"property": "segment", "op": "member_of",
                "value": ids[&("/v1/segments", "hr")]}}),
    )
    .await;
    assert_eq!(
        status, 422,
        "a segment they cannot see is no segment: {body}"
    );
    let r = TestApp::client(Some(&finance))
        .patch(format!(
            "{}/v1/segments/{}",
            app.api_url,
            ids[&("/v1/segments", "hr")]
        ))
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 404, "no changing what they cannot see");
    let r = TestApp::client(Some(&finance))
        .patch(format!(
            "{}/v1/segments/{}",
            app.api_url,
            ids[&("/v1/segments", "finance")]
        ))
        .json(&json!({"labels": ["hr"]}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 403, "no giving away to a label they lack");

    // An organizer without labels holds no label-scoped permission; an API key limited to
    // a label sees as an operator with it does.
    let bare = app.operator_token("otto", &["organizer"], None);
    let (status, body, _) = get(&app, &bare, "/v1/segments").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("segments:read")),
        "{body}"
    );
    let hr_key = app.api_key_limited(Role::Viewer, &["hr"]).await;
    let (status, page, _) = get(&app, &hr_key, "/v1/segments").await;
    assert_eq!(status, 200);
    assert_eq!(page["segments"][0]["name"], "hr", "{page}");
    assert_eq!(page["segments"].as_array().map(Vec::len), Some(1), "{page}");
    // Admins see everything.
    let (_, page) = app.get("/v1/segments").await;
    assert_eq!(page["segments"].as_array().map(Vec::len), Some(2), "{page}");
    app.shutdown().await;
}
