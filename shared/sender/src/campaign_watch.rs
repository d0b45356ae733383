//! Which campaigns must not send now (paused or cancelled), polled from Postgres every
//! [`POLL`], so a pause reaches every replica of every sender within a fraction of a
//! second. The set is small (paused campaigns, and those cancelled in the last days), so a
//! poll is one indexed read.
//!
//! When Postgres cannot be read the last set is kept: a pause made meanwhile is not seen
//! until it can be (and, Postgres being down, the outcomes of the sends could not be
//! recorded either).

use pushfleet_store::{Halt, Store};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the set is read.
pub const POLL: Duration = Duration::from_millis(250);

#[derive(Default)]
pub(crate) struct CampaignWatch {
    halted: RwLock<HashMap<Uuid, Halt>>,
}

impl CampaignWatch {
    /// Why the campaign's jobs must not be sent now, if they must not.
    pub(crate) fn halt(&self, campaign: Uuid) -> Option<Halt> {
        self.halted
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&campaign)
            .copied()
    }

    /// Reads the set once (at start, before the first job) and then every [`POLL`] until
    /// `shutdown`.
    pub(crate) async fn run(&self, store: Store, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.refresh(&store).await;
        }
    }

    pub(crate) async fn refresh(&self, store: &Store) {
        match store.halted_campaigns().await {
            Ok(halted) => {
                let halted: HashMap<Uuid, Halt> = halted.into_iter().collect();
                *self
                    .halted
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = halted;
            }
            Err(e) => tracing::warn!(error = %e, "reading paused and cancelled campaigns failed"),
        }
    }
}
