//! Unsubscribe tokens: `{delivery_id}.{base64url-nopad(HMAC-SHA256(secret, "unsubscribe:" + delivery_id))}`.
//!
//! The token names the delivery (so the api can find the person and campaign) and carries a
//! MAC, so nobody can unsubscribe someone else by guessing ids. The sender makes them; the
//! api verifies them with the same secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What `UNSUBSCRIBE_SECRET` falls back to when unset: fine on a laptop, forgeable anywhere
/// else (it is public), hence the warning at start.
pub const DEV_SECRET: &str = "pushfleet-dev-unsubscribe-secret";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    #[error("not an unsubscribe token")]
    Malformed,
    #[error("unsubscribe token signature does not match")]
    BadSignature,
}

fn mac_for(secret: &[u8], delivery_id: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"unsubscribe:");
    mac.update(delivery_id.as_bytes());
    mac
}

/// The token for one delivery.
pub fn make(secret: &[u8], delivery_id: i64) -> String {
    let id = delivery_id.to_string();
    let tag = mac_for(secret, &id).finalize().into_bytes();
    format!("{id}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The delivery id a token names, if the token was made with this secret. The comparison is
/// constant-time.
pub fn verify(secret: &[u8], token: &str) -> Result<i64, InvalidToken> {
    let (id, tag) = token.split_once('.').ok_or(InvalidToken::Malformed)?;
    // Only the canonical form `make` produces: "+7" or "007" would name delivery 7 under a
    // different MAC input, which is harmless but pointless to accept.
    let delivery_id: i64 = id.parse().map_err(|_| InvalidToken::Malformed)?;
    if delivery_id.to_string() != id {
        return Err(InvalidToken::Malformed);
    }
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| InvalidToken::Malformed)?;
    mac_for(secret, id)
        .verify_slice(&tag)
        .map_err(|_| InvalidToken::BadSignature)?;
    Ok(delivery_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test secret";

    #[test]
    fn roundtrip() {
        for id in [0, 1, 42, 9_007_199_254_740_993, i64::MAX, -5] {
            let token = make(SECRET, id);
            assert!(token.starts_with(&format!("{id}.")), "{token}");
            assert_eq!(verify(SECRET, &token), Ok(id));
        }
    }

    #[test]
    fn token_is_url_safe_and_stable() {
        let token = make(SECRET, 123);
        assert_eq!(
            token,
            make(SECRET, 123),
            "deterministic: retries carry the same URL"
        );
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
        // 32 bytes of SHA-256 are 43 base64 characters without padding.
        assert_eq!(token.len(), "123.".len() + 43);
    }

    #[test]
    fn another_delivery_id_with_the_same_signature_is_rejected() {
        let token = make(SECRET, 123);
        let (_, tag) = token.split_once('.').expect("a dot");
        assert_eq!(
            verify(SECRET, &format!("124.{tag}")),
            Err(InvalidToken::BadSignature)
        );
    }

    #[test]
    fn a_changed_signature_is_rejected() {
        let token = make(SECRET, 123);
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 1;
        // Flip one character of the tag to another valid base64url character.
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert!(verify(SECRET, &tampered).is_err());
    }

    #[test]
    fn another_secret_is_rejected() {
        let token = make(SECRET, 123);
        assert_eq!(
            verify(b"other secret", &token),
            Err(InvalidToken::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good = make(SECRET, 123);
        let (_, tag) = good.split_once('.').expect("a dot");
        for bad in [
            String::new(),
            "123".to_owned(),
            format!("abc.{tag}"),
            format!("+123.{tag}"),
            format!("0123.{tag}"),
            format!("123.{tag}="),
            "123.!!!".to_owned(),
            format!("123.{}", &tag[..10]),
        ] {
            assert!(verify(SECRET, &bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(verify(SECRET, "123"), Err(InvalidToken::Malformed));
    }
}
