use crate::bot_auth::BotTokenVerifier;
use crate::routes::twilio_status::{self, TwilioWebhook};
use crate::routes::{
    api_keys, audiences, audit_log, campaigns, conversation_templates, dead_letters, operators,
    people, people_import, pushes, segment_uploads, segments, surveys, teams_messages, templates,
    tracking, twilio_inbound, unsubscribe, AppState,
};
use crate::{ApiConfig, ApiDoc, ApiError};
use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use axum::{Json, Router};
use pushfleet_store::Store;
use pushfleet_telemetry::{serve_admin, Readiness};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every operation of the API. The OpenAPI document is generated from this list (each
/// handler's `#[utoipa::path]`), so a route cannot be served without being documented.
pub fn routes(segment_upload_max_bytes: usize) -> OpenApiRouter<AppState> {
    admin_routes(segment_upload_max_bytes).merge(public_routes())
}

/// What the public listener serves: the providers' webhooks and the recipients' links, each
/// checked by its own signature or token. An Ingress exposes this listener alone.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(twilio_status::twilio_status_callback))
        .routes(routes!(twilio_inbound::twilio_inbound))
        .routes(routes!(teams_messages::teams_messages))
        .routes(routes!(
            unsubscribe::unsubscribe_page,
            unsubscribe::unsubscribe_one_click
        ))
        .routes(routes!(tracking::follow_link))
        .routes(routes!(tracking::open_pixel))
}

/// The admins' operations (each behind an API key and a permission).
fn admin_routes(segment_upload_max_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(people::create_people))
        .routes(routes!(people_import::import_people))
        .routes(routes!(people::get_person, people::deactivate_person))
        .routes(routes!(audiences::create_audience))
        .routes(routes!(audiences::preview_criteria))
        .routes(routes!(audiences::get_audience))
        .routes(routes!(audiences::preview_audience))
        .routes(routes!(audiences::freeze_audience))
        .routes(routes!(audiences::get_snapshot))
        .routes(routes!(
            templates::create_template,
            templates::list_templates
        ))
        .routes(routes!(templates::get_template, templates::update_template))
        .routes(routes!(surveys::create_survey, surveys::list_surveys))
        .routes(routes!(surveys::get_survey, surveys::update_survey))
        .routes(routes!(surveys::report::survey_report))
        .routes(routes!(surveys::report::survey_csv))
        .routes(routes!(
            conversation_templates::create_conversation_template,
            conversation_templates::list_conversation_templates
        ))
        .routes(routes!(
            conversation_templates::get_conversation_template,
            conversation_templates::update_conversation_template
        ))
        .routes(routes!(pushes::create_push, pushes::list_pushes))
        .routes(routes!(pushes::get_push, pushes::update_push))
        .routes(routes!(pushes::close_push))
        .routes(routes!(pushes::users::preview_push))
        .routes(routes!(pushes::users::add_users, pushes::users::list_users))
        .routes(routes!(pushes::users::users_csv))
        .routes(routes!(pushes::follow_up::set_follow_up))
        .routes(routes!(pushes::feed::person_feed))
        .routes(routes!(
            campaigns::create_campaign,
            campaigns::list::list_campaigns
        ))
        .routes(routes!(
            campaigns::get_campaign,
            campaigns::lifecycle::update_campaign,
            campaigns::lifecycle::delete_campaign
        ))
        .routes(routes!(campaigns::lifecycle::send_campaign))
        .routes(routes!(campaigns::lifecycle::clone_campaign))
        .routes(routes!(campaigns::tries::try_campaign))
        .routes(routes!(campaigns::recipients::campaign_recipients))
        .routes(routes!(campaigns::report::campaign_report))
        .routes(routes!(campaigns::report::report_recipients))
        .routes(routes!(campaigns::report::report_csv))
        .routes(routes!(campaigns::preview::preview_campaign))
        .routes(routes!(campaigns::preview::preview_template))
        .routes(routes!(campaigns::controls::pause_campaign))
        .routes(routes!(campaigns::controls::resume_campaign))
        .routes(routes!(campaigns::controls::cancel_campaign))
        .routes(routes!(dead_letters::list_dead_letters))
        .routes(routes!(dead_letters::replay_dead_letters))
        .routes(routes!(segments::create_segment, segments::list_segments))
        .routes(routes!(segments::get_segment, segments::update_segment))
        .routes(routes!(segments::add_members))
        .routes(routes!(segments::members_csv))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(segment_uploads::upload_csv))
                .layer(DefaultBodyLimit::max(segment_upload_max_bytes)),
        )
        .routes(routes!(segment_uploads::get_upload))
        .routes(routes!(segment_uploads::upload_errors_csv))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(audit_log::list_audit_log))
        .routes(routes!(operators::me))
        .routes(routes!(operators::list_operators))
        .routes(routes!(operators::get_operator, operators::update_operator))
}

