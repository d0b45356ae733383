//! Checks the Bot Framework's JWT on activities posted to the bot's messaging endpoint:
//! RS256 signed by a key from the JWKS that the OpenID metadata document names, issued by
//! the Bot Framework, for this bot's app id, within its validity (with clock skew).
//!
//! Keys are cached; an unknown `kid` refreshes them (at most once per
//! [`MIN_REFRESH_INTERVAL`], so forged tokens cannot make us hammer the key endpoint), and
//! they are refreshed anyway after [`KEYS_TTL`].

use crate::config::BotAuthConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Clock skew allowed on `exp` and `nbf`, as the Bot Framework's own SDKs allow.
pub const CLOCK_SKEW_SECS: i64 = 300;
const KEYS_TTL: Duration = Duration::from_secs(24 * 3600);
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BotAuthError {
    #[error("missing Authorization: Bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token algorithm {0} is not RS256")]
    Algorithm(String),
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token issuer is not the Bot Framework")]
    WrongIssuer,
    #[error("token audience is not this bot")]
    WrongAudience,
    /// The keys could not be fetched: not the caller's fault.
    #[error("cannot fetch the Bot Framework signing keys: {0}")]
    KeysUnavailable(String),
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct BotClaims {
    pub service_url: Option<String>,
    /// Channels the signing key may speak for (`endorsements` in the JWKS), if it says.
    pub endorsements: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    #[serde(rename = "serviceurl", alias = "serviceUrl")]
    service_url: Option<String>,
}

#[derive(Deserialize)]
struct OpenIdMetadata {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    endorsements: Option<Vec<String>>,
}

struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
    endorsements: Option<Vec<String>>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, RsaKey>,
    fetched_at: Option<Instant>,
}

pub struct BotTokenVerifier {
    cfg: BotAuthConfig,
    http: reqwest::Client,
    cache: Mutex<KeyCache>,
}

impl BotTokenVerifier {
    pub fn new(cfg: BotAuthConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            cfg,
            http,
            cache: Mutex::new(KeyCache::default()),
        }
    }

    /// Verifies the `Authorization` header's value; `now` is Unix seconds.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        now: i64,
    ) -> Result<BotClaims, BotAuthError> {
        let token = authorization
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(BotAuthError::Missing)?;
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BotAuthError::Malformed("not three dot-separated parts"));
        };
        let header: Header = decode_json(h64).ok_or(BotAuthError::Malformed("header"))?;
        if header.alg != "RS256" {
            return Err(BotAuthError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(BotAuthError::Malformed("no kid"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| BotAuthError::Malformed("signature"))?;
        let signed = &token[..h64.len() + 1 + p64.len()];
        let endorsements = self.check_signature(&kid, signed, &signature).await?;

        let claims: Claims = decode_json(p64).ok_or(BotAuthError::Malformed("claims"))?;
        if claims.iss.as_deref() != Some(self.cfg.issuer.as_str()) {
            return Err(BotAuthError::WrongIssuer);
        }
        let audience_ok = match &claims.aud {
            Some(Audience::One(a)) => *a == self.cfg.app_id,
            Some(Audience::Many(all)) => all.contains(&self.cfg.app_id),
            None => false,
        };
        if !audience_ok {
            return Err(BotAuthError::WrongAudience);
        }
        match claims.exp {
            Some(exp) if exp + CLOCK_SKEW_SECS >= now => {}
            _ => return Err(BotAuthError::Expired),
        }
        if claims.nbf.is_some_and(|nbf| nbf - CLOCK_SKEW_SECS > now) {
            return Err(BotAuthError::NotYetValid);
        }
        Ok(BotClaims {
            service_url: claims.service_url,
            endorsements,
        })
    }

    /// Checks the signature with key `kid`, fetching the keys when it is unknown.
    async fn check_signature(
        &self,
        kid: &str,
        signed: &str,
        signature: &[u8],
    ) -> Result<Option<Vec<String>>, BotAuthError> {
        let mut cache = self.cache.lock().await;
        let stale = cache.fetched_at.is_none_or(|t| t.elapsed() > KEYS_TTL);
        let may_refresh = cache
            .fetched_at
            .is_none_or(|t| t.elapsed() > MIN_REFRESH_INTERVAL);
        if stale || (!cache.keys.contains_key(kid) && may_refresh) {
            match self.fetch_keys().await {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "Bot Framework signing keys fetched");
                    cache.keys = keys;
                    cache.fetched_at = Some(Instant::now());
                }
                // Keys we have stay good until a fetch succeeds.
                Err(e) if !cache.keys.is_empty() => {
                    tracing::warn!(error = %e, "refreshing the Bot Framework keys failed")
                }
                Err(e) => return Err(e),
            }
        }
        let key = cache.keys.get(kid).ok_or(BotAuthError::UnknownKey)?;
        ring::signature::RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            signature,
        )
        .map_err(|_| BotAuthError::BadSignature)?;
        Ok(key.endorsements.clone())
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, RsaKey>, BotAuthError> {
        let unavailable = |e: reqwest::Error| BotAuthError::KeysUnavailable(e.to_string());
        let metadata: OpenIdMetadata = self
            .http
            .get(&self.cfg.openid_metadata_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let jwks: Jwks = self
            .http
            .get(&metadata.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        Ok(jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA")
            .filter_map(|k| {
                let n = URL_SAFE_NO_PAD.decode(k.n?).ok()?;
                let e = URL_SAFE_NO_PAD.decode(k.e?).ok()?;
                Some((
                    k.kid?,
                    RsaKey {
                        n,
                        e,
                        endorsements: k.endorsements,
                    },
                ))
            })
            .collect())
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}
