//! Twilio's request signature (`X-Twilio-Signature`): Base64(HMAC-SHA1(auth token, the full
//! URL followed by every POST parameter's name and value, sorted by name, no separators)).
//! Used by the api to verify callbacks and by the simulator to sign them.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The signature Twilio sends for a form-encoded POST to `url` with `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Sort by name, then value, so repeated names sign deterministically.
    sorted.sort();
    let mut data = String::from(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` is the one Twilio would send; compared in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let expected = sign(auth_token, url, params);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    /// The voice-request vector from Twilio's own twilio-ruby test suite.
    #[test]
    fn matches_twilios_reference_vector() {
        let params: Vec<(String, String)> = [
            ("ToState", "California"),
            ("CalledState", "California"),
            ("Direction", "inbound"),
            ("FromState", "CA"),
            ("AccountSid", "ACba8bc05eacf94afdae398e642c9cc32d"),
            ("Caller", "+14153595711"),
            ("CallerZip", "94108"),
            ("CallerCountry", "US"),
            ("From", "+14153595711"),
            ("FromCity", "SAN FRANCISCO"),
            ("CallerCity", "SAN FRANCISCO"),
            ("To", "+14157669926"),
            ("FromZip", "94108"),
            ("FromCountry", "US"),
            ("ToCity", ""),
            ("CallStatus", "ringing"),
            ("CalledCity", ""),
            ("CallerState", "CA"),
            ("CalledZip", ""),
            ("ToZip", ""),
            ("ToCountry", "US"),
            ("CallSid", "CA136d09cd59a3c0ec8dbff44da5c03f31"),
            ("CalledCountry", "US"),
            ("Called", "+14157669926"),
            ("ApiVersion", "2010-04-01"),
            ("ApplicationSid", "AP44efecad51364e80b133bb7c07eb8204"),
        ]
        .into_iter()
        .map(|(k, v)| p(k, v))
        .collect();
        let url = "http://twiliotests.heroku.com/validate/voice";
        let token = "2bd9e9638872de601313dc77410d3b23";
        assert_eq!(sign(token, url, &params), "oVb2kXoVy8GEfwBDjR8bk/ZZ6eA=");
        assert!(verify(token, url, &params, "oVb2kXoVy8GEfwBDjR8bk/ZZ6eA="));
    }

    #[test]
    fn rejects_a_tampered_request() {
        let params = [p("MessageSid", "SM1"), p("MessageStatus", "delivered")];
        let sig = sign("token", "https://api.example/cb", &params);
        let tampered = [p("MessageSid", "SM1"), p("MessageStatus", "failed")];
        assert!(!verify("token", "https://api.example/cb", &tampered, &sig));
        assert!(!verify("other", "https://api.example/cb", &params, &sig));
    }
}