/// What every handler shares.
fn app_state(
    store: Store,
    cfg: &ApiConfig,
    audited: TaskTracker,
    recorder: crate::tracking::Recorder,
) -> AppState {
    AppState {
        tracking: Arc::new(crate::tracking::Tracking {
            key: pushfleet_domain::TrackingKey::new(cfg.tracking_secret.expose().as_bytes()),
            links: crate::tracking::LinkCache::default(),
            recorder,
        }),
        store,
        audited,
        twilio: Arc::new(TwilioWebhook {
            public_url: cfg.public_url.clone(),
            auth_token: cfg.twilio_auth_token.clone(),
        }),
        unsubscribe_secret: cfg.unsubscribe_secret.clone(),
        bot_auth: Arc::new(BotTokenVerifier::new(cfg.bot_auth.clone())),
        oidc: cfg
            .oidc
            .clone()
            .map(|c| Arc::new(crate::identity::OidcVerifier::new(c))),
        import_max_bytes: cfg.import_max_bytes,
        json_import_max_bytes: cfg.max_body_bytes,
        segment_upload_max_bytes: cfg.segment_upload_max_bytes,
        import_slots: Arc::new(tokio::sync::Semaphore::new(cfg.import_concurrency.max(1))),
    }
}

/// The admin listener's routes over a store: every operation (the public ones too, for
/// callers inside the cluster) and `/openapi.json`.
pub(crate) fn router(state: AppState, cfg: &ApiConfig) -> Router {
    let (router, doc) = routes(cfg.segment_upload_max_bytes).split_for_parts();
    let doc = Arc::new(crate::openapi::to_json(&crate::openapi::complete(doc)));
    let router = router.route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json(doc) }
        }),
    );
    with_layers(router, state, cfg)
}

/// The public listener's routes: the webhooks and links alone. Nothing an admin does is
/// reachable here, whatever the Ingress in front of it lets through.
pub(crate) fn public_router(state: AppState, cfg: &ApiConfig) -> Router {
    let (router, _) = public_routes().split_for_parts();
    with_layers(router, state, cfg)
}

/// The answers to unknown routes and methods, and the layers every request passes.
fn with_layers(router: Router<AppState>, state: AppState, cfg: &ApiConfig) -> Router {
    router
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::Status {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "method not allowed on this route".into(),
            }
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::idempotency,
        ))
        // Outside the idempotency layer: a key is scoped to its caller, and a caller without
        // the right is refused before anything is recorded.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::identity::authenticate,
        ))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        // A body that sends nothing for this long is cut off: a stalled client holds a
        // socket, never a worker for good.
        .layer(RequestBodyTimeoutLayer::new(cfg.body_read_timeout))
        // The request's span: the path without its query (which may carry personal data),
        // and the caller once `authenticate` knows them.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    operator = tracing::field::Empty,
                )
            }),
        )
        .with_state(state)
}

