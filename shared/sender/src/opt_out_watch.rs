//! Who must not get this sender's jobs any more: people who opted out of its channel or were
//! deactivated after their job was published. Kept in memory, so the hot path reads no
//! Postgres row for it; fed by the notices Postgres sends in the transaction of each change
//! (`pushfleet_store::OPT_OUT_NOTICES`), and reloaded from the tables whenever the listener
//! (re)connects.

use chrono::Utc;
use pushfleet_domain::Channel;
use pushfleet_store::{OptOutNotice, OptOutScope, Store, StoreError, OPT_OUT_NOTICES};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Whether the sets are complete (every change committed so far is in them, give or take
/// the notices in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Starting, or reconnecting after the listener lost its connection.
    CatchingUp,
    Live,
    Stopped,
}

/// What to do with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Send,
    /// Do not send: record the delivery `skipped` with this reason.
    Skip(String),
    /// The watch has stopped (the sender is shutting down): put the job back.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("listening for opt-out notices: {0}")]
    Listen(#[from] sqlx::Error),
    #[error("loading recent opt-outs: {0}")]
    Load(#[from] StoreError),
}

/// People not to send to, with when they were added (entries older than the horizon are
/// dropped: no job can have waited that long).
#[derive(Default)]
struct Sets {
    opted_out: HashMap<Uuid, Instant>,
    deactivated: HashMap<Uuid, Instant>,
    pruned_at: Option<Instant>,
}

impl Sets {
    fn prune(&mut self, horizon: Duration, now: Instant) {
        let keep = |added: &mut Instant| now.saturating_duration_since(*added) < horizon;
        self.opted_out.retain(|_, added| keep(added));
        self.deactivated.retain(|_, added| keep(added));
        self.pruned_at = Some(now);
    }
}

pub(crate) struct OptOutWatch {
    channel: Channel,
    horizon: Duration,
    sets: RwLock<Sets>,
    phase: watch::Sender<Phase>,
}

impl OptOutWatch {
    pub(crate) fn new(channel: Channel, horizon: Duration) -> Self {
        Self {
            channel,
            horizon,
            sets: RwLock::default(),
            phase: watch::Sender::new(Phase::CatchingUp),
        }
    }

    /// Whether `person` may still be sent to. Waits while the watch catches up (at start,
    /// after a lost connection), so that no job goes out on an incomplete set. A job
    /// without a person (published by an earlier release) is sent.
    pub(crate) async fn verdict(&self, person: Option<Uuid>) -> Verdict {
        let Some(person) = person else {
            return Verdict::Send;
        };
        if *self.phase.borrow() != Phase::Live {
            let mut rx = self.phase.subscribe();
            let phase = rx
                .wait_for(|p| *p != Phase::CatchingUp)
                .await
                .map(|p| *p)
                .ok();
            if phase != Some(Phase::Live) {
                return Verdict::Unknown;
            }
        }
        let sets = self.read();
        if sets.deactivated.contains_key(&person) {
            Verdict::Skip("the recipient was deactivated".to_owned())
        } else if sets.opted_out.contains_key(&person) {
            Verdict::Skip(format!("opted out of {}", self.channel))
        } else {
            Verdict::Send
        }
    }

    /// For `/readyz`: not ready while catching up.
    pub(crate) fn is_live(&self) -> bool {
        *self.phase.borrow() == Phase::Live
    }

    /// Listens and reloads until `shutdown`, reconnecting with backoff after failures.
    pub(crate) async fn run(&self, store: Store, shutdown: CancellationToken) {
        // A connection of its own: LISTEN holds it for good, and it must not take one of
        // the pool's.
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(store.pool().connect_options().as_ref().clone());
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.session(&store, &listener_pool) => r,
            };
            if self.is_live() {
                backoff = Duration::from_millis(100);
            }
            self.phase.send_replace(Phase::CatchingUp);
            match result {
                Ok(()) => tracing::warn!("opt-out listener lost its connection; catching up"),
                Err(e) => tracing::warn!(error = %e, "opt-out watch failed; retrying"),
            }
            metrics::counter!("pushfleet_sender_opt_out_reconnects_total").increment(1);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        self.phase.send_replace(Phase::Stopped);
    }

    /// One connection's life: LISTEN first, then load, so that a change committed between
    /// the two is both in the load and in a notice (applied after it, in commit order).
    /// Returns when the connection is lost.
    async fn session(&self, store: &Store, pool: &PgPool) -> Result<(), WatchError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.eager_reconnect(false);
        listener.listen(OPT_OUT_NOTICES).await?;
        self.load(store).await?;
        self.phase.send_replace(Phase::Live);
        while let Some(notification) = listener.try_recv().await? {
            self.apply(notification.payload());
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(channel = %self.channel))]
    async fn load(&self, store: &Store) -> Result<(), WatchError> {
        let horizon = chrono::Duration::from_std(self.horizon).unwrap_or(chrono::Duration::MAX);
        let since = Utc::now()
            .checked_sub_signed(horizon)
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let (opted_out, deactivated) = futures::try_join!(
            store.opted_out_since(self.channel, since),
            store.deactivated_since(since),
        )?;
        let now = Instant::now();
        let mut sets = self.write();
        sets.opted_out = opted_out.into_iter().map(|p| (p, now)).collect();
        sets.deactivated = deactivated.into_iter().map(|p| (p, now)).collect();
        sets.pruned_at = Some(now);
        tracing::info!(
            opted_out = sets.opted_out.len(),
            deactivated = sets.deactivated.len(),
            "recent opt-outs loaded"
        );
        self.report(&sets);
        Ok(())
    }

    fn apply(&self, payload: &str) {
        let notice = match OptOutNotice::parse(payload) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, payload, "ignoring an opt-out notice");
                return;
            }
        };
        let now = Instant::now();
        let mut sets = self.write();
        let set = match notice.scope {
            OptOutScope::Channel(c) if c == self.channel => &mut sets.opted_out,
            OptOutScope::Channel(_) => return,
            OptOutScope::Deactivation => &mut sets.deactivated,
        };
        if notice.opted_out {
            set.insert(notice.person_id, now);
        } else {
            set.remove(&notice.person_id);
        }
        tracing::debug!(person_id = %notice.person_id, scope = ?notice.scope,
            opted_out = notice.opted_out, "opt-out notice applied");
        if sets
            .pruned_at
            .is_none_or(|at| now.saturating_duration_since(at) > Duration::from_secs(3600))
        {
            sets.prune(self.horizon, now);
        }
        self.report(&sets);
    }

    fn report(&self, sets: &Sets) {
        let channel = self.channel.as_str();
        metrics::gauge!("pushfleet_sender_opted_out_people", "channel" => channel, "reason" => "opted_out")
            .set(sets.opted_out.len() as f64);
        metrics::gauge!("pushfleet_sender_opted_out_people", "channel" => channel, "reason" => "deactivated")
            .set(sets.deactivated.len() as f64);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Sets> {
        // The sets are whole after every write; a panic elsewhere cannot leave them torn.
        self.sets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Sets> {
        self.sets.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(person: Uuid, channel: &str, opted_out: bool) -> String {
        serde_json::json!({"person_id": person, "channel": channel, "opted_out": opted_out})
            .to_string()
    }

    #[tokio::test]
    async fn notices_of_the_own_channel_and_deactivations_decide_and_an_opt_in_lifts() {
        let watch = OptOutWatch::new(Channel::Sms, Duration::from_secs(3600));
        watch.phase.send_replace(Phase::Live);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        watch.apply(&notice(a, "sms", true));
        watch.apply(&notice(b, "email", true));
        assert_eq!(
            watch.verdict(Some(a)).await,
            Verdict::Skip("opted out of sms".into())
        );
        assert_eq!(
            watch.verdict(Some(b)).await,
            Verdict::Send,
            "another channel"
        );
        watch.apply(&notice(b, "all", true));
        assert_eq!(
            watch.verdict(Some(b)).await,
            Verdict::Skip("the recipient was deactivated".into())
        );
        watch.apply(&notice(a, "sms", false));
        watch.apply(&notice(b, "all", false));
        assert_eq!(watch.verdict(Some(a)).await, Verdict::Send);
        assert_eq!(watch.verdict(Some(b)).await, Verdict::Send);
        watch.apply("not json");
        assert_eq!(watch.verdict(None).await, Verdict::Send, "an older job");
    }

    #[tokio::test]
    async fn a_verdict_waits_for_the_catch_up_and_a_stopped_watch_gives_none() {
        let watch = std::sync::Arc::new(OptOutWatch::new(Channel::Email, Duration::from_secs(60)));
        let waiting = {
            let watch = watch.clone();
            tokio::spawn(async move { watch.verdict(Some(Uuid::now_v7())).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no verdict before the catch-up");
        watch.phase.send_replace(Phase::Live);
        assert_eq!(waiting.await.expect("join"), Verdict::Send);
        watch.phase.send_replace(Phase::Stopped);
        assert_eq!(watch.verdict(Some(Uuid::now_v7())).await, Verdict::Unknown);
    }

    #[test]
    fn entries_older_than_the_horizon_are_pruned() {
        let mut sets = Sets::default();
        let now = Instant::now();
        let old = now
            .checked_sub(Duration::from_secs(120))
            .expect("a clock two minutes past its origin");
        sets.opted_out.insert(Uuid::now_v7(), old);
        sets.deactivated.insert(Uuid::now_v7(), now);
        sets.prune(Duration::from_secs(60), now);
        assert!(sets.opted_out.is_empty());
        assert_eq!(sets.deactivated.len(), 1);
    }
}
