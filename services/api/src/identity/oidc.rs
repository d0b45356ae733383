//! Operators sign in with their organisation's identity provider (Entra ID, Keycloak, any
//! OIDC provider): the api takes the provider's JWT as a bearer token and checks it with
//! `jsonwebtoken` against the issuer and audience it is configured with, using a key from
//! the provider's JWKS (found through OIDC discovery, or named directly). The operator's
//! role and permission labels come from claims the configuration names.

use super::permission::Role;
use crate::jwks::{KeyError, KeySource, KeyStore, Timing, TokenRefusal};
use jsonwebtoken::Validation;
use pushfleet_config::{env_string, ConfigError};
use pushfleet_domain::permission_label::{self, PermissionLabel};
use serde_json::{Map, Value};

/// Clock skew allowed on `exp` and `nbf`.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// How operators' tokens are checked. Absent (no `OIDC_ISSUER`): only API keys sign in.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// `OIDC_ISSUER`: the `iss` tokens must carry, e.g.
    /// `https://login.microsoftonline.com/{tenant}/v2.0` or
    /// `https://keycloak.example.org/realms/acme`.
    pub issuer: String,
    /// `OIDC_AUDIENCE`: the `aud` tokens must carry (the app registration's client id).
    pub audience: String,
    /// `OIDC_JWKS_URL`: the provider's keys; by default found through discovery at
    /// `{issuer}/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// `OIDC_ROLES_CLAIM` (default `roles`): the claim listing the operator's roles; a dotted
    /// path reaches into objects (Keycloak: `realm_access.roles`).
    pub roles_claim: String,
    /// `OIDC_LABELS_CLAIM` (default `pushfleet_labels`): the claim listing the operator's
    /// permission labels. Absent from a token: not limited by labels.
    pub labels_claim: String,
    /// `OIDC_ROLE_VALUES` (default: each role's own name): which claim value grants which
    /// role, as `admin=Pushfleet.Admin,organizer=Pushfleet.Organizer,...` (Entra app roles).
    pub role_values: Vec<(Role, String)>,
}

impl OidcConfig {
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let issuer = env_string("OIDC_ISSUER", "");
        if issuer.is_empty() {
            return Ok(None);
        }
        let audience = env_string("OIDC_AUDIENCE", "");
        if audience.is_empty() {
            return Err(ConfigError::Invalid {
                name: "OIDC_AUDIENCE".into(),
                value: String::new(),
                reason: "must be set when OIDC_ISSUER is: tokens for any other app of the \
                         provider would be accepted"
                    .into(),
            });
        }
        let jwks_url = Some(env_string("OIDC_JWKS_URL", "")).filter(|u| !u.is_empty());
        Ok(Some(Self {
            issuer,
            audience,
            jwks_url,
            roles_claim: env_string("OIDC_ROLES_CLAIM", "roles"),
            labels_claim: env_string("OIDC_LABELS_CLAIM", "pushfleet_labels"),
            role_values: role_values(&env_string("OIDC_ROLE_VALUES", ""))?,
        }))
    }
}

/// `admin=A,organizer=B`; empty: each role's own name.
pub fn role_values(raw: &str) -> Result<Vec<(Role, String)>, ConfigError> {
    if raw.trim().is_empty() {
        return Ok(Role::ALL
            .into_iter()
            .map(|r| (r, r.as_str().to_owned()))
            .collect());
    }
    raw.split(',')
        .map(|pair| {
            let invalid = |reason: &str| ConfigError::Invalid {
                name: "OIDC_ROLE_VALUES".into(),
                value: raw.to_owned(),
                reason: reason.to_owned(),
            };
            let (role, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid("each entry is role=claim-value"))?;
            let role = Role::parse(role.trim())
                .ok_or_else(|| invalid("roles are admin, organizer, viewer, operator"))?;
            let value = value.trim();
            if value.is_empty() {
                return Err(invalid("a claim value must not be empty"));
            }
            Ok((role, value.to_owned()))
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("not a JWT: {0}")]
    Malformed(&'static str),
    #[error(
        "token algorithm {0} is not accepted (RS*, PS* or ES* with a key from the provider's JWKS)"
    )]
    Algorithm(String),
    #[error("token signed by a key the identity provider does not list")]
    UnknownKey,
    #[error("the token's {claim} claim holds no pushfleet role")]
    NoRole { claim: String },
    #[error("the token's {claim} claim is not a list of permission labels: {reason}")]
    BadLabels { claim: String, reason: String },
    /// Signed by a known key, and refused.
    #[error(transparent)]
    Refused(#[from] TokenRefusal),
    /// The provider's keys could not be fetched: not the caller's fault (503).
    #[error("cannot fetch the identity provider's signing keys: {0}")]
    KeysUnavailable(String),
}

impl From<KeyError> for OidcError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::UnknownKey => Self::UnknownKey,
            KeyError::Unavailable(why) => Self::KeysUnavailable(why),
        }
    }
}

impl From<jsonwebtoken::errors::Error> for OidcError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        Self::Refused(e.into())
    }
}

/// Who a verified token names.
#[derive(Debug, Clone)]
pub struct OidcIdentity {
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    /// `None`: the token carries no labels claim.
    pub labels: Option<Vec<String>>,
}

pub struct OidcVerifier {
    cfg: OidcConfig,
    keys: KeyStore,
}

impl OidcVerifier {
    pub fn new(cfg: OidcConfig) -> Self {
        Self::with_timing(cfg, Timing::default())
    }

