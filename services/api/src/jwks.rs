//! A JWKS (an issuer's signing keys): cached, refreshed by one fetch at a time. Both the
//! Bot Framework's tokens (`bot_auth`) and the organisation's OIDC tokens (`identity::oidc`)
//! are checked with keys from here.
//!
//! The cache sits behind a plain mutex that is never held across an `.await`: a hung key
//! endpoint stalls nobody whose key is cached. A fetch runs in a task of its own, so it ends
//! (within [`Timing::fetch_timeout`]) even when the callers waiting for it give up, and each
//! caller waits at most `fetch_timeout` from when it started waiting. Fetches start at most
//! once per [`Timing::min_refresh_interval`], so tokens naming unknown keys cannot make us
//! hammer the key endpoint: inside that interval they are refused at once.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long fetches may take and how often they may run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The longest a fetch (metadata and JWKS) runs, and the longest a caller waits for one.
    pub fetch_timeout: Duration,
    /// The least time between the starts of two fetches.
    pub min_refresh_interval: Duration,
    /// Keys older than this are refreshed in the background (and used meanwhile).
    pub keys_ttl: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_secs(10),
            min_refresh_interval: Duration::from_secs(30),
            keys_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why `jsonwebtoken` refused a token signed by a known key: the verdicts the Bot
/// Framework check and the operators' OIDC check share.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token issuer is not the one expected")]
    WrongIssuer,
    #[error("token audience is not this installation")]
    WrongAudience,
    #[error("token has no {0} claim")]
    MissingClaim(String),
    #[error("token refused: {0}")]
    Invalid(jsonwebtoken::errors::Error),
}

impl From<jsonwebtoken::errors::Error> for TokenRefusal {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            _ => Self::Invalid(e),
        }
    }
}

/// Why no key was found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// The issuer has keys, none by this id: the token's problem (401).
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The keys could not be fetched: not the caller's fault (503).
    #[error("cannot fetch the signing keys: {0}")]
    Unavailable(String),
}

/// Where the keys are listed.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// An OpenID metadata document whose `jwks_uri` names the JWKS (OIDC discovery).
    Metadata(String),
    /// The JWKS itself.
    Jwks(String),
}

/// A key's family: a token's algorithm must be of its key's family, so that an RSA public
/// key is never used as an HMAC secret or the like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    Ec,
}

impl KeyFamily {
    /// Whether `alg` is an algorithm of this family (HMAC and `none` are of none).
    pub fn signs_with(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyFamily::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyFamily::Ec => matches!(alg, ES256 | ES384),
        }
    }
}

/// A signing key and the channels it may speak for (`endorsements`, if the JWKS says).
pub struct Key {
    pub decoding: DecodingKey,
    pub family: KeyFamily,
    pub endorsements: Option<Vec<String>>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Arc<Key>>,
    /// When the keys were last fetched successfully.
    fetched_at: Option<Instant>,
    /// When the last fetch started, successful or not: the fetch rate limit.
    started_at: Option<Instant>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
    /// The running fetch: its channel closes when the fetch has updated the cache.
    running: Option<watch::Receiver<()>>,
}

impl Cache {
    fn running(&self) -> Option<&watch::Receiver<()>> {
        // A closed channel means the fetch ended, however it ended (even by a panic).
        self.running.as_ref().filter(|rx| rx.has_changed().is_ok())
    }

    /// Why a key is not there: the keys are unavailable (our problem, 503) or the token
    /// names a key the issuer does not have (the caller's, 401).
    fn missing(&self) -> KeyError {
        if !self.keys.is_empty() {
            return KeyError::UnknownKey;
        }
        KeyError::Unavailable(match (&self.last_error, self.running()) {
            (_, Some(_)) => "the key fetch has not answered yet".to_owned(),
            (Some(e), None) => e.clone(),
            (None, None) => "no keys fetched yet".to_owned(),
        })
    }
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
    x: Option<String>,
    y: Option<String>,
    endorsements: Option<Vec<String>>,
}

pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Whose keys, for the logs.
    issuer_name: &'static str,
    source: KeySource,
    http: reqwest::Client,
    timing: Timing,
    cache: Mutex<Cache>,
}

impl KeyStore {
    pub fn new(issuer_name: &'static str, source: KeySource, timing: Timing) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timing.fetch_timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            inner: Arc::new(Inner {
                issuer_name,
                source,
                http,
                timing,
                cache: Mutex::new(Cache::default()),
            }),
        }
    }

    /// The key `kid`. A cached key is answered at once (stale keys are refreshed in the
    /// background); an unknown one waits for a fetch, if one runs or may start.
    pub async fn key(&self, kid: &str) -> Result<Arc<Key>, KeyError> {
        let mut fetched = {
            let mut cache = self.inner.lock();
            if let Some(key) = cache.keys.get(kid).cloned() {
                let ttl = self.inner.timing.keys_ttl;
                if cache.fetched_at.is_none_or(|t| t.elapsed() > ttl) {
                    // Nobody waits for it: the keys we have stay good until it succeeds.
                    let _ = self.inner.fetch(&mut cache);
                }
                return Ok(key);
            }
            match self.inner.fetch(&mut cache) {
                Some(running) => running,
                None => return Err(cache.missing()),
            }
        };
        // Bounded from when this caller started waiting, however long the fetch has run.
        let _ = tokio::time::timeout(self.inner.timing.fetch_timeout, fetched.changed()).await;
        let cache = self.inner.lock();
        cache.keys.get(kid).cloned().ok_or_else(|| cache.missing())
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Cache> {
        // Nothing panics while holding it; should something, the cache is still consistent.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The running fetch, or a new one when the rate limit allows; `None` otherwise.
    fn fetch(self: &Arc<Self>, cache: &mut Cache) -> Option<watch::Receiver<()>> {
        if let Some(running) = cache.running() {
            return Some(running.clone());
        }
        let interval = self.timing.min_refresh_interval;
        if cache.started_at.is_some_and(|t| t.elapsed() < interval) {
            return None;
        }
        cache.started_at = Some(Instant::now());
        let (done, running) = watch::channel(());
        cache.running = Some(running.clone());
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let timeout = inner.timing.fetch_timeout;
            let fetched = tokio::time::timeout(timeout, inner.fetch_keys())
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
            let mut cache = inner.lock();
            match fetched {
                Ok(keys) => {
                    tracing::info!(
                        issuer = inner.issuer_name,
                        keys = keys.len(),
                        "signing keys fetched"
                    );
                    cache.keys = keys;
                    cache.fetched_at = Some(Instant::now());
                    cache.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(issuer = inner.issuer_name, error = %e, "fetching the signing keys failed");
                    cache.last_error = Some(e);
                }
            }
            cache.running = None;
            drop(cache);
            // Wakes the waiters only now that the cache says what the fetch found.
            drop(done);
        });
        Some(running)
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<Key>>, String> {
        let jwks_uri = match &self.source {
            KeySource::Metadata(url) => self.get_json::<OpenIdMetadata>(url).await?.jwks_uri,
            KeySource::Jwks(url) => url.clone(),
        };
        let jwks: Jwks = self.get_json(&jwks_uri).await?;
        let keys: HashMap<_, _> = jwks
            .keys
            .into_iter()
            .filter_map(|k| {
                let (decoding, family) = match k.kty.as_str() {
                    "RSA" => (
                        DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?,
                        KeyFamily::Rsa,
                    ),
                    "EC" => (
                        DecodingKey::from_ec_components(k.x.as_deref()?, k.y.as_deref()?).ok()?,
                        KeyFamily::Ec,
                    ),
                    // Symmetric keys have no place in a public key set.
                    _ => return None,
                };
                let key = Key {
                    decoding,
                    family,
                    endorsements: k.endorsements,
                };
                Some((k.kid?, Arc::new(key)))
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWKS has no usable RSA or EC key with a kid".to_owned());
        }
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let fail = |e: reqwest::Error| format!("{url}: {e}");
        self.http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(fail)?
            .json()
            .await
            .map_err(fail)
    }
}
