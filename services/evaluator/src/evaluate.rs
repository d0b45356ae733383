use crate::segment_import::SegmentImporter;
use crate::EvaluatorConfig;
use anyhow::Context;
use pushfleet_domain::EvaluateJob;
use pushfleet_queue::{
    connected_check, consume_until_shutdown, consumer_tag, header, settle, ConsumeSettings,
    Delivery, OutgoingMessage, Publisher, Topology, ATTEMPT_HEADER, REASON_HEADER,
};
use pushfleet_store::{Store, StoreError};
use pushfleet_telemetry::{serve_admin, Readiness};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
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

/// How many times this evaluate job has been tried, counting this one.
fn attempt_of(delivery: &Delivery) -> u32 {
    header(delivery, ATTEMPT_HEADER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
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

impl EvaluateError {
    /// Worth trying again without counting: a dependency outage, or a shutdown.
    fn is_transient(&self) -> bool {
        match self {
            EvaluateError::Store(e) => e.is_transient(),
            EvaluateError::Queue(_) | EvaluateError::Interrupted => true,
            EvaluateError::Encode(_) => false,
        }
    }
}

/// Runs the evaluator until `shutdown` fires.
pub async fn run(cfg: EvaluatorConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
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
                Err(e) if e.is_transient() => {
                    // A dependency is down or we are stopping: try again, for as long as it
                    // takes; the outage holds up every job alike.
                    tracing::warn!(error = %e, "evaluation not finished; requeueing");
                    // Keeps a failing dependency from becoming a hot redelivery loop.
                    self.pause(self.cfg.retry_pause).await;
                    settle::requeue(&delivery).await;
                }
                Err(e) => self.retry_or_give_up(&delivery, &job, e).await,
            }
        }
        .instrument(span)
        .await
    }

    /// An evaluation failed in a way that does not depend on an outage (bad stored data):
    /// it would fail the same way on every redelivery. Try it again a few times (the
    /// message is republished with its attempt count, since a requeue does not count), then
    /// give up: record the reason on the campaign, dead-letter the job, ack it.
    async fn retry_or_give_up(&self, delivery: &Delivery, job: &EvaluateJob, e: EvaluateError) {
        let attempt = attempt_of(delivery);
        let reason = e.to_string();
        metrics::counter!("pushfleet_evaluate_failures_total").increment(1);
        if attempt >= self.cfg.max_attempts {
            tracing::error!(error = %reason, attempt, "evaluation failed every time; giving up and dead-lettering the job");
            let recorded = self
                .store
                .record_evaluation_error(
                    job.campaign_id,
                    &format!("evaluation given up after {attempt} attempts: {reason}"),
                )
                .await;
            let message = OutgoingMessage::new(
                self.topology.dead_letter_exchange(),
                String::new(),
                delivery.data.clone(),
            )
            .with_header(REASON_HEADER, reason.clone())
            .with_header(ATTEMPT_HEADER, attempt.to_string());
            match recorded {
                Ok(()) => match self.publisher.publish(message).await {
                    Ok(()) => {
                        metrics::counter!("pushfleet_evaluate_dead_lettered_total").increment(1);
                        settle::ack(delivery).await;
                    }
                    Err(e) => {
                        self.requeue_later(delivery, &format!("dead-letter publish: {e}"))
                            .await
                    }
                },
                Err(e) => {
                    self.requeue_later(delivery, &format!("recording the error: {e}"))
                        .await
                }
            }
            return;
        }
        tracing::warn!(error = %reason, attempt, max = self.cfg.max_attempts, "evaluation failed; trying again");
        self.pause(self.cfg.retry_pause * attempt.min(10)).await;
        // The copy is confirmed before the original is acked: a crash in between leaves two
        // copies (evaluation is idempotent), never none.
        let copy = OutgoingMessage::new(
            self.topology.work_exchange(),
            Topology::EVALUATE_KEY.to_owned(),
            delivery.data.clone(),
        )
        .with_header(ATTEMPT_HEADER, (attempt + 1).to_string());
        match self.publisher.publish(copy).await {
            Ok(()) => {
                settle::ack(delivery).await;
            }
            Err(e) => {
                self.requeue_later(delivery, &format!("republishing: {e}"))
                    .await
            }
        }
    }

    /// Waits `d`, or less if shutdown comes first.
    async fn pause(&self, d: std::time::Duration) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    async fn requeue_later(&self, delivery: &Delivery, reason: &str) {
        tracing::warn!(reason, "requeueing the evaluate job");
        self.pause(self.cfg.retry_pause).await;
        settle::requeue(delivery).await;
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
            // Sends go out at random in the window (seed 001): rows due later wait in
            // Postgres for the scheduler.
            self.store.spread_due_times(campaign_id, &window.0).await?;
        }
        let mut published = 0u64;
        // Claims walk the campaign's rows in id order from a cursor (see `claim_unpublished`);
        // an empty claim after a cursor looks once more from the start.
        let mut after_id = 0i64;
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
                    after_id,
                    self.cfg.publish_batch,
                    redelivered || expansion.evaluated_before,
                )
                .await?;
            if batch.is_empty() {
                if after_id == 0 {
                    return Ok(published);
                }
                after_id = 0;
                continue;
            }
            after_id = batch.last_id();
            // Rows that cannot become a job are failed with the batch, not published.
            metrics::counter!("pushfleet_poisoned_deliveries_total")
                .increment(batch.poisoned.len() as u64);
            let messages = self
                .topology
                .send_job_messages(&batch.jobs, self.cfg.send_jobs_per_message)?;
            let (n, m) = (batch.jobs.len() as u64, messages.len() as u64);
            self.publisher.publish_all(messages).await?;
            batch.mark_published().await?;
            published += n;
            metrics::counter!("pushfleet_send_jobs_published_total").increment(n);
            metrics::counter!("pushfleet_send_messages_published_total").increment(m);
        }
    }
}
