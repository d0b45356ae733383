//! RFC 8058 one-click unsubscribe headers, the same for both transports.

use crate::EmailConfig;
use anyhow::{bail, Context};
use lettre::message::Mailbox;
use lettre::Address;
use pushfleet_config::Secret;
use pushfleet_domain::unsubscribe_token;

pub(crate) const LIST_UNSUBSCRIBE: &str = "List-Unsubscribe";
pub(crate) const LIST_UNSUBSCRIBE_POST: &str = "List-Unsubscribe-Post";
/// The only value RFC 8058 allows: the URL accepts a POST with this body.
pub(crate) const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

pub(crate) struct ListUnsubscribe {
    /// `UNSUBSCRIBE_BASE_URL` without a trailing slash.
    base_url: String,
    mailto: Address,
    secret: Secret<String>,
}

impl ListUnsubscribe {
    pub(crate) fn new(cfg: &EmailConfig, from: &Mailbox) -> anyhow::Result<Self> {
        let base_url = cfg.unsubscribe_base_url.trim_end_matches('/').to_owned();
        // The value goes into a header verbatim: only a well-formed http(s) URL is let in.
        let parsed = url::Url::parse(&base_url)
            .with_context(|| format!("UNSUBSCRIBE_BASE_URL {base_url:?} is not a URL"))?;
        let plain = base_url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ',' | '<' | '>'));
        if !matches!(parsed.scheme(), "http" | "https") || !plain {
            bail!("UNSUBSCRIBE_BASE_URL {base_url:?} must be a plain http(s) URL");
        }
        let mailto = match &cfg.unsubscribe_mailto {
            Some(m) => m
                .parse()
                .with_context(|| format!("UNSUBSCRIBE_MAILTO {m:?} is not an e-mail address"))?,
            None => format!("unsubscribe@{}", from.email.domain())
                .parse()
                .context("the default UNSUBSCRIBE_MAILTO (from EMAIL_FROM's domain)")?,
        };
        let secret = match &cfg.unsubscribe_secret {
            Some(s) => s.clone(),
            None => {
                tracing::warn!(
                    "UNSUBSCRIBE_SECRET is not set: unsubscribe links are signed with a public \
                     development key and can be forged; set it outside development"
                );
                Secret::new(unsubscribe_token::DEV_SECRET.to_owned())
            }
        };
        Ok(Self {
            base_url,
            mailto,
            secret,
        })
    }

    /// `List-Unsubscribe` for one delivery: the one-click URL first (preferred by receivers),
    /// then the mailto fallback.
    pub(crate) fn header_value(&self, delivery_id: i64) -> String {
        let token = unsubscribe_token::make(self.secret.expose().as_bytes(), delivery_id);
        format!(
            "<{}/u/{token}>, <mailto:{}?subject=unsubscribe>",
            self.base_url, self.mailto
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushfleet_domain::Channel;
    use pushfleet_sender::SenderConfig;

    fn config() -> EmailConfig {
        let sender = SenderConfig::from_env(Channel::Email, 0).expect("sender defaults");
        EmailConfig {
            unsubscribe_base_url: "https://app.example.org/".into(),
            unsubscribe_secret: Some(Secret::new("s3cret".into())),
            ..EmailConfig::defaults(sender)
        }
    }

    fn from() -> Mailbox {
        "News <news@mail.example.org>".parse().expect("mailbox")
    }

    #[test]
    fn url_first_then_mailto_at_the_from_domain() {
        let headers = ListUnsubscribe::new(&config(), &from()).expect("valid");
        let token = unsubscribe_token::make(b"s3cret", 42);
        assert_eq!(
            headers.header_value(42),
            format!(
                "<https://app.example.org/u/{token}>, \
                 <mailto:unsubscribe@mail.example.org?subject=unsubscribe>"
            )
        );
    }

    #[test]
    fn configured_mailto_wins() {
        let cfg = EmailConfig {
            unsubscribe_mailto: Some("optout@example.net".into()),
            ..config()
        };
        let headers = ListUnsubscribe::new(&cfg, &from()).expect("valid");
        assert!(headers
            .header_value(1)
            .ends_with("<mailto:optout@example.net?subject=unsubscribe>"));
    }

    #[test]
    fn only_plain_http_urls_and_addresses_are_accepted() {
        for bad in [
            "ftp://example.org",
            "not a url",
            "https://example.org/a b",
            "https://example.org/>, <https://evil.example",
        ] {
            let cfg = EmailConfig {
                unsubscribe_base_url: bad.into(),
                ..config()
            };
            assert!(ListUnsubscribe::new(&cfg, &from()).is_err(), "{bad:?}");
        }
        let cfg = EmailConfig {
            unsubscribe_mailto: Some("nobody".into()),
            ..config()
        };
        assert!(ListUnsubscribe::new(&cfg, &from()).is_err());
    }
}
