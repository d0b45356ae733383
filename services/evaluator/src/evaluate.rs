use crate::segment_import::SegmentImporter;
use crate::EvaluatorConfig;
use anyhow::Context;
use pushfleet_domain::{EvaluateJob, SendWindow};
use pushfleet_queue::{
    connected_check, consume_until_shutdown, consumer_tag, settle, ConsumeSettings, Delivery,
    Publisher, Topology,
};
use pushfleet_store::{Store, StoreError};
use pushfleet_telemetry::{serve_admin, Readiness};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

struct Evaluator {
    store: Store,
    publisher: Publisher,
    topology: Topology,
    cfg: EvaluatorConfig,
    shutdown: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
enum EvaluateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] pushfleet_queue::QueueError),
    #[error("cannot encode a send job: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("stopped by shutdown before every job was published")]
    Interrupted,
}

/// Runs the evaluator until `shutdown` fires.
pub async fn run(cfg: EvaluatorConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = &cfg.common;
    let store = Store::connect(common.database_url.expose(), common.db_pool_size)
        .await
        .context("connecting to Postgres")?;
    let topology = Topology::new(common.namespace.clone());
    let connected = Arc::new(AtomicBool::new(false));
    let imports_connected = Arc::new(AtomicBool::new(false));
    let readiness = Readiness::new()
        .with_check("postgres", store.readiness_check())
        .with_check("rabbitmq", connected_check(connected.clone()))
        .with_check(
            "rabbitmq-segment-imports",
            connected_check(imports_connected.clone()),
        );
    let admin_shutdown = CancellationToken::new();
    let (_, admin) = serve_admin(common.admin_addr, readiness, admin_shutdown.clone())
        .await
        .context("binding the admin port")?;

    let settings = ConsumeSettings {
        amqp_url: common.amqp_url.expose().clone(),
        topology: topology.clone(),
        queue: topology.evaluate_queue(),
        consumer_tag: consumer_tag("evaluator"),
        prefetch: cfg.concurrency as u16,
        concurrency: cfg.concurrency,
        confirm_window: cfg.confirm_window,
    };
    let import_settings = ConsumeSettings {
        queue: topology.segment_import_queue(),
        consumer_tag: consumer_tag("segment-importer"),
        // One file at a time per replica: each is already processed in large batches.
        prefetch: 1,
        concurrency: 1,
        ..settings.clone()
    };
    let evaluate = consume_until_shutdown(settings, shutdown.clone(), connected, |publisher| {
        let evaluator = Arc::new(Evaluator {
            store: store.clone(),
            publisher,
            topology: topology.clone(),
            cfg: cfg.clone(),
            shutdown: shutdown.clone(),
        });
        move |delivery| evaluator.clone().handle(delivery)
    });
    let importer = Arc::new(SegmentImporter {
        store: store.clone(),
        shutdown: shutdown.clone(),
    });
    let imports = consume_until_shutdown(
        import_settings,
        shutdown.clone(),
        imports_connected,
        |_publisher| {
            let importer = importer.clone();
            move |delivery| {
                let importer = importer.clone();
                async move { importer.handle(delivery).await }
            }
        },
    );
    tokio::join!(evaluate, imports);

    admin_shutdown.cancel();
    let _ = admin.await;
    tracing::info!("evaluator stopped cleanly");
    Ok(())
}

impl Evaluator {
    async fn handle(self: Arc<Self>, delivery: Delivery) {
        let job: EvaluateJob = match serde_json::from_slice(&delivery.data) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "malformed evaluate job; dead-lettering it");
                settle::reject(&delivery).await;
                return;
            }
        };
        let span = tracing::info_span!("evaluate_job", campaign_id = %job.campaign_id, redelivered = delivery.redelivered);
        async move {
            match self.evaluate(job.campaign_id, delivery.redelivered).await {
                Ok(published) => {
                    tracing::info!(published, "campaign evaluated");
                    settle::ack(&delivery).await;
                }
                Err(EvaluateError::Store(StoreError::NotFound(what))) => {
                    tracing::error!(what, "evaluate job for a missing campaign; dropping it");
                    settle::ack(&delivery).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "evaluation not finished; requeueing");
                    if !self.shutdown.is_cancelled() {
                        // Keeps a failing dependency from becoming a hot redelivery loop.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    settle::requeue(&delivery).await;
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Gives every delivery of a windowed campaign a random due time in its recipient's
    /// allowed window (seed 001: sends go out at random, not all at once). Deliveries due
    /// now are published below; later ones wait in Postgres for the scheduler.
    async fn spread(&self, campaign_id: Uuid, window: &SendWindow) -> Result<(), EvaluateError> {
        loop {
            let batch = self.store.unscheduled_deliveries(campaign_id, 5000).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let now = chrono::Utc::now();
            let due: Vec<(i64, chrono::DateTime<chrono::Utc>)> = {
                let mut rng = rand::rng();
                batch
                    .into_iter()
                    .map(|(id, zone)| {
                        let tz = window.zone_for(Some(&zone));
                        // No allowed time left (the window has passed): send now.
                        (id, window.pick(tz, now, &mut rng).unwrap_or(now))
                    })
                    .collect()
            };
            self.store.set_due_times(&due).await?;
        }
    }

    /// Expands the campaign and publishes every unpublished send job. Returns how many jobs
    /// this call published.
    async fn evaluate(&self, campaign_id: Uuid, redelivered: bool) -> Result<u64, EvaluateError> {
        let expansion = self.store.expand_campaign(campaign_id).await?;
        tracing::info!(
            inserted = expansion.inserted,
            unreachable = expansion.unreachable,
            "audience expanded"
        );
        metrics::counter!("pushfleet_deliveries_created_total").increment(expansion.inserted);
        let campaign = self.store.get_campaign(campaign_id).await?;
        if let Some(window) = campaign.send_window {
            self.spread(campaign_id, &window.0).await?;
        }
        let mut published = 0u64;
        loop {
            if self.shutdown.is_cancelled() {
                return Err(EvaluateError::Interrupted);
            }
            // A redelivered evaluate job may follow a crash after publishing but before the
            // commit: its jobs may already be queued, so the senders must check first.
            let batch = self
                .store
                .claim_unpublished(
                    campaign_id,
                    self.cfg.publish_batch,
                    redelivered || expansion.evaluated_before,
                )
                .await?;
            if batch.jobs.is_empty() {
                return Ok(published);
            }
            let messages = self.topology.send_job_messages(&batch.jobs)?;
            let n = messages.len() as u64;
            self.publisher.publish_all(messages).await?;
            batch.mark_published().await?;
            published += n;
            metrics::counter!("pushfleet_send_jobs_published_total").increment(n);
        }
    }
}
