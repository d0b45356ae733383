//! The secret of an API key: `pf_` and 32 random base62 characters (190 bits), shown once.
//! Stored as its SHA-256, found by it on every request.

use rand::Rng;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "pf_";
const SECRET_CHARS: usize = 32;
/// Characters of the key kept for display (`pf_` and 6 more).
const DISPLAY_CHARS: usize = KEY_PREFIX.len() + 6;

/// A new key: its secret (to show once), the hash to store and the prefix to display.
pub struct GeneratedKey {
    pub secret: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

pub fn generate() -> GeneratedKey {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..SECRET_CHARS)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let secret = format!("{KEY_PREFIX}{body}");
    GeneratedKey {
        hash: hash(&secret),
        prefix: secret[..DISPLAY_CHARS].to_owned(),
        secret,
    }
}

pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether a bearer token looks like one of our keys (else it may be an OIDC token).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX) && token.len() == KEY_PREFIX.len() + SECRET_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_recognisable_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(is_api_key(&a.secret));
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(a.hash, hash(&a.secret));
        assert!(!is_api_key("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
    }
}
