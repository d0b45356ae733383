//! Opting in and out: the e-mail one-click unsubscribe link (RFC 8058), SMS keywords on
//! Twilio's inbound webhook, and Teams buttons on the bot's messaging endpoint with the Bot
//! Framework's JWT checked against the simulator's OpenID metadata and keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pushfleet_domain::{twilio_signature, unsubscribe_token, Channel};
use pushfleet_loadtest::simulator::bot_identity::{bot_claims, bot_token, sign_bot_token};
use pushfleet_loadtest::simulator::Channel as SimChannel;
use pushfleet_testkit::{Service, TestApp, TEAMS_APP_ID, TWILIO_AUTH_TOKEN, UNSUBSCRIBE_SECRET};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn people(app: &TestApp, n: usize) -> Vec<Uuid> {
    let (status, created) = app.post("/v1/people", &app.demo_people(n)).await;
    assert_eq!(status, 201, "{created}");
    serde_json::from_value(created["ids"].clone()).expect("ids")
}

async fn opt_outs(app: &TestApp) -> Vec<(Uuid, String, String)> {
    sqlx::query_as(
        "SELECT person_id, channel, source FROM channel_opt_outs ORDER BY person_id, channel",
    )
    .fetch_all(app.env.store.pool())
    .await
    .expect("channel opt-outs")
}

