//! The bot's replies to button presses (seed 004): consumes `bot-replies` (written to the
//! outbox by the api with the opt-in or opt-out each confirms) and posts each reply to the
//! activity it answers, on the sender's Connector client and token, within the account's
//! fleet-wide quota.
//!
//! A reply is marked finished in `bot_replies` after it is posted, and a job whose reply is
//! finished is acked without posting: a redelivered job does not post twice. A crash between
//! the post and the mark, or two copies of one job in flight at once, can still post twice.

use crate::connector_reply::ConnectorReplier;
use crate::TeamsConfig;
use anyhow::Context;
use chrono::Utc;
use pushfleet_domain::BotReplyJob;
use pushfleet_queue::{
    consume_until_shutdown, consumer_tag, settle, ConsumeSettings, Delivery, Topology,
};
use pushfleet_ratelimit::{FleetLimiter, RateLimiter};
use pushfleet_sender::ProviderError;
use pushfleet_store::Store;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A reply not posted by then is given up: a confirmation that late would confuse more than
/// it helps.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);
/// A Connector call that takes longer is abandoned and tried again.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Between tries of a reply that failed transiently (the broker has no delay for requeues).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What became of one reply job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Posted now.
    Posted,
    /// Already posted or given up (a redelivered or repeated job): nothing done.
    AlreadyFinished,
    /// Not posted, for good (a permanent refusal, or too late); recorded with the reason.
    GaveUp(String),
    /// Not posted now; try again.
    Retry(String),
}

/// Posts the bot's replies.
pub struct BotReplies {
    store: Store,
    replier: ConnectorReplier,
    /// The account quota the sends also take from, so that replies and a running campaign
    /// together stay within the Bot Framework's limit.
    account_limit: Option<FleetLimiter>,
}

impl BotReplies {
    /// Connects to Postgres (a small pool of its own) and Redis for the account quota.
    pub async fn connect(cfg: &TeamsConfig, replier: ConnectorReplier) -> anyhow::Result<Self> {
        let common = &cfg.sender.common;
        let store = Store::connect(common.database_url.expose(), 2)
            .await
            .context("connecting to Postgres")?;
        let limiter = RateLimiter::new(common.redis_url.expose(), &common.namespace)
            .context("invalid REDIS_URL")?;
        let account_limit = cfg.sender.quota.map(|quota| {
            FleetLimiter::new(
                limiter,
                cfg.sender.rate_limit_key.clone(),
                quota,
                cfg.sender.fallback_share,
            )
        });
        Ok(Self {
            store,
            replier,
            account_limit,
        })
    }

    /// Posts the reply unless it is already finished.
    pub async fn process(&self, job: &BotReplyJob) -> ReplyOutcome {
        match self.store.bot_reply_finished(&job.activity_id).await {
            Ok(true) => return ReplyOutcome::AlreadyFinished,
            Ok(false) => {}
            Err(e) => return ReplyOutcome::Retry(format!("checking the reply: {e}")),
        }
        if let Some(limit) = &self.account_limit {
            limit.acquire(1).await;
        }
        let result = match tokio::time::timeout(CALL_TIMEOUT, self.replier.reply(job)).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::transient("connector call timed out")),
        };
        match result {
            Ok(id) => {
                self.finish(job, id.as_deref(), None).await;
                ReplyOutcome::Posted
            }
            Err(ProviderError::Permanent { reason }) => {
                self.finish(job, None, Some(&reason)).await;
                ReplyOutcome::GaveUp(reason)
            }
            Err(ProviderError::Transient {
                reason,
                retry_after,
            }) => {
                if let (Some(wait), Some(limit)) = (retry_after, &self.account_limit) {
                    limit.pause(wait).await;
                }
                self.retry_or_give_up(job, reason).await
            }
            Err(e @ ProviderError::Unavailable { .. }) => {
                self.retry_or_give_up(job, e.to_string()).await
            }
        }
    }

    async fn retry_or_give_up(&self, job: &BotReplyJob, reason: String) -> ReplyOutcome {
        let age = (Utc::now() - job.requested_at).to_std().unwrap_or_default();
        if age < GIVE_UP_AFTER {
            return ReplyOutcome::Retry(reason);
        }
        let reason = format!(
            "given up {} min after the button was pressed: {reason}",
            age.as_secs() / 60
        );
        self.finish(job, None, Some(&reason)).await;
        ReplyOutcome::GaveUp(reason)
    }

    /// Marks the reply finished. If that fails the job is still acked: posting again on a
    /// redelivery would be worse than a missing mark.
    async fn finish(&self, job: &BotReplyJob, provider_id: Option<&str>, error: Option<&str>) {
        if let Err(e) = self
            .store
            .finish_bot_reply(&job.activity_id, provider_id, error)
            .await
        {
            tracing::warn!(error = %e, "could not mark the reply finished");
        }
    }

    async fn handle(&self, delivery: Delivery, shutdown: &CancellationToken) {
        let job: BotReplyJob = match serde_json::from_slice(&delivery.data) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "malformed bot reply job; dead-lettering it");
                settle::reject(&delivery).await;
                return;
            }
        };
        let span = tracing::info_span!("bot_reply", activity_id = %job.activity_id,
                                       redelivered = delivery.redelivered);
        async move {
            let outcome = self.process(&job).await;
            let label = match &outcome {
                ReplyOutcome::Posted => "posted",
                ReplyOutcome::AlreadyFinished => "already_finished",
                ReplyOutcome::GaveUp(_) => "gave_up",
                ReplyOutcome::Retry(_) => "retry",
            };
            metrics::counter!("pushfleet_bot_replies_total", "outcome" => label).increment(1);
            match outcome {
                ReplyOutcome::Retry(reason) => {
                    tracing::warn!(%reason, "reply not posted; trying again");
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                    settle::requeue(&delivery).await;
                }
                ReplyOutcome::GaveUp(reason) => {
                    tracing::warn!(%reason, "reply given up");
                    settle::ack(&delivery).await;
                }
                outcome => {
                    tracing::info!(?outcome, "reply done");
                    settle::ack(&delivery).await;
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Consumes `bot-replies` until `shutdown`, reconnecting after broker failures.
    pub async fn run(
        self,
        cfg: &TeamsConfig,
        shutdown: CancellationToken,
        connected: Arc<AtomicBool>,
    ) {
        let common = &cfg.sender.common;
        let topology = Topology::new(common.namespace.clone()).with_dead_letter_retention(
            pushfleet_queue::DeadLetterRetention {
                ttl: common.dead_letter_ttl,
                max_length: common.dead_letter_max_length,
            },
        );
        let settings = ConsumeSettings {
            amqp_url: common.amqp_url.expose().clone(),
            queue: topology.bot_reply_queue(),
            topology,
            consumer_tag: consumer_tag("bot-replies"),
            // Replies are few; a handful at once hides a slow Connector call.
            prefetch: 8,
            concurrency: 4,
            confirm_window: 8,
        };
        let replies = Arc::new(self);
        consume_until_shutdown(settings, shutdown.clone(), connected, |_publisher| {
            let (replies, shutdown) = (replies.clone(), shutdown.clone());
            move |delivery| {
                let (replies, shutdown) = (replies.clone(), shutdown.clone());
                async move { replies.handle(delivery, &shutdown).await }
            }
        })
        .await;
    }
}
