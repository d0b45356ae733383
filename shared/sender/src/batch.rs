//! A message that carries several send jobs (`SEND_JOBS_PER_MESSAGE`). Each job goes through
//! the same steps as a single one (job slot, rate limits, provider call, retry, presence,
//! outcome); what the batch adds is when its one message may be acked:
//!
//! 1. The in-flight guards of all its jobs are taken first, in delivery id order (two messages
//!    sharing jobs then cannot wait for each other), and only then are the jobs that may be
//!    second copies checked, with one query: a copy in this replica has either finished (its
//!    outcome is visible, and its id is remembered, so this job is checked even if it is the
//!    unflagged original) or waits for this one.
//! 2. The jobs run concurrently, each in a job slot.
//! 3. The message is acked once every job is settled (outcome recorded, or nothing to do).
//!    Jobs that must be tried again later (a dependency down, the sender stopping before they
//!    started) never make the others run again: if some jobs of the message were settled, the
//!    rest are republished together, flagged as possible duplicates, through the shortest
//!    delay queue (the pause that keeps an outage from becoming a hot loop), and the message
//!    is acked once the broker confirmed that copy. If none was settled, the message itself
//!    is requeued. If the copy cannot be published, the message is requeued whole: its
//!    redelivered copy checks every job and skips the settled ones.

use crate::handler::{job_span, requeue, Disposition, JobEnd, Worker};
use crate::second_copy::{already_done, may_be_a_copy};
use crate::Provider;
use pushfleet_domain::{SendJob, SendMessage};
use pushfleet_queue::{settle, Delivery, OutgoingMessage, Topology};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

impl<P: Provider> Worker<P> {
    pub(crate) async fn handle_batch(self: Arc<Self>, delivery: Delivery, mut jobs: Vec<SendJob>) {
        let span = tracing::info_span!(
            "send_batch",
            channel = %P::CHANNEL,
            jobs = jobs.len(),
            redelivered = delivery.redelivered,
        );
        async move {
            if jobs.is_empty() {
                tracing::error!("empty send batch; dead-lettering it");
                settle::reject(&delivery).await;
                return;
            }
            in_id_order_once_each(&mut jobs);

            let mut entered = Vec::with_capacity(jobs.len());
            for job in &jobs {
                let (guard, copy_seen_here) = self.shared.in_flight.enter(job.delivery_id).await;
                let check = delivery.redelivered || copy_seen_here || may_be_a_copy(job);
                entered.push((job, guard, check));
            }
            let to_check: Vec<i64> = entered
                .iter()
                .filter(|(_, _, check)| *check)
                .map(|(job, _, _)| job.delivery_id)
                .collect();
            // `None`: the batch could not be checked at once; each job checks itself.
            let recorded = if to_check.is_empty() {
                Some(HashMap::new())
            } else {
                match self.shared.store.delivery_progress(&to_check).await {
                    Ok(recorded) => Some(recorded),
                    Err(e) if e.is_transient() => {
                        drop(entered);
                        // Nothing of this message was done yet: it goes back whole.
                        requeue(&delivery, &format!("checking the recorded outcomes: {e}")).await;
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "batch check failed; each job checks its own");
                        None
                    }
                }
            };

            let worker = &*self;
            let recorded = &recorded;
            let ends = futures::future::join_all(entered.into_iter().map(|(job, guard, check)| {
                let span = job_span::<P>(job, delivery.redelivered);
                async move {
                    let end = match recorded {
                        Some(r) if check && already_done(job, r.get(&job.delivery_id)) => {
                            worker.finish(Disposition::Skip).await
                        }
                        Some(_) => worker.run_job(job, false).await,
                        None => worker.run_job(job, check).await,
                    };
                    match end {
                        // A settled job lets a waiting copy in this replica go at once.
                        JobEnd::Settled => (job, None, end),
                        JobEnd::NotStarted | JobEnd::Retry(_) => (job, Some(guard), end),
                    }
                }
                .instrument(span)
            }))
            .await;

            let mut settled = 0usize;
            let mut again = Vec::new();
            let mut guards = Vec::new();
            for (job, guard, end) in ends {
                guards.extend(guard);
                match end {
                    JobEnd::Settled => settled += 1,
                    JobEnd::NotStarted => again.push((job, "stopped before it started".into())),
                    JobEnd::Retry(reason) => again.push((job, reason)),
                }
            }
            if again.is_empty() {
                settle::ack(&delivery).await;
            } else if settled == 0 {
                if self.shared.shutdown.is_cancelled() {
                    settle::requeue(&delivery).await;
                } else {
                    requeue(&delivery, &again[0].1).await;
                }
            } else {
                self.hand_back(&delivery, &again).await;
            }
            drop(guards);
        }
        .instrument(span)
        .await
    }
}

/// Sorts the jobs by delivery id (the order their guards are taken in) and drops a repeated
/// delivery: it runs once, and its guard could not be taken twice.
fn in_id_order_once_each(jobs: &mut Vec<SendJob>) {
    jobs.sort_by_key(|j| j.delivery_id);
    let given = jobs.len();
    jobs.dedup_by_key(|j| j.delivery_id);
    if jobs.len() < given {
        tracing::warn!(
            repeated = given - jobs.len(),
            "a delivery appears twice in one message; processing it once"
        );
    }
}

impl<P: Provider> Worker<P> {
    /// Republishes the jobs of a partly settled batch that must be tried again, as one
    /// message, then acks the original.
    async fn hand_back(&self, delivery: &Delivery, again: &[(&SendJob, String)]) {
        for (job, reason) in again {
            tracing::warn!(delivery_id = job.delivery_id, %reason, "job handed back");
        }
        let copies: Vec<SendJob> = again
            .iter()
            .map(|(job, _)| SendJob {
                maybe_duplicate: true,
                ..(*job).clone()
            })
            .collect();
        let published = match SendMessage::encode(&copies) {
            Ok(payload) => {
                let queue = self
                    .shared
                    .topology
                    .retry_queue(P::CHANNEL, Topology::RETRY_TIERS[0]);
                self.publisher
                    .publish(OutgoingMessage::to_queue(queue, payload))
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match published {
            Ok(()) => {
                let channel = P::CHANNEL.as_str();
                metrics::counter!("pushfleet_sender_handed_back_total", "channel" => channel)
                    .increment(copies.len() as u64);
                settle::ack(delivery).await;
            }
            Err(e) => {
                requeue(
                    delivery,
                    &format!("handing back {} job(s) failed: {e}", copies.len()),
                )
                .await
            }
        }
    }
}
