use pushfleet_store::{Outcome, Store};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

type Entry = (Outcome, oneshot::Sender<bool>);

/// Collects outcomes from all in-flight jobs and writes them in batches (one UPDATE per batch
/// instead of one per message). Each caller learns whether its outcome is committed, and acks
/// its message only then.
#[derive(Clone)]
pub(crate) struct OutcomeRecorder {
    tx: mpsc::Sender<Entry>,
}

impl OutcomeRecorder {
    /// Starts the writer task; it ends when every `OutcomeRecorder` clone is dropped, after
    /// writing what it holds.
    pub(crate) fn spawn(store: Store, batch: usize, flush: Duration) -> (Self, JoinHandle<()>) {
        let batch = batch.max(1);
        let (tx, rx) = mpsc::channel(batch * 4);
        let task = tokio::spawn(write_batches(store, rx, batch, flush));
        (Self { tx }, task)
    }

    /// Returns true once the outcome is committed; false only if the writer is gone.
    pub(crate) async fn record(&self, outcome: Outcome) -> bool {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send((outcome, done_tx)).await.is_err() {
            return false;
        }
        done_rx.await.unwrap_or(false)
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Entry>, batch: usize, flush: Duration) {
    while let Some(first) = rx.recv().await {
        let mut entries = vec![first];
        let deadline = Instant::now() + flush;
        while entries.len() < batch {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(e) => entries.push(e),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let outcomes: Vec<Outcome> = entries.iter().map(|(o, _)| o.clone()).collect();
        let committed = write_with_retries(&store, &outcomes).await;
        metrics::counter!("pushfleet_outcome_batches_total").increment(1);
        for (_, done) in entries {
            let _ = done.send(committed);
        }
    }
}

/// Keeps trying until the outcomes are committed. Giving up would be worse than waiting: the
/// provider call has been made, and a requeued job would find the delivery still pending
/// and send it again. While Postgres is down the jobs stay unacked; only a crash of this
/// process reopens the (documented) repeat window.
///
/// A failure that is not transient (the statement itself is refused) would fail the same
/// way forever and hold every job of this replica behind it, so the batch is written one
/// outcome at a time instead, and an outcome refused on its own is recorded in its
/// plainest form: its state and why the rest was left out.
async fn write_with_retries(store: &Store, outcomes: &[Outcome]) -> bool {
    let mut backoff = Duration::from_millis(100);
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        match store.record_outcomes(outcomes).await {
            Ok(_) => return true,
            Err(e) if !e.is_transient() => {
                tracing::error!(error = %e, count = outcomes.len(), "outcome batch refused; writing its outcomes one by one");
                metrics::counter!("pushfleet_outcome_batches_split_total").increment(1);
                for outcome in outcomes {
                    write_one(store, outcome).await;
                }
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, count = outcomes.len(), "recording outcomes failed; retrying");
                metrics::counter!("pushfleet_outcome_write_retries_total").increment(1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes one outcome: as it is, or, if Postgres refuses it, with only its state and the
/// refusal as the error. Retries transient failures until it is written. If even the plain
/// form is refused, the outcome is logged and given up: one row must not stop the replica.
async fn write_one(store: &Store, outcome: &Outcome) {
    let mut current = outcome.clone();
    let mut stripped = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        match store.record_outcomes(std::slice::from_ref(&current)).await {
            Ok(_) => return,
            Err(e) if !e.is_transient() && !stripped => {
                tracing::error!(delivery_id = outcome.delivery_id, error = %e, "outcome refused; recording its state only");
                metrics::counter!("pushfleet_outcomes_stripped_total").increment(1);
                current = plain(outcome, &e);
                stripped = true;
            }
            Err(e) if !e.is_transient() => {
                tracing::error!(delivery_id = outcome.delivery_id, state = %outcome.state.as_str(), error = %e,
                    "outcome refused even in its plainest form; not recorded");
                metrics::counter!("pushfleet_outcomes_unrecorded_total").increment(1);
                return;
            }
            Err(e) => {
                tracing::warn!(delivery_id = outcome.delivery_id, error = %e, "recording an outcome failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The outcome reduced to its state (a `Retrying` one keeps its due time, or it would be
/// neither queued nor due).
fn plain(outcome: &Outcome, refused: &pushfleet_store::StoreError) -> Outcome {
    Outcome {
        error: Some(format!("outcome recorded without its details: {refused}")),
        defer_until: outcome.defer_until,
        presence_miss: outcome.presence_miss,
        parked: outcome.parked,
        ..Outcome::new(outcome.delivery_id, outcome.state)
    }
}
