use crate::in_flight::InFlight;
use crate::opt_out_watch::{OptOutWatch, Verdict};
use crate::outcome_recorder::OutcomeRecorder;
use crate::presence_retry::{next_try, NextTry, ROUNDS, TRIES_PER_ROUND};
use crate::second_copy::{already_done, may_be_a_copy};
use crate::template_cache::{TemplateCache, TemplateLoadError};
use crate::{Provider, ProviderError, SenderConfig};
use pushfleet_domain::{DeliveryState, SendJob, SendMessage};
use pushfleet_queue::{settle, Delivery, OutgoingMessage, Publisher, Topology, REASON_HEADER};
use pushfleet_ratelimit::{FleetLimiter, RateLimiter};
use pushfleet_store::{Halt, Outcome, Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What outlives a broker connection.
pub(crate) struct Shared<P> {
    pub(crate) provider: P,
    pub(crate) store: Store,
    /// The account quota, shared fleet-wide; `None` when unlimited.
    pub(crate) account_limit: Option<FleetLimiter>,
    /// For per-recipient limits, one reservation per message.
    pub(crate) limiter: RateLimiter,
    pub(crate) templates: TemplateCache,
    pub(crate) recorder: OutcomeRecorder,
    pub(crate) cfg: SenderConfig,
    pub(crate) topology: Topology,
    pub(crate) in_flight: InFlight,
    /// People opted out or deactivated since their jobs were published.
    pub(crate) opt_outs: Arc<OptOutWatch>,
    /// Campaigns paused or cancelled: their jobs are parked or dropped, never sent.
    pub(crate) campaigns: Arc<crate::campaign_watch::CampaignWatch>,
    /// `SENDER_CONCURRENCY` slots: one per job being processed, single or from a batch, held
    /// until its outcome is recorded. It bounds the provider calls a `kill -9` can repeat.
    pub(crate) job_slots: Semaphore,
    /// `SENDER_PROVIDER_CONCURRENCY` permits, one per provider call in flight.
    pub(crate) provider_calls: Semaphore,
    /// Fired on SIGTERM: jobs not started by then are handed back instead of delaying the stop.
    pub(crate) shutdown: CancellationToken,
}

/// Handles the jobs of one broker connection.
pub(crate) struct Worker<P> {
    pub(crate) shared: Arc<Shared<P>>,
    pub(crate) publisher: Publisher,
}

/// What to do with the message once a job is processed.
pub(crate) enum Disposition {
    /// Write this outcome, then ack.
    Record(Outcome),
    /// Already done (a redelivered or duplicate job): ack without sending.
    Skip,
    /// Could not decide now (a dependency is down): put the job back.
    Requeue(String),
}

/// Where a job stands once its message no longer needs to wait for it.
pub(crate) enum JobEnd {
    /// Its outcome is recorded, or there was nothing to do.
    Settled,
    /// The sender is stopping and the job had not started.
    NotStarted,
    /// It must be tried again later (a dependency is down, the outcome was not recorded).
    Retry(String),
}

/// The span of one job, alone in its message or from a batch.
pub(crate) fn job_span<P: Provider>(job: &SendJob, redelivered: bool) -> tracing::Span {
    tracing::info_span!(
        "send_job",
        delivery_id = job.delivery_id,
        channel = %P::CHANNEL,
        attempt = job.attempt,
        redelivered,
    )
}

impl<P: Provider> Worker<P> {
    pub(crate) async fn handle(self: Arc<Self>, delivery: Delivery) {
        let job: SendJob = match SendMessage::from_json(&delivery.data) {
            Ok(SendMessage::One(job)) => *job,
            Ok(SendMessage::Batch(jobs)) => return self.handle_batch(delivery, jobs).await,
            Err(e) => {
                tracing::error!(error = %e, "malformed send job; dead-lettering it");
                settle::reject(&delivery).await;
                return;
            }
        };
        let span = job_span::<P>(&job, delivery.redelivered);
        async move {
            // Held until the outcome is recorded (or the job requeued), so that a second copy
            // in this replica waits and then finds the outcome.
            let (_in_flight, copy_seen_here) = self.shared.in_flight.enter(job.delivery_id).await;
            let check_first = delivery.redelivered || copy_seen_here || may_be_a_copy(&job);
            match self.run_job(&job, check_first).await {
                JobEnd::Settled => {
                    settle::ack(&delivery).await;
                }
                // Nothing was done: back to the queue as it is, without the outage pause.
                JobEnd::NotStarted => {
                    settle::requeue(&delivery).await;
                }
                JobEnd::Retry(reason) => requeue(&delivery, &reason).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Processes one job in a job slot and records its outcome. The caller holds the job's
    /// in-flight guard; `check_first` when the job may be a second copy not checked yet.
    pub(crate) async fn run_job(&self, job: &SendJob, check_first: bool) -> JobEnd {
        let Some(_slot) = self.job_slot().await else {
            return JobEnd::NotStarted;
        };
        let disposition = if job.channel == P::CHANNEL {
            self.process(job, check_first).await
        } else {
            Disposition::Record(Outcome {
                error: Some(format!(
                    "job for {} reached the {} sender",
                    job.channel,
                    P::CHANNEL
                )),
                ..Outcome::new(job.delivery_id, DeliveryState::Failed)
            })
        };
        self.finish(disposition).await
    }

    /// Records what processing decided; the job is settled once its outcome is committed.
    pub(crate) async fn finish(&self, disposition: Disposition) -> JobEnd {
        let channel = P::CHANNEL.as_str();
        match disposition {
            Disposition::Record(outcome) => {
                let state = outcome.state;
                if self.shared.recorder.record(outcome).await {
                    metrics::counter!("pushfleet_sender_outcomes_total",
                        "channel" => channel, "outcome" => state.as_str())
                    .increment(1);
                    JobEnd::Settled
                } else {
                    JobEnd::Retry("outcome could not be recorded".into())
                }
            }
            Disposition::Skip => {
                tracing::info!("already done; not sending again");
                metrics::counter!("pushfleet_sender_skipped_total", "channel" => channel)
                    .increment(1);
                JobEnd::Settled
            }
            Disposition::Requeue(reason) => JobEnd::Retry(reason),
        }
    }

    /// A job slot, or `None` once the sender is stopping.
    async fn job_slot(&self) -> Option<SemaphorePermit<'_>> {
        tokio::select! {
            biased;
            _ = self.shared.shutdown.cancelled() => None,
            slot = self.shared.job_slots.acquire() => slot.ok(),
        }
    }

    async fn process(&self, job: &SendJob, check_first: bool) -> Disposition {
        let shared = &self.shared;
        // Only a job that may be a second copy pays for a read before sending.
        if check_first {
            match shared.store.delivery_progress(&[job.delivery_id]).await {
                Ok(recorded) => {
                    if already_done(job, recorded.get(&job.delivery_id)) {
                        return Disposition::Skip;
                    }
                }
                Err(e) => return store_failure(job, "checking the recorded outcome", e),
            }
        }

        // An opt-out or deactivation made while the job waited in the broker: from memory,
        // kept current by Postgres notices, so the happy path still reads no row.
        match shared.opt_outs.verdict(job.person_id).await {
            Verdict::Send => {}
            Verdict::Skip(reason) => {
                tracing::info!(%reason, "not sent: the recipient opted out after the job was queued");
                return Disposition::Record(Outcome {
                    error: Some(reason),
                    ..Outcome::new(job.delivery_id, DeliveryState::Skipped)
                });
            }
            Verdict::Unknown => {
                return Disposition::Requeue("the opt-out watch has stopped".into())
            }
        }

        let template = match shared.templates.get(&shared.store, job.template_id).await {
            Ok(t) => t,
            Err(TemplateLoadError::Store(StoreError::NotFound(_))) => {
                return fail(job, DeliveryState::Failed, "template not found".into())
            }
            Err(TemplateLoadError::Invalid(_, e)) => {
                return fail(job, DeliveryState::Failed, e.to_string())
            }
            Err(TemplateLoadError::Store(e)) => {
                return store_failure(job, "loading the template", e)
            }
        };
        let mut message = template.render(&job.recipient);
        if let Some(tracking) = &shared.cfg.tracking {
            tracking.apply(&template, job, &mut message);
        }

        if let Some(limit) = &shared.account_limit {
            limit.acquire(shared.provider.cost(job, &message)).await;
        }
        if let Some((key, quota)) = shared.provider.recipient_limit(job) {
            // Without Redis the account fallback already holds this replica back; a
            // per-recipient limit is then best effort.
            if let Err(e) = shared.limiter.acquire(&key, quota).await {
                tracing::warn!(error = %e, "recipient rate limit unavailable");
            }
        }

        // Waiting for a permit is not part of the call: it spends no time of the deadline.
        let Ok(_call) = shared.provider_calls.acquire().await else {
            return Disposition::Requeue("provider calls closed".into());
        };
        // Last, right before the call: a pause made while this job waited for its quota
        // or its permit still stops it.
        match shared.campaigns.halt(job.campaign_id) {
            None => {}
            Some(Halt::Paused) => {
                tracing::info!("parked: the campaign is paused");
                return Disposition::Record(Outcome {
                    parked: true,
                    ..Outcome::new(job.delivery_id, DeliveryState::Pending)
                });
            }
            // Its delivery was ended `cancelled` with the campaign.
            Some(Halt::Cancelled) => return Disposition::Skip,
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(
            shared.provider.call_timeout(),
            shared
                .provider
                .send(job, &message)
                .instrument(tracing::info_span!("provider_call")),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(ProviderError::transient("provider call timed out")),
        };
        metrics::histogram!("pushfleet_provider_call_seconds", "channel" => P::CHANNEL.as_str())
            .record(started.elapsed().as_secs_f64());

        match result {
            Ok(receipt) => Disposition::Record(Outcome {
                new_teams_conversation: receipt.new_teams_conversation,
                provider_message_id: receipt.provider_message_id,
                segments: shared.provider.segments(&message),
                ..Outcome::new(job.delivery_id, DeliveryState::Sent)
            }),
            Err(ProviderError::Unavailable { reason }) => {
                self.reschedule_unavailable(job, reason).await
            }
            Err(ProviderError::Permanent { reason }) => {
                tracing::warn!(%reason, "permanent failure");
                fail(job, DeliveryState::Failed, reason)
            }
            Err(ProviderError::Transient {
                reason,
                retry_after,
            }) => {
                // A 429 (or any answer with Retry-After) pauses the whole account, fleet-wide.
                if let (Some(wait), Some(limit)) = (retry_after, &shared.account_limit) {
                    limit.pause(wait).await;
                }
                self.retry_or_dead_letter(job, reason, retry_after).await
            }
        }
    }

    /// The recipient was not available: record the miss and the next try on seed 001's
    /// schedule (rounds of three tries a day: the pre-calculated time, 10 min later, the next
    /// full hour; the next round the next working day; three rounds), or give up.
    async fn reschedule_unavailable(&self, job: &SendJob, reason: String) -> Disposition {
        let ctx = match self.shared.store.presence_context(job.delivery_id).await {
            Ok(c) => c,
            Err(e) => return store_failure(job, "reading when to try again", e),
        };
        let window = ctx.send_window.as_ref().map(|w| &w.0);
        let tz = match window {
            Some(w) => w.zone_for(Some(&ctx.time_zone)),
            None => pushfleet_domain::parse_time_zone(&ctx.time_zone).unwrap_or(chrono_tz::UTC),
        };
        let next = {
            let mut rng = rand::rng();
            next_try(
                ctx.presence_misses,
                chrono::Utc::now(),
                window,
                tz,
                &mut rng,
            )
        };
        let outcome = match next {
            NextTry::At(at) => {
                tracing::info!(%reason, next_try = %at, "recipient unavailable; rescheduled");
                Outcome {
                    error: Some(format!("recipient unavailable ({reason}); next try {at}")),
                    defer_until: Some(at),
                    presence_miss: true,
                    ..Outcome::new(job.delivery_id, DeliveryState::Retrying)
                }
            }
            NextTry::RoundsExhausted => Outcome {
                error: Some(format!(
                    "not sent: recipient unavailable after {ROUNDS} rounds of {TRIES_PER_ROUND} tries ({reason})"
                )),
                presence_miss: true,
                ..Outcome::new(job.delivery_id, DeliveryState::Failed)
            },
            NextTry::CampaignOver => Outcome {
                error: Some(format!(
                    "not sent: recipient unavailable until the campaign's window ended ({reason})"
                )),
                presence_miss: true,
                ..Outcome::new(job.delivery_id, DeliveryState::Failed)
            },
        };
        Disposition::Record(outcome)
    }

    /// A transient failure: park the job in a delay queue for the next attempt, or, when the
    /// attempts are spent, in the dead-letter queue with the reason. The copy is confirmed by
    /// the broker before this job is acked, so a crash in between leaves two copies (the
    /// second is dropped by the outcome check), never none.
    async fn retry_or_dead_letter(
        &self,
        job: &SendJob,
        reason: String,
        retry_after: Option<Duration>,
    ) -> Disposition {
        let topology = &self.shared.topology;
        let policy = self.shared.cfg.retry;
        if policy.exhausted(job.attempt) {
            let message = match serde_json::to_vec(job) {
                Ok(p) => OutgoingMessage::new(topology.dead_letter_exchange(), String::new(), p)
                    .with_header(REASON_HEADER, reason.clone()),
                Err(e) => return Disposition::Requeue(format!("cannot encode job: {e}")),
            };
            if let Err(e) = self.publisher.publish(message).await {
                return Disposition::Requeue(format!("dead-letter publish failed: {e}"));
            }
            tracing::warn!(%reason, "attempts exhausted; dead-lettered");
            return fail(job, DeliveryState::Dead, reason);
        }
        let backoff = policy.backoff(job.attempt, retry_after, rand::random::<f64>());
        if backoff > Topology::longest_delay() {
            tracing::info!(%reason, delay_s = backoff.as_secs(), "transient failure; retry deferred to the scheduler");
            return defer(job, reason, backoff);
        }
        let tier = Topology::tier_for(backoff);
        let next = SendJob {
            attempt: job.attempt + 1,
            maybe_duplicate: true,
            ..job.clone()
        };
        let message = match serde_json::to_vec(&next) {
            Ok(p) => OutgoingMessage::to_queue(topology.retry_queue(P::CHANNEL, tier), p),
            Err(e) => return Disposition::Requeue(format!("cannot encode job: {e}")),
        };
        if let Err(e) = self.publisher.publish(message).await {
            return Disposition::Requeue(format!("retry publish failed: {e}"));
        }
        tracing::info!(%reason, delay_ms = tier.delay.as_millis() as u64, "transient failure; retry scheduled");
        fail(job, DeliveryState::Retrying, reason)
    }
}

/// A store error while deciding what to do with a job: a transient one (Postgres
/// unreachable, restarting) puts the job back for later; any other fails the same way every
/// time, so the delivery ends `failed` with the reason instead of being requeued forever.
fn store_failure(job: &SendJob, doing: &str, e: StoreError) -> Disposition {
    if e.is_transient() {
        return Disposition::Requeue(format!("{doing}: {e}"));
    }
    tracing::error!(error = %e, doing, "delivery cannot be processed; failing it");
    let reason = match e {
        StoreError::NotFound(what) => format!("not sent: {what} not found while {doing}"),
        e => format!("not sent: {doing} failed: {e}"),
    };
    fail(job, DeliveryState::Failed, reason)
}

fn fail(job: &SendJob, state: DeliveryState, reason: String) -> Disposition {
    Disposition::Record(Outcome {
        error: Some(reason),
        ..Outcome::new(job.delivery_id, state)
    })
}

/// A retry too far ahead for the delay queues: recorded with its due time, and published
/// again by the scheduler when it comes.
fn defer(job: &SendJob, reason: String, wait: Duration) -> Disposition {
    let until = chrono::Duration::from_std(wait)
        .ok()
        .and_then(|d| chrono::Utc::now().checked_add_signed(d))
        .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::hours(1));
    Disposition::Record(Outcome {
        error: Some(reason),
        defer_until: Some(until),
        ..Outcome::new(job.delivery_id, DeliveryState::Retrying)
    })
}

pub(crate) async fn requeue(delivery: &Delivery, reason: &str) {
    tracing::warn!(reason, "requeueing job");
    // A short pause so that a dependency outage does not turn into a hot redelivery loop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    settle::requeue(delivery).await;
}
