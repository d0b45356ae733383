use crate::bot_auth::BotTokenVerifier;
use crate::routes::twilio_status::{self, TwilioWebhook};
use crate::routes::{
    audiences, campaigns, dead_letters, people, people_import, segment_uploads, segments,
    teams_messages, templates, twilio_inbound, unsubscribe, AppState,
};
use crate::{ApiConfig, ApiDoc, ApiError};
use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pushfleet_store::Store;
use pushfleet_telemetry::{serve_admin, Readiness};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

/// The API's routes over a store.
pub fn router(store: Store, cfg: &ApiConfig) -> Router {
    let twilio = Arc::new(TwilioWebhook {
        public_url: cfg.public_url.clone(),
        auth_token: cfg.twilio_auth_token.clone(),
    });
    Router::new()
        .route("/v1/people", post(people::create_people))
        .route("/v1/people/import", post(people_import::import_people))
        .route(
            "/v1/people/{id}",
            get(people::get_person).delete(people::deactivate_person),
        )
        .route("/v1/audiences", post(audiences::create_audience))
        .route("/v1/audiences/preview", post(audiences::preview_criteria))
        .route("/v1/audiences/{id}", get(audiences::get_audience))
        .route(
            "/v1/audiences/{id}/preview",
            get(audiences::preview_audience),
        )
        .route(
            "/v1/audiences/{id}/snapshots",
            post(audiences::freeze_audience),
        )
        .route("/v1/snapshots/{id}", get(audiences::get_snapshot))
        .route("/v1/templates", post(templates::create_template))
        .route("/v1/templates/{id}", get(templates::get_template))
        .route("/v1/campaigns", post(campaigns::create_campaign))
        .route("/v1/campaigns/{id}", get(campaigns::get_campaign))
        .route("/v1/dead-letters", get(dead_letters::list_dead_letters))
        .route(
            "/v1/dead-letters/replay",
            post(dead_letters::replay_dead_letters),
        )
        .route(
            "/v1/webhooks/twilio/status",
            post(twilio_status::twilio_status_callback),
        )
        .route(
            "/v1/segments",
            post(segments::create_segment).get(segments::list_segments),
        )
        .route(
            "/v1/segments/{id}",
            get(segments::get_segment).patch(segments::update_segment),
        )
        .route("/v1/segments/{id}/members", post(segments::add_members))
        .route("/v1/segments/{id}/members.csv", get(segments::members_csv))
        .route(
            "/v1/segments/{id}/uploads",
            post(segment_uploads::upload_csv)
                .layer(DefaultBodyLimit::max(cfg.segment_upload_max_bytes)),
        )
        .route(
            "/v1/segments/{id}/uploads/{upload_id}",
            get(segment_uploads::get_upload),
        )
        .route(
            "/v1/segments/{id}/uploads/{upload_id}/errors.csv",
            get(segment_uploads::upload_errors_csv),
        )
        .route("/v1/twilio/inbound", post(twilio_inbound::twilio_inbound))
        .route("/v1/teams/messages", post(teams_messages::teams_messages))
        .route(
            "/u/{token}",
            get(unsubscribe::unsubscribe_page).post(unsubscribe::unsubscribe_one_click),
        )
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::Status {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "method not allowed on this route".into(),
            }
        })
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        // A body that sends nothing for this long is cut off: a stalled client holds a
        // socket, never a worker for good.
        .layer(RequestBodyTimeoutLayer::new(cfg.body_read_timeout))
        .layer(TraceLayer::new_for_http())
        .with_state(AppState {
            store,
            twilio,
            unsubscribe_secret: cfg.unsubscribe_secret.clone(),
            bot_auth: Arc::new(BotTokenVerifier::new(cfg.bot_auth.clone())),
            import_max_bytes: cfg.import_max_bytes,
            json_import_max_bytes: cfg.max_body_bytes,
            import_slots: Arc::new(tokio::sync::Semaphore::new(cfg.import_concurrency.max(1))),
        })
}

/// A started API: where it listens, and the task to await for its end.
pub struct RunningApi {
    pub addr: SocketAddr,
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
    let readiness = Readiness::new().with_check("postgres", store.readiness_check());
    let admin_shutdown = CancellationToken::new();
    let (admin_addr, admin) = serve_admin(cfg.common.admin_addr, readiness, admin_shutdown.clone())
        .await
        .context("binding the admin port")?;
    let addr = listener.local_addr()?;
    let app = router(store, &cfg);
    tracing::info!(%addr, public_url = %cfg.public_url, "api listening");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "api server failed");
        }
        admin_shutdown.cancel();
        let _ = admin.await;
        tracing::info!("api stopped cleanly");
    });
    Ok(RunningApi {
        addr,
        admin_addr,
        task,
    })
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
