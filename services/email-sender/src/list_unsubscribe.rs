//! RFC 8058 one-click unsubscribe headers, the same for both transports.

use crate::unsubscribe_token;
use crate::EmailConfig;
use anyhow::{bail, Context};
use lettre::message::Mailbox;
use lettre::Address;
use pushfleet_config::Secret;

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