/// The longest shutdown waits for audited requests whose clients went away.
const AUDITED_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// A started API: where it listens, and the task to await for its end.
pub struct RunningApi {
    /// The admins' operations (and the public ones, for callers inside the cluster).
    pub addr: SocketAddr,
    /// The webhooks and links alone: what an Ingress exposes.
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Binds the API and admin ports and serves until `shutdown` fires (finishing requests in
/// flight).
pub async fn serve(cfg: ApiConfig, shutdown: CancellationToken) -> anyhow::Result<RunningApi> {
    let listener = TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("binding {}", cfg.http_addr))?;
    serve_on(listener, cfg, shutdown).await
}

/// Serves on a listener bound by the caller (`cfg.http_addr` is ignored). For callers that
/// need the bound address before the config is complete: a test binds port 0 and then sets
/// `public_url` to the address it got.
pub async fn serve_on(
    listener: TcpListener,
    cfg: ApiConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningApi> {
    let store = Store::connect(cfg.common.database_url.expose(), cfg.common.db_pool_size)
        .await
        .context("connecting to Postgres")?;
    // Bound before anything starts serving: a port that is taken stops the start whole.
    let public_listener = TcpListener::bind(cfg.public_http_addr)
        .await
        .with_context(|| format!("binding the public listener {}", cfg.public_http_addr))?;
    let readiness = Readiness::new().with_check("postgres", store.readiness_check());
    let admin_shutdown = CancellationToken::new();
    let (admin_addr, admin) = serve_admin(cfg.common.admin_addr, readiness, admin_shutdown.clone())
        .await
        .context("binding the admin port")?;
    let addr = listener.local_addr()?;
    let public_addr = public_listener.local_addr()?;
    let audited = TaskTracker::new();
    let (recorder, recorder_task) = crate::tracking::Recorder::start(store.clone());
    let state = app_state(store.clone(), &cfg, audited.clone(), recorder);
    let app = router(state.clone(), &cfg);
    let public_app = public_router(state, &cfg);
    let header_read_timeout = cfg.body_read_timeout;
    tokio::spawn(forget_expired_idempotency_keys(store, shutdown.clone()));
    tracing::info!(%addr, %public_addr, public_url = %cfg.public_url, "api listening");
    let task = tokio::spawn(async move {
        tokio::join!(
            crate::http_server::serve(listener, app, header_read_timeout, shutdown.clone()),
            crate::http_server::serve(public_listener, public_app, header_read_timeout, shutdown),
        );
        // An audited act whose client went away may still be running: its write and its
        // audit record end before the process does.
        audited.close();
        if tokio::time::timeout(AUDITED_DRAIN, audited.wait())
            .await
            .is_err()
        {
            tracing::error!(
                running = audited.len(),
                "audited requests still running at shutdown; their audit records may be missing"
            );
        }
        // Clicks answered before the stop are written before the process ends.
        recorder_task.drain().await;
        admin_shutdown.cancel();
        let _ = admin.await;
        tracing::info!("api stopped cleanly");
    });
    Ok(RunningApi {
        addr,
        public_addr,
        admin_addr,
        task,
    })
}

/// Deletes idempotency keys past their lifetime, every ten minutes until shutdown. Every
/// replica does it; the deletes are idempotent and cheap (an index on `created_at`).
async fn forget_expired_idempotency_keys(store: Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.delete_expired_idempotency_keys().await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired idempotency keys deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deleting expired idempotency keys failed"),
        }
    }
}

/// Creates an API key (`pushfleet-api api-key create`): the way to the first admin key
/// before there is any. Returns the secret.
pub async fn create_api_key(
    database_url: &str,
    name: &str,
    role: crate::identity::Role,
    expires_in_days: Option<u32>,
    labels: Vec<String>,
) -> anyhow::Result<String> {
    let labels = (!labels.is_empty())
        .then(|| {
            labels
                .into_iter()
                .map(pushfleet_domain::PermissionLabel::parse)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .context("--label")?;
    let store = Store::connect(database_url, 1)
        .await
        .context("connecting to Postgres")?;
    let expires_at =
        expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
    let created = api_keys::create_key(&store, name, role, labels, expires_at, None)
        .await
        .map_err(|e| anyhow::anyhow!("creating the key: {e}"))?;
    Ok(created.secret)
}

/// Applies the schema migrations: the explicit `api migrate` step of a release.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let store = Store::connect(database_url, 2)
        .await
        .context("connecting to Postgres")?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}
