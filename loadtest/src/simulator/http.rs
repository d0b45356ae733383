//! The HTTP listener: routing, shared state and helpers used by every provider module.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::gate::{Fault, Gate};
use super::recorder::Channel;
use super::{bot_identity, control, identity_provider, sendgrid, teams, twilio};

/// SendGrid accepts up to 1,000 recipients and large HTML bodies; axum's 2 MB default is too
/// small for that.
const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Status callbacks go to a local test server; a stuck one must not pin a task for long.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(crate) struct AppState {
    pub cfg: Arc<SimConfig>,
    pub gate: Gate,
    pub teams: Arc<teams::TeamsState>,
    /// For Twilio status callbacks.
    pub client: reqwest::Client,
}

impl AppState {
    pub fn new(cfg: SimConfig, gate: Gate) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .build()?;
        Ok(Self {
            cfg: Arc::new(cfg),
            gate,
            teams: Arc::new(teams::TeamsState::default()),
            client,
        })
    }
}

/// What the per-provider middleware needs: whose latency to apply, whether an outage refuses
/// the call, and how this provider words a refusal.
#[derive(Clone)]
struct ProviderCall {
    state: AppState,
    channel: Channel,
    outage_applies: bool,
    refusal: fn(Fault) -> Response,
}

pub(crate) fn router(state: AppState) -> Router {
    let layer = |channel, outage_applies, refusal| {
        middleware::from_fn_with_state(
            ProviderCall {
                state: state.clone(),
                channel,
                outage_applies,
                refusal,
            },
            provider_call,
        )
    };
    // Entra ID and Graph are other services than the Connector: a Connector outage leaves
    // them up.
    let teams_identity = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(teams::token))
        .route("/v1.0/users/{id}/presence", get(teams::presence))
        .route_layer(layer(Channel::Teams, false, teams::refusal));
    let teams_connector = Router::new()
        .route("/v3/conversations", post(teams::create_conversation))
        .route(
            "/v3/conversations/{conversation_id}/activities",
            post(teams::send_activity),
        )
        .route(
            "/v3/conversations/{conversation_id}/activities/{activity_id}",
            post(teams::reply_to_activity),
        )
        .route_layer(layer(Channel::Teams, true, teams::refusal));
    let twilio = Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(twilio::send_message),
        )
        .route_layer(layer(Channel::Sms, true, twilio::refusal));
    let sendgrid = Router::new()
        .route("/v3/mail/send", post(sendgrid::mail_send))
        .route_layer(layer(Channel::Email, true, sendgrid::refusal));

    // Only provider calls pay the simulated delay; the control plane answers at once.
    Router::new()
        .merge(teams_identity)
        .merge(teams_connector)
        .merge(twilio)
        .merge(sendgrid)
        .merge(control::routes())
        .route(
            bot_identity::OPENID_METADATA_PATH,
            get(bot_identity::openid_metadata),
        )
        .route(bot_identity::JWKS_PATH, get(bot_identity::jwks))
        .route(
            identity_provider::METADATA_PATH,
            get(identity_provider::openid_configuration),
        )
        .route(identity_provider::JWKS_PATH, get(identity_provider::jwks))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Sampled latency first (a down provider is slow to say so too), then the outage check.
async fn provider_call(State(call): State<ProviderCall>, req: Request, next: Next) -> Response {
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "provider call");
    let _in_progress = call.state.gate.recorder.call_started();
    call.state.gate.latency(call.channel).apply().await;
    if call.outage_applies {
        if let Err(fault) = call.state.gate.check_outage(call.channel) {
            return (call.refusal)(fault);
        }
    }
    next.run(req).await
}

// A JSON 404 names the path, which is what one needs when a sender is pointed at a wrong URL.
async fn not_found(uri: Uri) -> Response {
    tracing::warn!(path = %uri.path(), "no simulated endpoint");
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "not_found", "path": uri.path() })),
    )
        .into_response()
}

/// The `Idempotency-Key` header, trimmed; absent or empty means none.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The credentials after `Authorization: <scheme> `, scheme matched case-insensitively.
pub(crate) fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|creds| !creds.is_empty())
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}
