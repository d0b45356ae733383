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

/// Keeps trying until the outcome is committed. Giving up would be worse than waiting: the
/// provider call has been made, and a requeued job would find the delivery still pending
/// and send it again. While Postgres is down the jobs stay unacked; only a crash of this
/// process reopens the (documented) repeat window.
async fn write_with_retries(store: &Store, outcomes: &[Outcome]) -> bool {
    let mut backoff = Duration::from_millis(100);
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        match store.record_outcomes(outcomes).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, attempt, count = outcomes.len(), "recording outcomes failed; retrying");
                metrics::counter!("pushfleet_outcome_write_retries_total").increment(1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