    pub fn with_timing(cfg: OidcConfig, timing: Timing) -> Self {
        let source = match &cfg.jwks_url {
            Some(url) => KeySource::Jwks(url.clone()),
            None => KeySource::Metadata(format!(
                "{}/.well-known/openid-configuration",
                cfg.issuer.trim_end_matches('/')
            )),
        };
        Self {
            keys: KeyStore::new("identity provider", source, timing),
            cfg,
        }
    }

    /// Checks a bearer token and says whom it names.
    pub async fn verify(&self, token: &str) -> Result<OidcIdentity, OidcError> {
        // Only a JWS header naming an asymmetric algorithm and a key may make us look for
        // keys (`alg: none` does not even parse as a header here; HS256 is refused below).
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| OidcError::Malformed("no JWS header"))?;
        let kid = header
            .kid
            .ok_or(OidcError::Malformed("no kid in the header"))?;
        let key = self.keys.key(&kid).await?;
        if !key.family.signs_with(header.alg) {
            return Err(OidcError::Algorithm(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = CLOCK_SKEW_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.cfg.issuer]);
        validation.set_audience(&[&self.cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)?.claims;
        self.identity(&claims)
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<OidcIdentity, OidcError> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text("sub")
            .ok_or_else(|| OidcError::Refused(TokenRefusal::MissingClaim("sub".into())))?;
        let email = text("email").or_else(|| text("upn"));
        let name = text("name")
            .or_else(|| text("preferred_username"))
            .or_else(|| email.clone())
            .unwrap_or_else(|| subject.clone());
        let granted = strings(claim(claims, &self.cfg.roles_claim)).unwrap_or_default();
        // One role per operator: the strongest the provider grants.
        let role = [Role::Admin, Role::Organizer, Role::Operator, Role::Viewer]
            .into_iter()
            .find(|role| {
                self.cfg
                    .role_values
                    .iter()
                    .any(|(r, value)| r == role && granted.iter().any(|g| g == value))
            })
            .ok_or_else(|| OidcError::NoRole {
                claim: self.cfg.roles_claim.clone(),
            })?;
        let labels = match claim(claims, &self.cfg.labels_claim) {
            None => None,
            Some(value) => {
                let bad = |reason: String| OidcError::BadLabels {
                    claim: self.cfg.labels_claim.clone(),
                    reason,
                };
                let raw = strings(Some(value)).ok_or_else(|| bad("not strings".into()))?;
                let parsed = raw
                    .into_iter()
                    .map(PermissionLabel::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(e.to_string()))?;
                Some(permission_label::normalise(parsed).map_err(|e| bad(e.to_string()))?)
            }
        };
        Ok(OidcIdentity {
            issuer: self.cfg.issuer.clone(),
            subject,
            name,
            email,
            role,
            labels,
        })
    }
}

/// The claim at a dotted path (`realm_access.roles`).
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

/// A claim's strings: a list of them, or one.
fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verifier(values: &str) -> OidcVerifier {
        OidcVerifier::new(OidcConfig {
            issuer: "https://idp.example.org/realms/acme".into(),
            audience: "pushfleet".into(),
            jwks_url: Some("http://127.0.0.1:9/jwks".into()),
            roles_claim: "realm_access.roles".into(),
            labels_claim: "pushfleet_labels".into(),
            role_values: role_values(values).expect("role values"),
        })
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn the_strongest_granted_role_and_the_labels_come_from_the_configured_claims() {
        let v = verifier("admin=Pushfleet.Admin,organizer=Pushfleet.Organizer");
        let id = v
            .identity(&claims(json!({
                "sub": "u1", "preferred_username": "ana",
                "realm_access": {"roles": ["offline_access", "Pushfleet.Organizer"]},
                "pushfleet_labels": ["hr", "finance", "hr"],
            })))
            .expect("an identity");
        assert_eq!(id.role, Role::Organizer);
        assert_eq!(id.name, "ana");
        assert_eq!(id.labels, Some(vec!["finance".into(), "hr".into()]));
        let id = v
            .identity(&claims(json!({
                "sub": "u2",
                "realm_access": {"roles": ["Pushfleet.Organizer", "Pushfleet.Admin"]},
            })))
            .expect("an identity");
        assert_eq!(id.role, Role::Admin);
        assert_eq!(id.labels, None, "no labels claim: not limited");
    }

    #[test]
    fn a_token_without_a_role_or_with_bad_labels_names_no_one() {
        let v = verifier("");
        assert!(matches!(
            v.identity(&claims(
                json!({"sub": "u", "realm_access": {"roles": ["admins"]}})
            )),
            Err(OidcError::NoRole { .. })
        ));
        assert!(matches!(
            v.identity(&claims(json!({
                "sub": "u", "realm_access": {"roles": "viewer"}, "pushfleet_labels": [1]
            }))),
            Err(OidcError::BadLabels { .. })
        ));
        assert!(matches!(
            v.identity(&claims(json!({
                "sub": "u", "realm_access": {"roles": "viewer"}, "pushfleet_labels": [" x"]
            }))),
            Err(OidcError::BadLabels { .. })
        ));
    }

    #[test]
    fn role_values_are_checked() {
        assert!(role_values("admin=A,viewer=V").is_ok());
        assert!(role_values("root=A").is_err());
        assert!(role_values("admin").is_err());
        assert!(role_values("admin=").is_err());
    }
}
