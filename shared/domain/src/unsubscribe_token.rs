//! Unsubscribe tokens: `v2.{base64url-nopad(AES-SIV(key, ad = "pushfleet-unsubscribe-v2",
//! big-endian delivery id))}`, the key being HKDF-SHA256 of the secret.
//!
//! The token names the delivery (so the api can find the person and campaign) and is
//! authenticated, so nobody can unsubscribe someone else by guessing or editing a link. It is
//! opaque: the delivery id is encrypted, because ids are sequential and one in clear would
//! tell anyone who gets an e-mail how many deliveries were sent. AES-SIV (RFC 5297) is a
//! deterministic AEAD, so a retried send carries the same URL; its 16-byte synthetic IV is
//! the authentication tag. The sender makes tokens; the api verifies them with the same
//! secret.
//!
//! Links already sent in e-mails carry the first form, `{delivery_id}.{base64url-nopad(
//! HMAC-SHA256(secret, "unsubscribe:" + delivery_id))}`, which revealed the id; `verify`
//! still honours it (it stays unforgeable), but `make` produces only `v2.` tokens.

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
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

/// What marks the current format: old tokens start with a decimal id, never with `v`.
const V2_PREFIX: &str = "v2.";
/// Bound into every v2 token, so a ciphertext made for another purpose with the same key
/// (there is none today) could never pass for an unsubscribe token.
const V2_ASSOCIATED_DATA: &[u8] = b"pushfleet-unsubscribe-v2";
/// HKDF's `info`: the AES-SIV key is used for nothing else.
const V2_KEY_INFO: &[u8] = b"pushfleet unsubscribe token v2: AES-256-SIV key";
/// The 16-byte synthetic IV (the tag) followed by the 8 encrypted bytes of the id.
const V2_PAYLOAD_LEN: usize = 16 + 8;

/// AES-256-SIV takes a 64-byte key (a CMAC half and a CTR half), derived from the secret so
/// that it is of any length and never used as the HMAC key of the old format as well.
fn v2_cipher(secret: &[u8]) -> Aes256Siv {
    let mut key = [0u8; 64];
    Hkdf::<Sha256>::new(None, secret)
        .expand(V2_KEY_INFO, &mut key)
        .unwrap_or_else(|_| unreachable!("64 bytes is well within HKDF-SHA256's output limit"));
    Aes256Siv::new(&key.into())
}

fn mac_for(secret: &[u8], delivery_id: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"unsubscribe:");
    mac.update(delivery_id.as_bytes());
    mac
}

/// The token for one delivery: always the same for the same secret and id.
pub fn make(secret: &[u8], delivery_id: i64) -> String {
    let payload = v2_cipher(secret)
        .encrypt([V2_ASSOCIATED_DATA], &delivery_id.to_be_bytes())
        .unwrap_or_else(|_| unreachable!("AES-SIV encrypts any plaintext under one header"));
    format!("{V2_PREFIX}{}", URL_SAFE_NO_PAD.encode(payload))
}

/// The delivery id a token names, if the token was made with this secret, in the current
/// form or the old one. The tag comparisons are constant-time.
pub fn verify(secret: &[u8], token: &str) -> Result<i64, InvalidToken> {
    match token.strip_prefix(V2_PREFIX) {
        Some(payload) => verify_v2(secret, payload),
        None => verify_v1(secret, token),
    }
}

fn verify_v2(secret: &[u8], payload: &str) -> Result<i64, InvalidToken> {
    // The decoder refuses padding and non-canonical trailing bits, so each payload has one
    // spelling and any changed character changes the bytes.
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| InvalidToken::Malformed)?;
    if payload.len() != V2_PAYLOAD_LEN {
        return Err(InvalidToken::Malformed);
    }
    let id = v2_cipher(secret)
        .decrypt([V2_ASSOCIATED_DATA], &payload)
        .map_err(|_| InvalidToken::BadSignature)?;
    let id: [u8; 8] = id.try_into().map_err(|_| InvalidToken::Malformed)?;
    Ok(i64::from_be_bytes(id))
}

