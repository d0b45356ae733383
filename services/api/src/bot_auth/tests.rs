//! The verifier against a local key endpoint that serves the simulator's key, fails or hangs,
//! and counts the fetches it sees.

use super::{BotAuthError, BotTokenVerifier, Timing};
use crate::config::BotAuthConfig;
use crate::jwks::TokenRefusal;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::future::join_all;
use pushfleet_loadtest::simulator::bot_identity::{
    bot_claims, bot_jwks, bot_token, sign_bot_token, BOT_ISSUER, BOT_KEY_ID,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const APP_ID: &str = "test-bot";
const SERVICE_URL: &str = "https://smba.example/";

#[derive(Clone, Copy)]
enum Mode {
    Serve,
    /// The JWKS request is accepted and never answered.
    Hang,
    /// The JWKS request is answered 503.
    Fail,
}

struct Endpoint {
    mode: Mutex<Mode>,
    /// Fetches started (metadata requests) and JWKS requests seen.
    fetches: watch::Sender<usize>,
    jwks_requests: watch::Sender<usize>,
}

struct KeyServer {
    endpoint: Arc<Endpoint>,
    metadata_url: String,
}

impl KeyServer {
    async fn start(mode: Mode) -> Self {
        let endpoint = Arc::new(Endpoint {
            mode: Mutex::new(mode),
            fetches: watch::Sender::new(0),
            jwks_requests: watch::Sender::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let router = Router::new()
            .route("/metadata", get(metadata))
            .route("/keys", get(keys))
            .with_state(Arc::clone(&endpoint));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            endpoint,
            metadata_url: format!("http://{addr}/metadata"),
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.endpoint.mode.lock().expect("mode") = mode;
    }

    fn fetches(&self) -> usize {
        *self.endpoint.fetches.borrow()
    }

    fn verifier(&self, timing: Timing) -> BotTokenVerifier {
        let cfg = BotAuthConfig {
            app_id: APP_ID.into(),
            openid_metadata_url: self.metadata_url.clone(),
            issuer: BOT_ISSUER.into(),
        };
        BotTokenVerifier::with_timing(cfg, timing)
    }
}

async fn metadata(
    State(endpoint): State<Arc<Endpoint>>,
    headers: axum::http::HeaderMap,
) -> Json<Value> {
    endpoint.fetches.send_modify(|n| *n += 1);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    Json(json!({ "jwks_uri": format!("http://{host}/keys") }))
}

async fn keys(State(endpoint): State<Arc<Endpoint>>) -> Response {
    endpoint.jwks_requests.send_modify(|n| *n += 1);
    let mode = *endpoint.mode.lock().expect("mode");
    match mode {
        Mode::Serve => Json(bot_jwks().expect("the simulator's JWKS")).into_response(),
        Mode::Hang => std::future::pending().await,
        Mode::Fail => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn timing(fetch_timeout_secs: u64, min_refresh_interval_secs: u64) -> Timing {
    Timing {
        fetch_timeout: Duration::from_secs(fetch_timeout_secs),
        min_refresh_interval: Duration::from_secs(min_refresh_interval_secs),
        ..Timing::default()
    }
}

/// Waits for `what` to happen, failing the test rather than hanging it should it never.
async fn within<T, E: std::fmt::Debug>(
    happens: impl std::future::Future<Output = Result<T, E>>,
    what: &str,
) {
    match tokio::time::timeout(Duration::from_secs(10), happens).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{what}: {e:?}"),
        Err(_) => panic!("{what}: not within 10 s"),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn encode_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// An RS256 token naming key `kid`, which nobody has: its signature is junk.
fn forged(kid: &str) -> String {
    let header = encode_json(&json!({ "alg": "RS256", "typ": "JWT", "kid": kid }));
    let claims = encode_json(&bot_claims(APP_ID, SERVICE_URL, 3600));
    format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]))
}

fn valid() -> String {
    bot_token(APP_ID, SERVICE_URL).expect("sign a token")
}

/// Verifies `token`, with how long it took.
async fn timed(
    verifier: &BotTokenVerifier,
    token: String,
) -> (Result<super::BotClaims, BotAuthError>, Duration) {
    let started = Instant::now();
    let result = verifier.verify(Some(&bearer(&token))).await;
    (result, started.elapsed())
}

#[tokio::test]
async fn forged_tokens_wait_at_most_one_fetch_timeout_while_the_keys_hang() {
    let server = KeyServer::start(Mode::Hang).await;
    let verifier = server.verifier(timing(1, 60));
    let answers = join_all((0..8).map(|i| timed(&verifier, forged(&format!("forged-{i}"))))).await;
    for (i, (result, took)) in answers.into_iter().enumerate() {
        assert!(
            matches!(result, Err(BotAuthError::KeysUnavailable(_))),
            "{i}: {result:?}"
        );
        // One fetch timeout (1 s) each, not 8 in a row.
        assert!(took < Duration::from_secs(3), "{i} answered after {took:?}");
    }
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn a_cached_key_verifies_while_a_fetch_hangs() {
    let server = KeyServer::start(Mode::Serve).await;
    let verifier = Arc::new(server.verifier(timing(30, 0)));
    verifier
        .verify(Some(&bearer(&valid())))
        .await
        .expect("a valid token");

    server.set_mode(Mode::Hang);
    let hung = tokio::spawn({
        let verifier = Arc::clone(&verifier);
        async move { verifier.verify(Some(&bearer(&forged("rolled-over")))).await }
    });
    let mut jwks_requests = server.endpoint.jwks_requests.subscribe();
    within(
        jwks_requests.wait_for(|n| *n == 2),
        "the second fetch reaches the JWKS",
    )
    .await;

    let (result, took) = timed(&verifier, valid()).await;
    let claims = result.expect("the cached key verifies");
    assert_eq!(claims.service_url.as_deref(), Some(SERVICE_URL));
    // The key endpoint hangs for 30 s.
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(!hung.is_finished(), "the fetch should still hang");
    hung.abort();
}

#[tokio::test]
async fn stale_keys_are_used_while_they_are_refreshed() {
    let server = KeyServer::start(Mode::Serve).await;
    let verifier = server.verifier(Timing {
        keys_ttl: Duration::ZERO,
        ..timing(30, 0)
    });
    verifier
        .verify(Some(&bearer(&valid())))
        .await
        .expect("a valid token");

    server.set_mode(Mode::Hang);
    let (result, took) = timed(&verifier, valid()).await;
    result.expect("the stale key verifies");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    // The refresh started in the background.
    let mut fetches = server.endpoint.fetches.subscribe();
    within(fetches.wait_for(|n| *n == 2), "a background refresh").await;
}

#[tokio::test]
async fn a_burst_of_unknown_kids_causes_at_most_one_fetch() {
    // A failing endpoint: no keys are ever cached, so every token needs a fetch.
    let server = KeyServer::start(Mode::Fail).await;
    let verifier = server.verifier(timing(30, 60));
    let burst = |from: usize| {
        join_all((from..from + 100).map(|i| timed(&verifier, forged(&format!("storm-{i}")))))
    };
    for (result, _) in burst(0).await {
        assert!(
            matches!(result, Err(BotAuthError::KeysUnavailable(_))),
            "{result:?}"
        );
    }
    assert_eq!(server.fetches(), 1);

    // Keys are back, but the next fetch may not start yet: refused at once, not queued.
    server.set_mode(Mode::Serve);
    for (result, took) in burst(100).await {
        assert!(
            matches!(result, Err(BotAuthError::KeysUnavailable(_))),
            "{result:?}"
        );
        assert!(took < Duration::from_secs(3), "answered after {took:?}");
    }
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn unknown_kids_after_a_fetch_are_refused_at_once() {
    let server = KeyServer::start(Mode::Serve).await;
    let verifier = server.verifier(timing(30, 60));
    verifier
        .verify(Some(&bearer(&valid())))
        .await
        .expect("a valid token");
    let burst = join_all((0..100).map(|i| timed(&verifier, forged(&format!("storm-{i}"))))).await;
    for (result, took) in burst {
        assert!(
            matches!(result, Err(BotAuthError::UnknownKey)),
            "{result:?}"
        );
        assert!(took < Duration::from_secs(3), "answered after {took:?}");
    }
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn bad_tokens_are_refused_and_good_ones_accepted() {
    let server = KeyServer::start(Mode::Serve).await;
    let verifier = server.verifier(timing(1, 60));
    let signed = |edit: &dyn Fn(&mut Value)| {
        let mut claims = bot_claims(APP_ID, SERVICE_URL, 3600);
        edit(&mut claims);
        sign_bot_token(&claims).expect("sign")
    };

    // Accepted: a valid token, one expired within the clock skew, and an audience list.
    let good = [
        ("valid", valid()),
        (
            "expired 100 s ago",
            sign_bot_token(&bot_claims(APP_ID, SERVICE_URL, -100)).expect("sign"),
        ),
        (
            "audience list",
            signed(&|c| c["aud"] = json!(["someone-else", APP_ID])),
        ),
    ];
    for (what, token) in good {
        let claims = verifier
            .verify(Some(&bearer(&token)))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(claims.service_url.as_deref(), Some(SERVICE_URL), "{what}");
        let endorsed = claims.endorsements.unwrap_or_default();
        assert!(endorsed.iter().any(|c| c == "msteams"), "{what}");
    }

    let payload = encode_json(&bot_claims(APP_ID, SERVICE_URL, 3600));
    let alg_none = {
        let header = encode_json(&json!({ "alg": "none", "typ": "JWT", "kid": BOT_KEY_ID }));
        format!("{header}.{payload}.")
    };
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(BOT_KEY_ID.into());
        let key = jsonwebtoken::EncodingKey::from_secret(b"the public key, say").expect("key");
        jsonwebtoken::encode(&header, &bot_claims(APP_ID, SERVICE_URL, 3600), &key)
            .expect("HS256 token")
    };
    let swapped_claims = {
        let good = valid();
        let mut parts: Vec<&str> = good.split('.').collect();
        let other = encode_json(&bot_claims(APP_ID, "https://smba.evil.example/", 3600));
        parts[1] = &other;
        parts.join(".")
    };
    type Check = fn(&BotAuthError) -> bool;
    let bad: [(&str, String, Check); 9] = [
        ("alg none", alg_none, |e| {
            matches!(e, BotAuthError::Malformed(_))
        }),
        ("HS256", hs256, |e| matches!(e, BotAuthError::Algorithm(_))),
        (
            "expired",
            sign_bot_token(&bot_claims(APP_ID, SERVICE_URL, -3600)).expect("sign"),
            |e| matches!(e, BotAuthError::Refused(TokenRefusal::Expired)),
        ),
        (
            "not yet valid",
            signed(&|c| c["nbf"] = json!(chrono::Utc::now().timestamp() + 3600)),
            |e| matches!(e, BotAuthError::Refused(TokenRefusal::NotYetValid)),
        ),
        (
            "wrong audience",
            signed(&|c| c["aud"] = json!("another-bot")),
            |e| matches!(e, BotAuthError::Refused(TokenRefusal::WrongAudience)),
        ),
        (
            "no audience",
            signed(&|c| {
                c.as_object_mut().map(|claims| claims.remove("aud"));
            }),
            |e| matches!(e, BotAuthError::Refused(TokenRefusal::MissingClaim(c)) if c == "aud"),
        ),
        (
            "wrong issuer",
            signed(&|c| c["iss"] = json!("https://sts.windows.net/someone/")),
            |e| matches!(e, BotAuthError::Refused(TokenRefusal::WrongIssuer)),
        ),
        ("claims swapped after signing", swapped_claims, |e| {
            matches!(e, BotAuthError::Refused(TokenRefusal::BadSignature))
        }),
        ("not a JWT", "abc".into(), |e| {
            matches!(e, BotAuthError::Malformed(_))
        }),
    ];
    for (what, token, expected) in bad {
        let refused = verifier.verify(Some(&bearer(&token))).await;
        match refused {
            Err(e) if expected(&e) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    for missing in [None, Some(""), Some("Basic abc"), Some("Bearer ")] {
        let refused = verifier.verify(missing).await;
        assert!(
            matches!(refused, Err(BotAuthError::Missing)),
            "{missing:?}: {refused:?}"
        );
    }
    // None of the refused tokens made us fetch the keys again.
    assert_eq!(server.fetches(), 1);
}
