use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The deliveries this replica is working on. A second copy of a job (re-published after a
/// crash, or redelivered) that arrives while the first is still in flight here waits for
/// it, then checks the recorded outcome: within one replica a delivery is never sent twice
/// at once.
#[derive(Default)]
pub(crate) struct InFlight {
    entries: Mutex<HashMap<i64, watch::Sender<()>>>,
}

/// Held while a delivery is in flight; dropping it releases waiting copies.
pub(crate) struct InFlightGuard<'a> {
    set: &'a InFlight,
    id: i64,
}

impl InFlight {
    /// Registers `id`; returns the guard and whether another copy was in flight before.
    pub(crate) async fn enter(&self, id: i64) -> (InFlightGuard<'_>, bool) {
        let mut waited = false;
        loop {
            let mut rx = {
                let mut map = self.lock();
                match map.get(&id) {
                    Some(tx) => tx.subscribe(),
                    None => {
                        map.insert(id, watch::channel(()).0);
                        return (InFlightGuard { set: self, id }, waited);
                    }
                }
            };
            waited = true;
            // Resolves when the first copy's guard drops its sender.
            while rx.changed().await.is_ok() {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, watch::Sender<()>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.set.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_second_copy_waits_for_the_first() {
        let set = Arc::new(InFlight::default());
        let (first, waited) = set.enter(7).await;
        assert!(!waited);
        let set2 = set.clone();
        let second = tokio::spawn(async move {
            let (_g, waited) = set2.enter(7).await;
            waited
        });
        // The second copy cannot get in while the first holds the id.
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        drop(first);
        assert!(
            second.await.expect("join"),
            "the second copy knows it waited"
        );
        let (_other, waited) = set.enter(8).await;
        assert!(!waited, "other ids are independent");
    }
}
