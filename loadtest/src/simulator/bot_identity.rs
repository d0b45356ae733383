//! The Bot Framework's side of inbound activities: the OpenID metadata document and JWKS
//! that bots fetch (the paths of `login.botframework.com`), and RS256 tokens signed with the
//! matching key, so tests can post activities to a bot exactly as the Bot Framework does.
//!
//! The key pair is a fixed test key committed in `loadtest/fixtures/` (public, like every
//! secret of the simulator): never trust it anywhere else.

use std::sync::OnceLock;

use anyhow::{anyhow, Context as _};
use axum::http::{header, HeaderMap};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

pub const OPENID_METADATA_PATH: &str = "/v1/.well-known/openidconfiguration";
pub const JWKS_PATH: &str = "/v1/.well-known/keys";
/// The `kid` of the simulator's signing key.
pub const BOT_KEY_ID: &str = "pushfleet-sim-bot-key";
/// The issuer of Bot Framework tokens.
pub const BOT_ISSUER: &str = "https://api.botframework.com";

const KEY_DER: &[u8] = include_bytes!("../../fixtures/bot_signing_key.pk8.der");

fn key_pair() -> anyhow::Result<&'static RsaKeyPair> {
    static KEY: OnceLock<Result<RsaKeyPair, String>> = OnceLock::new();
    KEY.get_or_init(|| RsaKeyPair::from_pkcs8(KEY_DER).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| anyhow!("the simulator's bot signing key does not load: {e}"))
}

/// A JWT with these claims, signed RS256 by the simulator's key (`kid` = [`BOT_KEY_ID`]).
pub fn sign_bot_token(claims: &Value) -> anyhow::Result<String> {
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": BOT_KEY_ID, "x5t": BOT_KEY_ID });
    sign_rs256(&header, claims)
}

/// A JWT with this header and these claims, signed RS256 by the simulator's fixture key
/// (whatever `alg` and `kid` the header says: tests forge headers with it).
pub fn sign_rs256(header: &Value, claims: &Value) -> anyhow::Result<String> {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let key = key_pair()?;
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| anyhow!("RS256 signing failed"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The claims of a Bot Framework token for bot `app_id` about an activity from
/// `service_url`, valid from now for `lifetime_secs` (negative: already expired).
pub fn bot_claims(app_id: &str, service_url: &str, lifetime_secs: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": BOT_ISSUER,
        "aud": app_id,
        "serviceurl": service_url,
        "nbf": now.min(now + lifetime_secs) - 60,
        "iat": now.min(now + lifetime_secs) - 60,
        "exp": now + lifetime_secs,
    })
}

/// A valid token for bot `app_id` about an activity from `service_url`.
pub fn bot_token(app_id: &str, service_url: &str) -> anyhow::Result<String> {
    sign_bot_token(&bot_claims(app_id, service_url, 3600))
}

/// `GET /v1/.well-known/openidconfiguration`: names the key set on this listener.
pub(crate) async fn openid_metadata(headers: HeaderMap) -> Json<Value> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    Json(json!({
        "issuer": BOT_ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("http://{host}{JWKS_PATH}"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }))
}

/// The JWKS document: the public half of the signing key (for tests serving it themselves).
pub fn bot_jwks() -> anyhow::Result<Value> {
    Ok(json!({ "keys": [public_jwk()?] }))
}

/// `GET /v1/.well-known/keys`: the public half of the signing key.
pub(crate) async fn jwks() -> axum::response::Response {
    use axum::response::IntoResponse;
    match bot_jwks() {
        Ok(keys) => Json(keys).into_response(),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e:#}"),
        )
            .into_response(),
    }
}

fn public_jwk() -> anyhow::Result<Value> {
    let mut jwk = rsa_public_jwk(BOT_KEY_ID)?;
    jwk["x5t"] = json!(BOT_KEY_ID);
    jwk["endorsements"] = json!(["msteams", "emulator", "webchat"]);
    Ok(jwk)
}

/// The public half of the fixture key as a JWK with this `kid`.
pub fn rsa_public_jwk(kid: &str) -> anyhow::Result<Value> {
    let key = key_pair().context("the simulator's signing key")?;
    let public = key.public_key();
    let components: ring::rsa::PublicKeyComponents<Vec<u8>> = public.into();
    Ok(json!({
        "kty": "RSA",
        "use": "sig",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(&components.n),
        "e": URL_SAFE_NO_PAD.encode(&components.e),
    }))
}