#[tokio::test]
async fn the_email_unsubscribe_link_works_in_one_click_and_a_get_changes_nothing() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign(2, &[Channel::Email]).await;
    app.wait_for_completion(campaign, TIMEOUT).await;
    let person1: Uuid =
        sqlx::query_scalar("SELECT id FROM people WHERE email = 'person1@example.org'")
            .fetch_one(app.env.store.pool())
            .await
            .expect("person 1");

    // The link as the e-mail carries it: <{api}/u/{token}>.
    let mails = app.sim.recorder.messages_for(SimChannel::Email);
    let mail = mails
        .iter()
        .find(|m| m.recipient == "person1@example.org")
        .expect("person 1's e-mail");
    let header = mail.raw["headers"]["List-Unsubscribe"]
        .as_str()
        .expect("List-Unsubscribe");
    let url = header
        .split(", ")
        .next()
        .and_then(|u| u.strip_prefix('<'))
        .and_then(|u| u.strip_suffix('>'))
        .expect("the one-click URL first");
    assert!(url.starts_with(&format!("{}/u/", app.api_url)), "{url}");

    // A mail scanner fetching the link unsubscribes nobody; the page posts to the link.
    let page = app.http.get(url).send().await.expect("GET link");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("page");
    assert!(html.contains("method=\"post\""), "{html}");
    assert!(opt_outs(&app).await.is_empty());

    // RFC 8058's one-click POST; repeated, it changes nothing more.
    for _ in 0..2 {
        let r = app
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("POST link");
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(
        opt_outs(&app).await,
        vec![(person1, "email".to_owned(), "email_link".to_owned())]
    );

    // Forged and stale links: a JSON 4xx, nothing written.
    // The token is opaque (the delivery id is encrypted); a changed character is a forgery,
    // and so is a link of the old `{id}.{mac}` form with a made-up MAC.
    let token = url.rsplit('/').next().expect("token");
    let delivery_id =
        unsubscribe_token::verify(UNSUBSCRIBE_SECRET.as_bytes(), token).expect("our token");
    assert!(!token.starts_with(&format!("{delivery_id}.")), "{token}");
    let mut tampered = token.to_owned();
    let last = tampered.pop().expect("a character");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let forged_mac = format!(
        "{}.{}",
        delivery_id + 1000,
        URL_SAFE_NO_PAD.encode([7u8; 32])
    );
    let wrong_secret = unsubscribe_token::make(b"not the secret", 1);
    let unknown_delivery = unsubscribe_token::make(UNSUBSCRIBE_SECRET.as_bytes(), 999_999);
    for (bad, want) in [
        (tampered.as_str(), 403),
        (forged_mac.as_str(), 403),
        (wrong_secret.as_str(), 403),
        ("garbage", 400),
        (unknown_delivery.as_str(), 404),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let r = app
                .http
                .request(method.clone(), format!("{}/u/{bad}", app.api_url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .expect("request");
            assert_eq!(r.status().as_u16(), want, "{method} {bad}");
            let body: Value = r.json().await.expect("a JSON error");
            assert!(body["error"]["code"].is_string(), "{body}");
        }
    }
    assert_eq!(opt_outs(&app).await.len(), 1);
    app.shutdown().await;
}

/// Posts an inbound SMS as Twilio does; `signed` false sends a wrong signature.
async fn inbound_sms(app: &TestApp, from: &str, body: &str, signed: bool) -> (u16, String, String) {
    let path = "/v1/twilio/inbound";
    let params: Vec<(String, String)> = [
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("AccountSid", "ACsim"),
        ("From", from),
        ("To", "+15005550006"),
        ("Body", body),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let url = format!("{}{path}", app.api_url);
    let key = if signed {
        TWILIO_AUTH_TOKEN
    } else {
        "not-the-token"
    };
    let signature = twilio_signature::sign(key, &url, &params);
    let r = app
        .http
        .post(&url)
        .header("x-twilio-signature", signature)
        .form(&params)
        .send()
        .await
        .expect("inbound SMS");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn sms_stop_and_start_keywords_change_the_sms_opt_out() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let ids = people(&app, 3).await;
    // demo person 2's phone.
    let phone = "+15550000002";

    let (status, content_type, twiml) = inbound_sms(&app, phone, "  Stop ", true).await;
    assert_eq!(status, 200, "{twiml}");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert!(twiml.contains("<Response><Message>"), "{twiml}");
    assert_eq!(
        opt_outs(&app).await,
        vec![(ids[2], "sms".to_owned(), "sms_keyword".to_owned())]
    );
    // Again, with another keyword: still one opt-out.
    let (status, _, _) = inbound_sms(&app, phone, "unsubscribe", true).await;
    assert_eq!(status, 200);
    assert_eq!(opt_outs(&app).await.len(), 1);

    // A forged request changes nothing: 403 with a JSON body.
    let (status, content_type, body) = inbound_sms(&app, phone, "START", false).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(opt_outs(&app).await.len(), 1);

    // Other text and unknown numbers: an empty answer, nothing changed.
    for (from, text) in [(phone, "stop it please"), ("+15559999999", "STOP")] {
        let (status, _, twiml) = inbound_sms(&app, from, text, true).await;
        assert_eq!(status, 200);
        assert!(twiml.ends_with("<Response/>"), "{twiml}");
    }
    assert_eq!(opt_outs(&app).await.len(), 1);

    let (status, _, twiml) = inbound_sms(&app, phone, "START", true).await;
    assert_eq!(status, 200);
    assert!(twiml.contains("<Message>"), "{twiml}");
    assert!(opt_outs(&app).await.is_empty());
    app.shutdown().await;
}

/// The activity an Adaptive Card `Action.Submit` button sends, from demo person `i`.
fn button_activity(app: &TestApp, i: usize, value: Value) -> Value {
    json!({
        "type": "message",
        "id": Uuid::new_v4().to_string(),
        "channelId": "msteams",
        "serviceUrl": format!("{}/", app.sim.base_url()),
        "from": {"id": format!("29:teams-{i}"), "aadObjectId": format!("user-{i}")},
        "conversation": {"id": format!("a:conv-{i}")},
        "recipient": {"id": format!("28:{TEAMS_APP_ID}")},
        "value": value,
    })
}

async fn post_activity(app: &TestApp, token: Option<&str>, activity: &Value) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/v1/teams/messages", app.api_url))
        .json(activity);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.expect("activity");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn token_for(app: &TestApp) -> String {
    bot_token(TEAMS_APP_ID, &format!("{}/", app.sim.base_url())).expect("sign a token")
}

#[tokio::test]
async fn teams_buttons_join_and_leave_a_segment_with_a_valid_bot_framework_token() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let ids = people(&app, 2).await;
    let (_, seg) = app.post("/v1/segments", &json!({"name": "news"})).await;
    let seg: Uuid = seg["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("segment id");
    let store = &app.env.store;
    let token = token_for(&app);

    let opt_in = button_activity(
        &app,
        1,
        json!({"action": "segment_opt_in", "segment_id": seg}),
    );
    let (status, body) = post_activity(&app, Some(&token), &opt_in).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("opted_in")),
        "{body}"
    );
    assert!(store.is_segment_member(seg, ids[1]).await.expect("member?"));
    assert!(!store.is_segment_member(seg, ids[0]).await.expect("member?"));

    let opt_out = button_activity(
        &app,
        1,
        json!({"action": "segment_opt_out", "segment_id": seg}),
    );
    let (status, body) = post_activity(&app, Some(&token), &opt_out).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("opted_out")),
        "{body}"
    );
    assert!(!store.is_segment_member(seg, ids[1]).await.expect("member?"));
    // An admin's paste does not put them back.
    let (_, report) = app
        .post_raw(
            &format!("/v1/segments/{seg}/members"),
            "text/plain",
            "person1@example.org",
        )
        .await;
    assert_eq!(report["errors"][0]["reason"], "opted_out", "{report}");
    assert!(!store.is_segment_member(seg, ids[1]).await.expect("member?"));
    // Their own opt-in does.
    let (status, _) = post_activity(&app, Some(&token), &opt_in).await;
    assert_eq!(status, 200);
    assert!(store.is_segment_member(seg, ids[1]).await.expect("member?"));
    assert!(!store
        .is_segment_opted_out(seg, ids[1])
        .await
        .expect("opted out?"));

    // Unsubscribe from Teams as a whole.
    let unsubscribe = button_activity(&app, 0, json!({"action": "unsubscribe"}));
    let (status, body) = post_activity(&app, Some(&token), &unsubscribe).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("unsubscribed")),
        "{body}"
    );
    assert_eq!(
        store.channel_opt_outs(ids[0]).await.expect("opt-outs"),
        vec![Channel::Teams]
    );

    // Someone the directory does not know, a plain message, an unknown segment.
    let stranger = button_activity(
        &app,
        7,
        json!({"action": "segment_opt_in", "segment_id": seg}),
    );
    let (status, body) = post_activity(&app, Some(&token), &stranger).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("unknown_user")),
        "{body}"
    );
    let mut chat = button_activity(&app, 0, Value::Null);
    chat["text"] = json!("hello");
    let (status, body) = post_activity(&app, Some(&token), &chat).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );
    let unknown = button_activity(
        &app,
        0,
        json!({"action": "segment_opt_in", "segment_id": Uuid::new_v4()}),
    );
    let (status, body) = post_activity(&app, Some(&token), &unknown).await;
    assert_eq!(status, 404, "{body}");
    app.shutdown().await;
}

