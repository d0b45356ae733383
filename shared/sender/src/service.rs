use crate::campaign_watch::CampaignWatch;
use crate::handler::{Shared, Worker};
use crate::opt_out_watch::OptOutWatch;
use crate::outcome_recorder::OutcomeRecorder;
use crate::template_cache::TemplateCache;
use crate::{Provider, SenderConfig};
use anyhow::Context;
use pushfleet_queue::{
    connected_check, consume_until_shutdown, consumer_tag, ConsumeSettings, Topology,
};
use pushfleet_ratelimit::{FleetLimiter, RateLimiter};
use pushfleet_store::Store;
use pushfleet_telemetry::{serve_admin, Readiness};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs a sender until `shutdown` fires: admin endpoints, then the consume loop, reconnecting
/// to the broker after failures. Returns once in-flight jobs are recorded and acked.
pub async fn run_sender<P: Provider>(
    cfg: SenderConfig,
    provider: P,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_sender_with_checks(cfg, provider, shutdown, |r| r).await
}

/// `run_sender` for a sender that does more beside its send loop (the Teams sender posts
/// the bot's replies): `extra_checks` adds that work's `/readyz` checks.
pub async fn run_sender_with_checks<P: Provider>(
    cfg: SenderConfig,
    provider: P,
    shutdown: CancellationToken,
    extra_checks: impl FnOnce(Readiness) -> Readiness,
) -> anyhow::Result<()> {
    let common = &cfg.common;
    let store = Store::connect(common.database_url.expose(), common.db_pool_size)
        .await
        .context("connecting to Postgres")?;
    let limiter = RateLimiter::new(common.redis_url.expose(), &common.namespace)
        .context("invalid REDIS_URL")?;
    let topology = Topology::new(common.namespace.clone()).with_dead_letter_retention(
        pushfleet_queue::DeadLetterRetention {
            ttl: common.dead_letter_ttl,
            max_length: common.dead_letter_max_length,
        },
    );
    let connected = Arc::new(AtomicBool::new(false));
    let opt_outs = Arc::new(OptOutWatch::new(P::CHANNEL, cfg.opt_out_horizon));
    // Stopped only after the consume loop, so that no job in flight waits on a stopped watch.
    let watch_shutdown = CancellationToken::new();
    let watch_task = {
        let (opt_outs, store, token) = (opt_outs.clone(), store.clone(), watch_shutdown.clone());
        tokio::spawn(async move { opt_outs.run(store, token).await })
    };
    // Read once before the first job, then polled: a paused campaign's job is never sent
    // by a replica that just started.
    let campaigns = Arc::new(CampaignWatch::default());
    campaigns.refresh(&store).await;
    let campaign_watch_task = {
        let (campaigns, store, token) = (campaigns.clone(), store.clone(), watch_shutdown.clone());
        tokio::spawn(async move { campaigns.run(store, token).await })
    };

    let readiness = extra_checks(Readiness::new())
        .with_check("postgres", store.readiness_check())
        // Without Redis a sender keeps sending on its fallback share of the quota.
        .with_optional_check("redis", limiter.readiness_check())
        .with_check("rabbitmq", connected_check(connected.clone()))
        .with_check("opt-outs", {
            let opt_outs = opt_outs.clone();
            move || {
                let live = opt_outs.is_live();
                Box::pin(async move {
                    live.then_some(())
                        .ok_or_else(|| "catching up with recent opt-outs".to_owned())
                })
            }
        });
    let admin_shutdown = CancellationToken::new();
    let (_, admin) = serve_admin(common.admin_addr, readiness, admin_shutdown.clone())
        .await
        .context("binding the admin port")?;

    let (recorder, recorder_task) =
        OutcomeRecorder::spawn(store.clone(), cfg.outcome_batch, cfg.outcome_flush);
    let account_limit = cfg.quota.map(|quota| {
        FleetLimiter::new(
            limiter.clone(),
            cfg.rate_limit_key.clone(),
            quota,
            cfg.fallback_share,
        )
    });
    let shared = Arc::new(Shared {
        provider,
        store,
        account_limit,
        limiter,
        templates: TemplateCache::default(),
        recorder,
        cfg: cfg.clone(),
        topology: topology.clone(),
        in_flight: Default::default(),
        opt_outs,
        campaigns,
        job_slots: tokio::sync::Semaphore::new(cfg.concurrency.max(1)),
        provider_calls: tokio::sync::Semaphore::new(cfg.provider_concurrency.max(1)),
        shutdown: shutdown.clone(),
    });

    let settings = ConsumeSettings {
        amqp_url: common.amqp_url.expose().clone(),
        topology: topology.clone(),
        queue: topology.send_queue(P::CHANNEL),
        consumer_tag: consumer_tag(&format!("{}-sender", P::CHANNEL)),
        prefetch: cfg.prefetch,
        // Messages handled at once; their jobs then share the `concurrency` job slots.
        concurrency: cfg.concurrency,
        confirm_window: 64,
    };
    consume_until_shutdown(settings, shutdown, connected, |publisher| {
        let worker = Arc::new(Worker {
            shared: shared.clone(),
            publisher,
        });
        move |delivery| worker.clone().handle(delivery)
    })
    .await;

    // Every worker is done; dropping the last recorder handle lets the writer finish.
    drop(shared);
    let _ = recorder_task.await;
    watch_shutdown.cancel();
    let _ = watch_task.await;
    let _ = campaign_watch_task.await;
    admin_shutdown.cancel();
    let _ = admin.await;
    tracing::info!("sender stopped cleanly");
    Ok(())
}
