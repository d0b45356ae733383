use crate::SchedulerConfig;
use anyhow::Context;
use pushfleet_queue::{Broker, OutgoingMessage, Publisher, QueueError, Topology};
use pushfleet_store::{Store, StoreError};
use pushfleet_telemetry::{serve_admin, supervise, Readiness};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
enum TickError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot encode outbox payload: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the broker connection is closed")]
    Disconnected,
}

/// Runs the scheduler until `shutdown` fires.
pub async fn run(cfg: SchedulerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = &cfg.common;
    let store = Store::connect(common.database_url.expose(), common.db_pool_size)
        .await
        .context("connecting to Postgres")?;
    let topology = Topology::new(common.namespace.clone()).with_dead_letter_retention(
        pushfleet_queue::DeadLetterRetention {
            ttl: common.dead_letter_ttl,
            max_length: common.dead_letter_max_length,
        },
    );
    let connected = Arc::new(AtomicBool::new(false));
    let readiness = Readiness::new()
        .with_check("postgres", store.readiness_check())
        .with_check(
            "rabbitmq",
            pushfleet_queue::connected_check(connected.clone()),
        );
    let admin_shutdown = CancellationToken::new();
    let (_, admin) = serve_admin(common.admin_addr, readiness, admin_shutdown.clone())
        .await
        .context("binding the admin port")?;

    supervise("scheduler", shutdown.clone(), || {
        let (store, topology, shutdown, connected, cfg) = (
            store.clone(),
            topology.clone(),
            shutdown.clone(),
            connected.clone(),
            cfg.clone(),
        );
        async move {
            let broker = Broker::connect(cfg.common.amqp_url.expose(), topology.clone()).await?;
            let publisher = broker.publisher(256).await?;
            connected.store(true, Ordering::Relaxed);
            let mut ticker = tokio::time::interval(cfg.tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let result = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    _ = ticker.tick() => {}
                }
                // A dead connection is noticed here, within a tick, not at the next publish
                // (which may be long off): `/readyz` tells the truth and the reconnect starts.
                if !broker.is_connected() {
                    break Err(TickError::Disconnected);
                }
                if let Err(e) = tick(&store, &publisher, &topology, &cfg).await {
                    break Err(e);
                }
            };
            connected.store(false, Ordering::Relaxed);
            broker.close().await;
            result
        }
    })
    .await;

    admin_shutdown.cancel();
    let _ = admin.await;
    tracing::info!("scheduler stopped cleanly");
    Ok(())
}

/// One round: claim what is due (writing outbox rows in the same statement), then relay the
/// outbox to the broker.
#[tracing::instrument(skip_all)]
async fn tick(
    store: &Store,
    publisher: &Publisher,
    topology: &Topology,
    cfg: &SchedulerConfig,
) -> Result<(), TickError> {
    let batch = cfg.batch;
    let claimed = store
        .claim_due_campaigns(batch, Topology::EVALUATE_KEY)
        .await?;
    if !claimed.is_empty() {
        tracing::info!(count = claimed.len(), campaigns = ?claimed, "claimed due campaigns");
        metrics::counter!("pushfleet_campaigns_claimed_total").increment(claimed.len() as u64);
    }
    // Pushes whose start day has come (UTC): their dynamic lists frozen, then started.
    let started = store
        .start_due_pushes(chrono::Utc::now().date_naive(), batch)
        .await?;
    for push in &started {
        tracing::info!(push = %push.id, frozen = push.frozen, "push started");
    }
    metrics::counter!("pushfleet_pushes_started_total").increment(started.len() as u64);
    relay_outbox(store, publisher, topology, batch).await?;
    publish_due_deliveries(
        store,
        publisher,
        topology,
        batch * 10,
        cfg.send_jobs_per_message,
    )
    .await
}

/// Publishes deferred deliveries whose time has come (spread campaigns, long retries), in
/// batches locked with SKIP LOCKED so several schedulers share the work.
async fn publish_due_deliveries(
    store: &Store,
    publisher: &Publisher,
    topology: &Topology,
    batch: i64,
    per_message: usize,
) -> Result<(), TickError> {
    loop {
        let due = store.claim_due_deliveries(batch).await?;
        if due.is_empty() {
            return Ok(());
        }
        // Rows that cannot become a job are failed with the batch, not published: one bad
        // row must not hold back every deferred send at every tick.
        metrics::counter!("pushfleet_poisoned_deliveries_total")
            .increment(due.poisoned.len() as u64);
        let messages = topology.send_job_messages(&due.jobs, per_message)?;
        let (n, m) = (due.jobs.len() as u64, messages.len() as u64);
        publisher.publish_all(messages).await?;
        due.mark_published().await?;
        metrics::counter!("pushfleet_deferred_published_total").increment(n);
        metrics::counter!("pushfleet_send_messages_published_total").increment(m);
    }
}

/// Publishes outbox rows until none are left. Rows are deleted only after the broker
/// confirmed them; a crash before that publishes them again (consumers tolerate repeats).
async fn relay_outbox(
    store: &Store,
    publisher: &Publisher,
    topology: &Topology,
    batch: i64,
) -> Result<(), TickError> {
    loop {
        let outbox = store.claim_outbox(batch).await?;
        if outbox.messages.is_empty() {
            return Ok(());
        }
        // A row whose routing key no queue is bound to would be returned unroutable on
        // every try and hold up the whole outbox: drop it, loudly (only code writes here).
        let (routable, unroutable): (Vec<_>, Vec<_>) = outbox
            .messages
            .iter()
            .partition(|m| topology.is_work_key(&m.routing_key));
        for m in &unroutable {
            tracing::error!(id = m.id, routing_key = %m.routing_key, payload = %m.payload,
                "outbox row with an unknown routing key; dropping it");
            metrics::counter!("pushfleet_outbox_dropped_total").increment(1);
        }
        let messages = routable
            .into_iter()
            .map(|m| {
                Ok(OutgoingMessage::new(
                    topology.work_exchange(),
                    m.routing_key.clone(),
                    serde_json::to_vec(&m.payload)?,
                ))
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        let n = messages.len();
        publisher.publish_all(messages).await?;
        outbox.complete().await?;
        metrics::counter!("pushfleet_outbox_relayed_total").increment(n as u64);
    }
}
