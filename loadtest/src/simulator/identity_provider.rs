//! An organisation's identity provider, as far as the api sees one: OIDC discovery
//! (`{issuer}/.well-known/openid-configuration`), a JWKS, and RS256 tokens for operators
//! with the roles and labels a test or the demo asks for. Entra ID and Keycloak publish the
//! same two documents; only the claims' names differ, and the api's configuration names
//! them.
//!
//! The key is the simulator's fixture key (public: never trust it anywhere else).

use super::bot_identity::{rsa_public_jwk, sign_rs256};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Where the provider lives on the simulator: the issuer is `{base_url}{ISSUER_PATH}`.
pub const ISSUER_PATH: &str = "/idp";
pub const METADATA_PATH: &str = "/idp/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/idp/keys";
/// The `kid` of the provider's signing key.
pub const IDP_KEY_ID: &str = "pushfleet-sim-idp-key";
/// The audience the provider's tokens are for (the api's `OIDC_AUDIENCE`).
pub const IDP_AUDIENCE: &str = "pushfleet-api";

/// An operator's claims: subject, name, e-mail, roles (in `roles`) and, when given,
/// permission labels (in `pushfleet_labels`), valid from now for `lifetime_secs`
/// (negative: already expired).
pub fn operator_claims(
    issuer: &str,
    subject: &str,
    roles: &[&str],
    labels: Option<&[&str]>,
    lifetime_secs: i64,
) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": issuer,
        "aud": IDP_AUDIENCE,
        "sub": subject,
        "name": format!("Operator {subject}"),
        "email": format!("{subject}@example.org"),
        "roles": roles,
        "iat": now.min(now + lifetime_secs) - 60,
        "nbf": now.min(now + lifetime_secs) - 60,
        "exp": now + lifetime_secs,
    });
    if let Some(labels) = labels {
        claims["pushfleet_labels"] = json!(labels);
    }
    claims
}

/// These claims signed RS256 with the provider's key.
pub fn sign_operator_token(claims: &Value) -> anyhow::Result<String> {
    sign_rs256(
        &json!({ "alg": "RS256", "typ": "JWT", "kid": IDP_KEY_ID }),
        claims,
    )
}

fn host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
}

/// `GET /idp/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(headers: HeaderMap) -> Json<Value> {
    let base = format!("http://{}", host(&headers));
    Json(json!({
        "issuer": format!("{base}{ISSUER_PATH}"),
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "authorization_endpoint": format!("{base}{ISSUER_PATH}/authorize"),
        "token_endpoint": format!("{base}{ISSUER_PATH}/token"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["code"],
    }))
}

/// `GET /idp/keys`.
pub(crate) async fn jwks() -> Response {
    match rsa_public_jwk(IDP_KEY_ID) {
        Ok(key) => Json(json!({ "keys": [key] })).into_response(),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e:#}"),
        )
            .into_response(),
    }
}
