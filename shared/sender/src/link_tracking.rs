//! Click and open tracking at send time: a rendered message's tracked links become
//! `{TRACKING_BASE_URL}/r/{token}`, and an HTML e-mail gets the open pixel
//! `{TRACKING_BASE_URL}/o/{token}`. The tokens are made here, in memory; the api's public
//! listener answers them (`services/api/src/routes/tracking.rs`).

use pushfleet_config::{env_string, ConfigError};
use pushfleet_domain::{
    tracking_token, Channel, RenderedMessage, SendJob, Template, TrackedEvent, TrackingKey,
    TrackingToken,
};

/// Where tracked links lead and the key their tokens are sealed with.
#[derive(Debug, Clone)]
pub struct LinkTracking {
    /// The api's public listener as recipients reach it, without a trailing slash.
    pub base_url: String,
    pub key: TrackingKey,
}

impl LinkTracking {
    pub fn new(base_url: &str, secret: &str) -> Self {
        Self {
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
            key: TrackingKey::new(secret.as_bytes()),
        }
    }

    /// `TRACKING_BASE_URL` (unset: links are sent as they are) and `TRACKING_SECRET` (the
    /// api's; outside development it must be set, to something other than the public
    /// development value).
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let base = env_string("TRACKING_BASE_URL", "");
        if base.trim().is_empty() {
            tracing::info!("TRACKING_BASE_URL is not set: links are sent untracked");
            return Ok(None);
        }
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "TRACKING_BASE_URL".into(),
                value: base,
                reason: "must be an absolute http or https URL".into(),
            });
        }
        pushfleet_config::refuse_development_defaults(&[(
            "TRACKING_SECRET",
            tracking_token::DEV_SECRET,
        )])?;
        let secret = env_string("TRACKING_SECRET", tracking_token::DEV_SECRET);
        Ok(Some(Self::new(&base, &secret)))
    }

    /// Rewrites the message's tracked links for this job's delivery, and adds the open
    /// pixel to an e-mail's HTML part. A job of an earlier release (no link key) is sent
    /// untracked.
    pub(crate) fn apply(&self, template: &Template, job: &SendJob, message: &mut RenderedMessage) {
        let Some(campaign_key) = job.link_key else {
            return;
        };
        let url = |kind: &str, event: TrackedEvent| {
            let token = self.key.make(TrackingToken {
                delivery_id: job.delivery_id,
                campaign_key,
                event,
            });
            format!("{}/{kind}/{token}", self.base_url)
        };
        let pixel = (job.channel == Channel::Email).then(|| url("o", TrackedEvent::Open));
        template.links().rewrite(
            message,
            &|link| url("r", TrackedEvent::Click { link }),
            pixel.as_deref(),
        );
    }
}
