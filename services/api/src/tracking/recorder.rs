//! Writes clicks and opens to Postgres behind the redirect's answer: a request puts its
//! event in a bounded queue and answers at once; one task per replica writes what has
//! gathered in one statement. When Postgres is unreachable the task keeps its batch and
//! tries again, so a blip delays events but loses none; the queue bounds the memory held
//! meanwhile. Shutdown drains the queue before the process ends.

use pushfleet_store::{NewTrackingEvent, Store};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events waiting to be written, at most (about 300 bytes each: some 30 MB). Past it, new
/// events are dropped and counted, never the process's memory grown.
const QUEUE: usize = 100_000;
/// Events written in one statement, at most.
const BATCH: usize = 2_000;
/// How long shutdown keeps trying to write what is left while Postgres is unreachable.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// Where the redirect and the pixel put their events.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<NewTrackingEvent>,
}

/// The writing task; awaited at shutdown, after the listeners stopped.
pub struct RecorderTask {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl Recorder {
    pub fn start(store: Store) -> (Self, RecorderTask) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        let handle = tokio::spawn(write_events(store, rx, stop.clone()));
        (Self { tx }, RecorderTask { stop, handle })
    }

    /// Queues an event; never waits. A full queue (Postgres down for long under heavy
    /// clicking) drops it, counted in `pushfleet_tracking_events_dropped_total`.
    pub fn record(&self, event: NewTrackingEvent) {
        if self.tx.try_send(event).is_err() {
            metrics::counter!("pushfleet_tracking_events_dropped_total").increment(1);
        }
    }
}

impl RecorderTask {
    /// Writes what is queued, then ends.
    pub async fn drain(self) {
        self.stop.cancel();
        if let Err(e) = self.handle.await {
            tracing::error!(error = %e, "the tracking recorder ended abnormally");
        }
    }
}

async fn write_events(
    store: Store,
    mut rx: mpsc::Receiver<NewTrackingEvent>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = stop.cancelled() => break,
        };
        if received == 0 {
            return;
        }
        // A stop while Postgres is down ends the retries here; the drain below has a deadline.
        tokio::select! {
            _ = write_until_done(&store, &mut batch, None) => {}
            _ = stop.cancelled() => break,
        }
    }
    // Stopping: nothing new comes in (the listeners have stopped); write what is queued.
    rx.close();
    let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
    // A batch cut short above is written again: its events' ids make that harmless.
    while !batch.is_empty() || rx.recv_many(&mut batch, BATCH).await > 0 {
        if !write_until_done(&store, &mut batch, Some(deadline)).await {
            let lost = batch.len() + rx.len();
            tracing::error!(
                lost,
                "Postgres unreachable at shutdown: tracking events lost"
            );
            return;
        }
    }
    tracing::info!("tracking recorder drained");
}

/// Writes the batch, trying again with backoff while Postgres refuses, until done or the
/// deadline passes. Empties the batch when written.
async fn write_until_done(
    store: &Store,
    batch: &mut Vec<NewTrackingEvent>,
    deadline: Option<tokio::time::Instant>,
) -> bool {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.record_tracking_events(batch).await {
            Ok(written) => {
                metrics::counter!("pushfleet_tracking_events_written_total").increment(written);
                batch.clear();
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, pending = batch.len(), "writing tracking events failed; trying again");
                if deadline.is_some_and(|d| tokio::time::Instant::now() + backoff > d) {
                    return false;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