#[tokio::test]
async fn teams_activities_without_a_valid_bot_framework_token_are_refused() {
    let app = TestApp::spawn_with(&[Service::Api]).await;
    let ids = people(&app, 1).await;
    let (_, seg) = app.post("/v1/segments", &json!({"name": "news"})).await;
    let seg: Uuid = seg["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("segment id");
    let activity = button_activity(
        &app,
        0,
        json!({"action": "segment_opt_in", "segment_id": seg}),
    );
    let service_url = format!("{}/", app.sim.base_url());

    let expired = sign_bot_token(&bot_claims(TEAMS_APP_ID, &service_url, -3600)).expect("sign");
    let wrong_audience =
        sign_bot_token(&bot_claims("another-bot", &service_url, 3600)).expect("sign");
    let wrong_service = bot_token(TEAMS_APP_ID, "https://smba.evil.example/").expect("sign");
    let mut wrong_issuer_claims = bot_claims(TEAMS_APP_ID, &service_url, 3600);
    wrong_issuer_claims["iss"] = json!("https://sts.windows.net/someone/");
    let wrong_issuer = sign_bot_token(&wrong_issuer_claims).expect("sign");
    // Claims swapped after signing: the signature no longer matches.
    let forged = {
        let good = token_for(&app);
        let mut parts: Vec<&str> = good.split('.').collect();
        let mut claims = bot_claims(TEAMS_APP_ID, &service_url, 3600);
        claims["aud"] = json!(TEAMS_APP_ID);
        claims["exp"] = json!(4_000_000_000i64);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
        parts[1] = &payload;
        parts.join(".")
    };
    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&bot_claims(TEAMS_APP_ID, &service_url, 3600)).expect("json"),
        );
        format!("{header}.{claims}.")
    };

    for (what, token) in [
        ("no token", None),
        ("expired", Some(expired.as_str())),
        ("wrong audience", Some(wrong_audience.as_str())),
        ("wrong issuer", Some(wrong_issuer.as_str())),
        ("another serviceUrl", Some(wrong_service.as_str())),
        ("forged signature", Some(forged.as_str())),
        ("alg none", Some(unsigned.as_str())),
        ("not a JWT", Some("abc")),
    ] {
        let (status, body) = post_activity(&app, token, &activity).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
    }
    assert!(!app
        .env
        .store
        .is_segment_member(seg, ids[0])
        .await
        .expect("member?"));

    // The same activity with a good token goes through.
    let (status, body) = post_activity(&app, Some(&token_for(&app)), &activity).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("opted_in")),
        "{body}"
    );
    assert!(app
        .env
        .store
        .is_segment_member(seg, ids[0])
        .await
        .expect("member?"));
    app.shutdown().await;
}

