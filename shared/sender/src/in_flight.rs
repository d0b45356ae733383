use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use tokio::sync::watch;

/// How many released deliveries a replica remembers. A copy that arrives after its twin was
/// already processed here must still be checked, and the twin can only have overtaken it
/// while both were in this replica's hands at once: at most `SENDER_PREFETCH` messages of up
/// to `SEND_JOBS_PER_MESSAGE` jobs, plus the retries in the job slots (16 x 50 + 256 by
/// default). 65,536 ids (about 2 MiB) leave a wide margin.
const REMEMBERED: usize = 65_536;

/// The deliveries this replica is working on, and those it finished recently.
///
/// A second copy of a job (re-published after a crash, redelivered, handed back) either
/// arrives while the first is still in flight here (it waits for it, then checks the recorded
/// outcome) or after the first was released (it is remembered, so the copy checks too).
/// Within one replica a delivery is therefore never sent twice, whichever copy comes first:
/// the original is not flagged as a possible duplicate, so without the memory an original
/// handled after its flagged copy had finished would go out again.
pub(crate) struct InFlight {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    active: HashMap<i64, watch::Sender<()>>,
    released: HashSet<i64>,
    /// `released` in release order, so the oldest is forgotten first.
    order: VecDeque<i64>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self::with_capacity(REMEMBERED)
    }
}

/// Held while a delivery is in flight; dropping it releases waiting copies.
pub(crate) struct InFlightGuard<'a> {
    set: &'a InFlight,
    id: i64,
}

impl InFlight {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
        }
    }

    /// Registers `id`; returns the guard and whether another copy was seen here: in flight
    /// (this call waited for it) or finished recently. Either way the caller must read the
    /// recorded outcome before sending.
    pub(crate) async fn enter(&self, id: i64) -> (InFlightGuard<'_>, bool) {
        let mut waited = false;
        loop {
            let mut rx = {
                let mut state = self.lock();
                match state.active.get(&id) {
                    Some(tx) => tx.subscribe(),
                    None => {
                        let seen = waited || state.released.contains(&id);
                        state.active.insert(id, watch::channel(()).0);
                        return (InFlightGuard { set: self, id }, seen);
                    }
                }
            };
            waited = true;
            // Resolves when the first copy's guard drops its sender.
            while rx.changed().await.is_ok() {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.set.lock();
        // Removed and remembered under one lock: a copy entering now sees one or the other.
        state.active.remove(&self.id);
        if state.released.insert(self.id) {
            state.order.push_back(self.id);
            while state.order.len() > self.set.capacity {
                if let Some(oldest) = state.order.pop_front() {
                    state.released.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_second_copy_waits_for_the_first() {
        let set = Arc::new(InFlight::default());
        let (first, seen) = set.enter(7).await;
        assert!(!seen);
        let set2 = set.clone();
        let second = tokio::spawn(async move {
            let (_g, seen) = set2.enter(7).await;
            seen
        });
        // The second copy cannot get in while the first holds the id.
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        drop(first);
        assert!(
            second.await.expect("join"),
            "the second copy knows it waited"
        );
        let (_other, seen) = set.enter(8).await;
        assert!(!seen, "other ids are independent");
    }

    /// The order that made `kill_evaluator` send 46 messages twice: the evaluator's
    /// re-published (flagged) copy of a batch ran to the end before the original (not
    /// flagged) reached its guards, so the original found no copy in flight and sent again.
    #[tokio::test]
    async fn a_copy_arriving_after_its_twin_finished_is_told_so() {
        let set = InFlight::default();
        let (twin, _) = set.enter(7).await;
        drop(twin);
        let (_original, seen) = set.enter(7).await;
        assert!(
            seen,
            "the twin finished here moments ago: check before sending"
        );
    }

    #[tokio::test]
    async fn the_memory_is_bounded_and_forgets_the_oldest() {
        let set = InFlight::with_capacity(3);
        for id in 1..=4 {
            drop(set.enter(id).await.0);
        }
        for id in 2..=4 {
            assert!(set.enter(id).await.1, "{id} is remembered");
        }
        assert!(!set.enter(1).await.1, "the oldest was forgotten");
        let state = set.lock();
        assert!(state.released.len() <= 3 && state.order.len() <= 3);
    }
}