/// The first format, `{id}.{mac}`, still in e-mails sent before v2.
fn verify_v1(secret: &[u8], token: &str) -> Result<i64, InvalidToken> {
    let (id, tag) = token.split_once('.').ok_or(InvalidToken::Malformed)?;
    // Only the canonical form the old `make` produced: "+7" or "007" would name delivery 7
    // under a different MAC input, which is harmless but pointless to accept.
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
    use std::collections::HashSet;

    const SECRET: &[u8] = b"test secret";
    const KNOWN_123: &str = "v2.ARfpLXtimc6q0HLA3H6foKE5e0G_pQGi";
    const KNOWN_DEV_1: &str = "v2.31fYcxqbkQEf4Ks9mSHhzULYjyMButFl";
    /// The characters of base64url, and two that are not.
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=";

    /// A token as the first format made it (still in e-mails sent before v2).
    fn v1(secret: &[u8], id: i64) -> String {
        let id = id.to_string();
        let tag = mac_for(secret, &id).finalize().into_bytes();
        format!("{id}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    fn interesting_ids() -> impl Iterator<Item = i64> {
        [
            0,
            1,
            -1,
            -5,
            42,
            255,
            256,
            9_007_199_254_740_993,
            i64::MAX,
            i64::MAX - 1,
            i64::MIN,
        ]
        .into_iter()
        .chain(-300..2000)
    }

    #[test]
    fn roundtrip() {
        for id in interesting_ids() {
            let token = make(SECRET, id);
            assert!(token.starts_with("v2."), "{token}");
            assert_eq!(verify(SECRET, &token), Ok(id), "{token}");
        }
    }

    #[test]
    fn known_answer() {
        // Pinned so that a change to the key derivation, associated data or encoding, which
        // would break every link already sent, cannot pass unnoticed. Checked independently
        // (HKDF-SHA256 and AES-SIV of Python's `cryptography`).
        assert_eq!(make(SECRET, 123), KNOWN_123);
        assert_eq!(make(DEV_SECRET.as_bytes(), 1), KNOWN_DEV_1);
        assert_eq!(verify(SECRET, KNOWN_123), Ok(123));
        assert_eq!(verify(DEV_SECRET.as_bytes(), KNOWN_DEV_1), Ok(1));
    }

    #[test]
    fn token_is_url_safe_and_stable() {
        for id in interesting_ids() {
            let token = make(SECRET, id);
            assert_eq!(
                token,
                make(SECRET, id),
                "deterministic: retries carry the same URL"
            );
            assert!(
                token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
                "{token}"
            );
            // "v2." and 24 bytes (16 of tag, 8 of id) are 32 base64 characters.
            assert_eq!(token.len(), 3 + 32, "{token}");
        }
    }

    #[test]
    fn the_delivery_id_is_not_in_the_token() {
        let mut seen = HashSet::new();
        let mut same_first_char = 0;
        let mut previous: Option<String> = None;
        for id in 1..2000_i64 {
            let token = make(SECRET, id);
            assert!(seen.insert(token.clone()), "duplicate token {token}");
            let payload = URL_SAFE_NO_PAD.decode(&token[3..]).expect("base64url");
            assert!(
                !payload.windows(8).any(|w| w == id.to_be_bytes()),
                "{id} in clear in {token}"
            );
            // Sequential ids in clear (in any encoding, anywhere but at the very end) would
            // give consecutive tokens a common prefix; encrypted, they share one by chance
            // only (1 in 64 for a first character).
            if let Some(previous) = previous.replace(token.clone()) {
                if previous.as_bytes()[3] == token.as_bytes()[3] {
                    same_first_char += 1;
                }
            }
        }
        assert!(same_first_char < 100, "{same_first_char} of 1998 pairs");
        for id in [1_234_567, 9_007_199_254_740_993, i64::MAX] {
            let token = make(SECRET, id);
            assert!(!token.contains(&id.to_string()), "{token}");
        }
    }

    #[test]
    fn any_changed_or_missing_character_is_rejected() {
        for id in [0, 123, i64::MAX] {
            let token = make(SECRET, id);
            for (i, original) in token.char_indices() {
                for c in ALPHABET.chars().filter(|&c| c != original) {
                    let mut tampered = token.clone();
                    tampered.replace_range(i..=i, &c.to_string());
                    let result = verify(SECRET, &tampered);
                    assert!(result.is_err(), "{tampered:?} accepted");
                    // Within the payload, a changed base64url character is a forgery.
                    if i >= 3 && c.is_ascii_alphanumeric() && i < token.len() - 1 {
                        assert_eq!(result, Err(InvalidToken::BadSignature), "{tampered:?}");
                    }
                }
                let mut shorter = token.clone();
                shorter.remove(i);
                assert!(verify(SECRET, &shorter).is_err(), "{shorter:?} accepted");
            }
        }
    }

    #[test]
    fn another_secret_is_rejected() {
        let token = make(SECRET, 123);
        assert_eq!(
            verify(b"other secret", &token),
            Err(InvalidToken::BadSignature)
        );
        assert_eq!(
            verify(DEV_SECRET.as_bytes(), &token),
            Err(InvalidToken::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good = make(SECRET, 123);
        let payload = &good[3..];
        let encode = |bytes: &[u8]| format!("v2.{}", URL_SAFE_NO_PAD.encode(bytes));
        for bad in [
            String::new(),
            "v2".to_owned(),
            "v2.".to_owned(),
            "v2.!!!".to_owned(),
            "v2.=".to_owned(),
            format!("v2.{payload}="),
            format!("v2.{payload}=="),
            format!("v2.{payload}A"),
            format!("v2.{payload}AAAA"),
            format!("v2. {payload}"),
            format!("v2.{payload}\n"),
            format!("v2.{}", &payload[..payload.len() - 1]),
            format!("v2.{}", &payload[..10]),
            format!("v2.{}", payload.replace('-', "+").replace('_', "/")),
            format!("v2..{payload}"),
            format!("v3.{payload}"),
            format!("V2.{payload}"),
            encode(&[]),
            encode(&[0; 16]),
            encode(&[0; 23]),
            encode(&[0; 25]),
        ] {
            // `replace` changes nothing if the payload has no '-' or '_'.
            if bad == good {
                continue;
            }
            assert_eq!(
                verify(SECRET, &bad),
                Err(InvalidToken::Malformed),
                "{bad:?}"
            );
        }
        // The right shape but not made with this secret: forgeries, whichever format.
        assert_eq!(
            verify(SECRET, &format!("2.{payload}")),
            Err(InvalidToken::BadSignature)
        );
        assert_eq!(
            verify(SECRET, &encode(&[0; 24])),
            Err(InvalidToken::BadSignature)
        );
    }

    #[test]
    fn old_tokens_still_verify() {
        // Made by the first format's code (and independently, with Python's hmac).
        assert_eq!(
            verify(SECRET, "123.y57y5kWbzcVZlBlJB8Us1IpzWs65yI59TSj62U0W1zU"),
            Ok(123)
        );
        assert_eq!(
            verify(SECRET, "-5.918Q83Xho0Fc-rOG9mhKMlj8lwuOWPOh5JZN2vHgzAE"),
            Ok(-5)
        );
        assert_eq!(
            verify(
                DEV_SECRET.as_bytes(),
                "1.q7EIy4pX706VLTw8qvvtgvAF4MbKR0wIJ0uXKHynewc"
            ),
            Ok(1)
        );
        for id in interesting_ids() {
            assert_eq!(verify(SECRET, &v1(SECRET, id)), Ok(id));
        }
        assert_eq!(
            verify(b"other secret", &v1(SECRET, 123)),
            Err(InvalidToken::BadSignature)
        );
    }

    #[test]
    fn old_tokens_for_another_delivery_id_are_rejected() {
        let token = v1(SECRET, 123);
        let (_, tag) = token.split_once('.').expect("a dot");
        assert_eq!(
            verify(SECRET, &format!("124.{tag}")),
            Err(InvalidToken::BadSignature)
        );
    }

    #[test]
    fn tampered_old_tokens_are_rejected() {
        let token = v1(SECRET, 123);
        for (i, original) in token.char_indices() {
            for c in ALPHABET.chars().filter(|&c| c != original) {
                let mut tampered = token.clone();
                tampered.replace_range(i..=i, &c.to_string());
                assert!(verify(SECRET, &tampered).is_err(), "{tampered:?} accepted");
            }
        }
    }

    #[test]
    fn malformed_old_tokens_are_rejected() {
        let good = v1(SECRET, 123);
        let (_, tag) = good.split_once('.').expect("a dot");
        for bad in [
            "123".to_owned(),
            format!("abc.{tag}"),
            format!("+123.{tag}"),
            format!("0123.{tag}"),
            format!("123.{tag}="),
            "123.!!!".to_owned(),
        ] {
            assert_eq!(
                verify(SECRET, &bad),
                Err(InvalidToken::Malformed),
                "{bad:?}"
            );
        }
        assert!(verify(SECRET, &format!("123.{}", &tag[..10])).is_err());
    }
}