/// Opting out by each route (e-mail link, SMS STOP, Teams button) is honoured by the next
/// campaign: those deliveries end `skipped`, the rest are sent.
#[tokio::test]
async fn opt_outs_from_every_route_are_honoured_by_later_sends() {
    let app = TestApp::spawn().await;
    let (audience, template) = app.create_audience_and_template(3).await;
    let person = |i: usize| {
        let pool = app.env.store.pool().clone();
        async move {
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM people WHERE email = $1")
                .bind(format!("person{i}@example.org"))
                .fetch_one(&pool)
                .await
                .expect("person")
        }
    };
    let first = app
        .create_campaign_from(audience.clone(), template.clone(), &[Channel::Email])
        .await;
    app.wait_for_completion(first, TIMEOUT).await;

    // Person 0 clicks the link in their e-mail.
    let mails = app.sim.recorder.messages_for(SimChannel::Email);
    let header = mails
        .iter()
        .find(|m| m.recipient == "person0@example.org")
        .and_then(|m| m.raw["headers"]["List-Unsubscribe"].as_str())
        .expect("person 0's List-Unsubscribe");
    let url = header
        .split(", ")
        .next()
        .and_then(|u| u.strip_prefix('<'))
        .and_then(|u| u.strip_suffix('>'))
        .expect("the one-click URL");
    let r = app
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("unsubscribe");
    assert_eq!(r.status().as_u16(), 200);
    // Person 1 replies STOP to an SMS; person 2 presses the Teams unsubscribe button.
    let (status, _, _) = inbound_sms(&app, "+15550000001", "STOP", true).await;
    assert_eq!(status, 200);
    let unsubscribe = button_activity(&app, 2, json!({"action": "unsubscribe"}));
    let (status, body) = post_activity(&app, Some(&token_for(&app)), &unsubscribe).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("unsubscribed")),
        "{body}"
    );

    let second = app
        .create_campaign_from(
            audience,
            template,
            &[Channel::Email, Channel::Sms, Channel::Teams],
        )
        .await;
    let done = app.wait_for_completion(second, TIMEOUT).await;
    assert_eq!(done["progress"]["by_state"]["sent"], 6, "{done}");
    assert_eq!(done["progress"]["by_state"]["skipped"], 3, "{done}");
    let mut skipped: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT person_id, channel FROM deliveries WHERE campaign_id = $1 AND state = 'skipped'",
    )
    .bind(second)
    .fetch_all(app.env.store.pool())
    .await
    .expect("skipped deliveries");
    skipped.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        skipped,
        vec![
            (person(0).await, "email".to_owned()),
            (person(1).await, "sms".to_owned()),
            (person(2).await, "teams".to_owned()),
        ]
    );
    app.shutdown().await;
}
