//! The e-mail unsubscribe link (`List-Unsubscribe: <{base}/u/{token}>`, RFC 8058).
//!
//! `POST` unsubscribes in one click (what mail clients send, body
//! `List-Unsubscribe=One-Click`); `GET` only shows a page with a button that posts, because
//! mail scanners fetch links in messages and must not unsubscribe anyone by doing so.

use super::AppState;
use crate::api_error::ErrorBody;
use crate::extract::ApiPath;
use crate::ApiError;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use pushfleet_domain::unsubscribe_token::{self, InvalidToken};
use pushfleet_domain::Channel;
use uuid::Uuid;

fn verify(state: &AppState, token: &str) -> Result<i64, ApiError> {
    unsubscribe_token::verify(state.unsubscribe_secret.expose().as_bytes(), token).map_err(|e| {
        tracing::warn!(error = %e, "unsubscribe link refused");
        match e {
            InvalidToken::Malformed => ApiError::BadRequest {
                code: "invalid_token",
                message: e.to_string(),
            },
            InvalidToken::BadSignature => ApiError::Status {
                status: StatusCode::FORBIDDEN,
                code: "invalid_token",
                message: e.to_string(),
            },
        }
    })
}

async fn person(state: &AppState, delivery_id: i64) -> Result<Uuid, ApiError> {
    Ok(state.store.delivery_person(delivery_id).await?)
}

const PAGE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;\
                          padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem}";

/// A page asking to confirm; nothing is changed by a GET.
#[utoipa::path(get, path = "/u/{token}", params(("token" = String, Path, description = "The unsubscribe token from the e-mail's link")),
    responses((status = 200, content_type = "text/html", description = "confirmation page"),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let delivery_id = verify(&state, &token)?;
    person(&state, delivery_id).await?;
    // The token is base64url and digits only (verified above): safe inside the attribute.
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe</title>\
         <style>{PAGE_STYLE}</style></head><body><h1>Unsubscribe</h1>\
         <p>Stop receiving these e-mails?</p>\
         <form method=\"post\" action=\"/u/{token}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form></body></html>"
    );
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        Html(page),
    )
        .into_response())
}

/// One-click unsubscribe: the delivery's person gets no more e-mail. Idempotent.
#[utoipa::path(post, path = "/u/{token}", params(("token" = String, Path, description = "The unsubscribe token from the e-mail's link")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
                 description = "List-Unsubscribe=One-Click"),
    responses((status = 200, content_type = "text/html", description = "unsubscribed"),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(delivery_id))]
pub async fn unsubscribe_one_click(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    // The token is the authority; the body (List-Unsubscribe=One-Click, or the page's form)
    // says nothing more, and clients differ in how they encode it, so it is not parsed.
    let delivery_id = verify(&state, &token)?;
    tracing::Span::current().record("delivery_id", delivery_id);
    let person_id = person(&state, delivery_id).await?;
    let new = state
        .store
        .opt_out_of_channel(person_id, Channel::Email, "email_link")
        .await?;
    tracing::info!(%person_id, new, "unsubscribed from e-mail");
    metrics::counter!("pushfleet_opt_changes_total", "channel" => "email", "result" => "opted_out")
        .increment(1);
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title>\
         <style>{PAGE_STYLE}</style></head><body><h1>Unsubscribed</h1>\
         <p>You will receive no more of these e-mails.</p></body></html>"
    );
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response())
}
