//! The recipients' side of tracking (public listener): `/r/{token}` records a click and
//! redirects to the link at once; `/o/{token}` records an open and answers a 1x1 GIF. The
//! token is opened in memory and the link found in the replica's cache; the event is
//! written behind the answer (`tracking::recorder`).

use super::AppState;
use crate::api_error::ErrorBody;
use crate::extract::ApiPath;
use crate::tracking::{scanner_user_agent, CampaignLinks};
use crate::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pushfleet_domain::{TrackedEvent, TrackingToken};
use pushfleet_store::NewTrackingEvent;
use std::sync::Arc;
use uuid::Uuid;

/// The smallest transparent GIF.
const PIXEL_GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];
/// Kept of a user agent, for the scanner review: enough to tell clients apart.
const USER_AGENT_KEPT: usize = 200;

/// The token, opened; a forged or changed one is not found (404), like an unknown route.
fn open_token(state: &AppState, token: &str) -> Result<TrackingToken, ApiError> {
    state.tracking.key.verify(token).map_err(|e| {
        tracing::info!(error = %e, "tracking token refused");
        ApiError::NotFound("link")
    })
}

async fn campaign_links(
    state: &AppState,
    token: &TrackingToken,
) -> Result<Arc<CampaignLinks>, ApiError> {
    state
        .tracking
        .links
        .get(&state.store, token.campaign_key)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the links of a tracked campaign could not be read");
            match e {
                crate::tracking::LinkCacheError::Store(pushfleet_store::StoreError::NotFound(
                    _,
                )) => ApiError::NotFound("link"),
                _ => ApiError::Status {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "unavailable",
                    message: "the link cannot be followed right now; try again shortly".into(),
                },
            }
        })
}

fn record(
    state: &AppState,
    token: &TrackingToken,
    campaign_id: Uuid,
    link: Option<u16>,
    scanner: Option<&'static str>,
    headers: &HeaderMap,
) {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(USER_AGENT_KEPT).collect::<String>());
    state.tracking.recorder.record(NewTrackingEvent {
        event_id: Uuid::now_v7(),
        campaign_id,
        delivery_id: token.delivery_id,
        link,
        occurred_at: Utc::now(),
        scanner,
        user_agent,
    });
}

/// Follows a tracked link: records the click and redirects to the link. A `HEAD` request,
/// a known scanner's user agent, or a click within a second of delivery is recorded as a
/// link scanner's, apart from people's clicks.
#[utoipa::path(get, path = "/r/{token}", params(("token" = String, Path, description = "The tracking token from the message's link")),
    responses((status = 302, description = "to the link's target",
               headers(("Location" = String, description = "the original link"))),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn follow_link(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let token = open_token(&state, &token)?;
    let TrackedEvent::Click { link } = token.event else {
        return Err(ApiError::NotFound("link"));
    };
    let campaign = campaign_links(&state, &token).await?;
    let target = campaign.links.url(link).ok_or(ApiError::NotFound("link"))?;
    let location = HeaderValue::from_str(target).map_err(|_| ApiError::NotFound("link"))?;
    let scanner = if method == Method::HEAD {
        Some("a HEAD request")
    } else {
        scanner_user_agent(
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
        )
    };
    record(
        &state,
        &token,
        campaign.campaign_id,
        Some(link),
        scanner,
        &headers,
    );
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response())
}

/// The open pixel of an HTML e-mail: records an open (approximate: mail privacy features
/// load images for the recipient) and answers a transparent 1x1 GIF.
#[utoipa::path(get, path = "/o/{token}", params(("token" = String, Path, description = "The tracking token from the e-mail's image")),
    responses((status = 200, content_type = "image/gif", description = "a transparent 1x1 GIF"),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn open_pixel(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let token = open_token(&state, &token)?;
    if token.event != TrackedEvent::Open {
        return Err(ApiError::NotFound("link"));
    }
    let campaign = campaign_links(&state, &token).await?;
    // Image proxies (Gmail's, Apple's) load it for the recipient: only a HEAD is not an open.
    let scanner = (method == Method::HEAD).then_some("a HEAD request");
    record(
        &state,
        &token,
        campaign.campaign_id,
        None,
        scanner,
        &headers,
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, max-age=0"),
            ),
        ],
        PIXEL_GIF,
    )
        .into_response())
}
