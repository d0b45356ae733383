//! Checks the Bot Framework's JWT on activities posted to the bot's messaging endpoint:
//! RS256 signed by a key from the JWKS that the OpenID metadata document names, issued by
//! the Bot Framework, for this bot's app id, within its validity (with clock skew). The
//! token itself is checked by `jsonwebtoken`; [`keys`] fetches and caches the keys.

#[cfg(test)]
mod tests;

use crate::config::BotAuthConfig;
pub use crate::jwks::Timing;
use crate::jwks::{KeyError, KeySource, KeyStore, TokenRefusal};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

/// Clock skew allowed on `exp` and `nbf`, as the Bot Framework's own SDKs allow.
pub const CLOCK_SKEW_SECS: u64 = 300;

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
    /// Signed by a known key, and refused.
    #[error(transparent)]
    Refused(#[from] TokenRefusal),
    /// The keys could not be fetched: not the caller's fault.
    #[error("cannot fetch the Bot Framework signing keys: {0}")]
    KeysUnavailable(String),
}

impl From<KeyError> for BotAuthError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::UnknownKey => Self::UnknownKey,
            KeyError::Unavailable(why) => Self::KeysUnavailable(why),
        }
    }
}

impl From<jsonwebtoken::errors::Error> for BotAuthError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        Self::Refused(e.into())
    }
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct BotClaims {
    pub service_url: Option<String>,
    /// Channels the signing key may speak for (`endorsements` in the JWKS), if it says.
    pub endorsements: Option<Vec<String>>,
}

/// The claims `jsonwebtoken` leaves to us (it checks `iss`, `aud`, `exp` and `nbf`).
#[derive(Deserialize)]
struct Claims {
    #[serde(rename = "serviceurl", alias = "serviceUrl")]
    service_url: Option<String>,
}

pub struct BotTokenVerifier {
    validation: Validation,
    keys: KeyStore,
}

impl BotTokenVerifier {
    pub fn new(cfg: BotAuthConfig) -> Self {
        Self::with_timing(cfg, Timing::default())
    }

    pub fn with_timing(cfg: BotAuthConfig, timing: Timing) -> Self {
        // Explicitly, so that decoding cannot panic should another crate ever enable the
        // aws_lc_rs backend too (with both, jsonwebtoken picks none). Err: already installed.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = CLOCK_SKEW_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.app_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Self {
            validation,
            keys: KeyStore::new(
                "Bot Framework",
                KeySource::Metadata(cfg.openid_metadata_url),
                timing,
            ),
        }
    }

    /// Verifies the `Authorization` header's value.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<BotClaims, BotAuthError> {
        let token = authorization
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(BotAuthError::Missing)?;
        // Only RS256 tokens naming a key may make us look for keys (`alg: none` does not
        // even parse as a header here).
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| BotAuthError::Malformed("not a JWT with a JWS header"))?;
        if header.alg != Algorithm::RS256 {
            return Err(BotAuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(BotAuthError::Malformed("no kid"))?;
        let key = self.keys.key(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)?.claims;
        Ok(BotClaims {
            service_url: claims.service_url,
            endorsements: key.endorsements.clone(),
        })
    }
}
