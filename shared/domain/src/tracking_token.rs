//! Tracking tokens: what the click redirect (`/r/{token}`) and the open pixel (`/o/{token}`)
//! carry. `base64url-nopad(AES-SIV(key, ad = "pushfleet-tracking-v1", payload))`, the key
//! being HKDF-SHA256 of `TRACKING_SECRET`; the payload is three LEB128 numbers: the
//! delivery id, the campaign's link key, and the event (0 = open, n = a click on the
//! campaign's link n - 1).
//!
//! Why this shape:
//! - unforgeable and opaque: AES-SIV authenticates (its 16-byte synthetic IV is the tag)
//!   and encrypts, so sequential delivery ids are neither guessable nor visible;
//! - deterministic: a retried send carries the same links;
//! - short (about 30 characters), because SMS links are paid per segment;
//! - the redirect needs no database read: the campaign's link key finds its links in the
//!   api's cache, so a click is answered at once, even while Postgres is unreachable.

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;

/// What `TRACKING_SECRET` falls back to in development: public, so forgeable anywhere else.
pub const DEV_SECRET: &str = "pushfleet-dev-tracking-secret";

const ASSOCIATED_DATA: &[u8] = b"pushfleet-tracking-v1";
const KEY_INFO: &[u8] = b"pushfleet tracking token v1: AES-256-SIV key";
/// The tag and at most three 10-byte numbers: anything longer is not ours.
const MAX_PAYLOAD: usize = 16 + 30;

/// What a recipient did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackedEvent {
    /// Loaded the open pixel of an HTML e-mail.
    Open,
    /// Followed the campaign's link at this position ([`crate::tracked_links`]).
    Click { link: u16 },
}

/// One tracked link or pixel of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrackingToken {
    pub delivery_id: i64,
    /// The campaign's `link_key`: a small number the api maps to the campaign and its links.
    pub campaign_key: i64,
    pub event: TrackedEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTrackingToken {
    #[error("not a tracking token")]
    Malformed,
    #[error("tracking token does not authenticate")]
    BadSignature,
}

/// The AES-SIV key, derived once per process (tokens are made per delivery).
#[derive(Clone)]
pub struct TrackingKey {
    key: [u8; 64],
}

impl std::fmt::Debug for TrackingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackingKey(..)")
    }
}

impl TrackingKey {
    pub fn new(secret: &[u8]) -> Self {
        let mut key = [0u8; 64];
        Hkdf::<Sha256>::new(None, secret)
            .expand(KEY_INFO, &mut key)
            .unwrap_or_else(|_| unreachable!("64 bytes is well within HKDF-SHA256's output"));
        Self { key }
    }

    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new(&self.key.into())
    }

    pub fn make(&self, token: TrackingToken) -> String {
        let mut plain = Vec::with_capacity(24);
        // Ids are never negative; the cast keeps a corrupt one round-tripping, not panicking.
        push_varint(&mut plain, token.delivery_id as u64);
        push_varint(&mut plain, token.campaign_key as u64);
        push_varint(
            &mut plain,
            match token.event {
                TrackedEvent::Open => 0,
                TrackedEvent::Click { link } => u64::from(link) + 1,
            },
        );
        let sealed = self
            .cipher()
            .encrypt([ASSOCIATED_DATA], &plain)
            .unwrap_or_else(|_| unreachable!("AES-SIV encrypts any plaintext under one header"));
        URL_SAFE_NO_PAD.encode(sealed)
    }

    pub fn verify(&self, token: &str) -> Result<TrackingToken, InvalidTrackingToken> {
        if token.len() > MAX_PAYLOAD * 4 / 3 + 2 {
            return Err(InvalidTrackingToken::Malformed);
        }
        let sealed = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| InvalidTrackingToken::Malformed)?;
        if sealed.len() <= 16 || sealed.len() > MAX_PAYLOAD {
            return Err(InvalidTrackingToken::Malformed);
        }
        let plain = self
            .cipher()
            .decrypt([ASSOCIATED_DATA], &sealed)
            .map_err(|_| InvalidTrackingToken::BadSignature)?;
        let mut rest = plain.as_slice();
        let delivery = take_varint(&mut rest)?;
        let campaign = take_varint(&mut rest)?;
        let event = take_varint(&mut rest)?;
        if !rest.is_empty() {
            return Err(InvalidTrackingToken::Malformed);
        }
        let event = match event {
            0 => TrackedEvent::Open,
            n => TrackedEvent::Click {
                link: u16::try_from(n - 1).map_err(|_| InvalidTrackingToken::Malformed)?,
            },
        };
        Ok(TrackingToken {
            delivery_id: i64::try_from(delivery).map_err(|_| InvalidTrackingToken::Malformed)?,
            campaign_key: i64::try_from(campaign).map_err(|_| InvalidTrackingToken::Malformed)?,
            event,
        })
    }
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_varint(input: &mut &[u8]) -> Result<u64, InvalidTrackingToken> {
    let mut n: u64 = 0;
    for (i, byte) in input.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(n);
        }
    }
    Err(InvalidTrackingToken::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TrackingKey {
        TrackingKey::new(b"a test secret")
    }

    #[test]
    fn round_trips_every_event() {
        for event in [
            TrackedEvent::Open,
            TrackedEvent::Click { link: 0 },
            TrackedEvent::Click { link: u16::MAX },
        ] {
            for (delivery_id, campaign_key) in [(1, 1), (i64::MAX, i64::MAX), (123_456_789, 42)] {
                let t = TrackingToken {
                    delivery_id,
                    campaign_key,
                    event,
                };
                assert_eq!(key().verify(&key().make(t)), Ok(t));
            }
        }
    }

    #[test]
    fn short_and_opaque() {
        let t = TrackingToken {
            delivery_id: 1_000_000,
            campaign_key: 5_000,
            event: TrackedEvent::Click { link: 3 },
        };
        let made = key().make(t);
        assert!(made.len() <= 32, "{made} is {} long", made.len());
        let next = key().make(TrackingToken {
            delivery_id: 1_000_001,
            ..t
        });
        // Consecutive deliveries share no visible prefix beyond chance.
        assert_ne!(made[..8], next[..8]);
    }

    #[test]
    fn any_changed_character_or_key_is_refused() {
        let made = key().make(TrackingToken {
            delivery_id: 7,
            campaign_key: 9,
            event: TrackedEvent::Open,
        });
        for i in 0..made.len() {
            let mut bytes = made.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert!(key().verify(&changed).is_err(), "changed at {i}");
        }
        assert_eq!(
            TrackingKey::new(b"another secret").verify(&made),
            Err(InvalidTrackingToken::BadSignature)
        );
        for junk in ["", "x", "%%%", &"A".repeat(500)] {
            assert!(key().verify(junk).is_err());
        }
    }
}
