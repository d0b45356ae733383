//! The middleware every request passes: it finds what the operation requires (the table in
//! `permission.rs`), who is calling (`Authorization: Bearer` with an API key or an OIDC token
//! from the organisation's identity provider), and refuses with 401 (no or bad credential,
//! with `WWW-Authenticate`) or 403 (naming the missing permission). An operation missing
//! from the table is refused too: nothing is open by accident. The caller is put in the
//! request's extensions as a [`Principal`].

use super::api_key;
use super::audit::{audited, record, AuditContext};
use super::oidc::OidcError;
use super::permission::{access, Access, Permission, Role};
use super::principal::{Principal, PrincipalKind};
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pushfleet_store::OperatorSignIn;
use std::net::SocketAddr;

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Unrouted requests (404, 405) carry no matched path: they reveal nothing and run nothing.
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    // axum answers HEAD with the GET handler: it needs what GET needs.
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let permission = match access(&method, &route) {
        Some(Access::Public) => return next.run(request).await,
        Some(Access::Requires(p)) => p,
        // Another method of a declared route: the router answers 405.
        // Another method of a declared route: answered here, so that nothing behind this
        // layer (the idempotency record, a body read) runs for it.
        None if super::permission::route_declared(&route) => {
            return ApiError::Status {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "method not allowed on this route".into(),
            }
            .into_response();
        }
        None => {
            tracing::error!(method = %request.method(), %route, "operation without a declared permission; refused");
            return ApiError::Status {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: "this operation declares no permission, so no one may call it".into(),
            }
            .into_response();
        }
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized("send `Authorization: Bearer <API key or OIDC token>`");
    };
    let principal = match who(&state, token).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let audit = audited(request.method(), permission).then(|| AuditContext {
        method: request.method().clone(),
        route: route.clone(),
        path: request.uri().path().to_owned(),
        client_addr: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string()),
        principal: principal.clone(),
        kind: if permission == Permission::PeopleRead {
            "personal_data_read"
        } else {
            "write"
        },
    });
    let role = principal.role;
    let refusal = if !role.allows(permission) {
        Some(format!(
            "the {role} role does not hold the permission {} this operation requires",
            permission.as_str()
        ))
    } else if permission.label_scoped() && principal.label_limit().is_some_and(<[_]>::is_empty) {
        Some(format!(
            "the permission {} reaches only entities with one of your permission labels, \
             and you hold none",
            permission.as_str()
        ))
    } else {
        None
    };
    if let Some(message) = refusal {
        let refused = ApiError::Status {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message,
        }
        .into_response();
        return match audit {
            Some(ctx) => record(&state, ctx, refused).await,
            None => refused,
        };
    }
    tracing::Span::current().record("operator", principal.id.to_string());
    request.extensions_mut().insert(principal);
    let Some(ctx) = audit else {
        return next.run(request).await;
    };
    // An audited act and its record run in a task of their own: a client that goes away
    // mid-request drops only its wait, so a write that commits is always recorded.
    let tracker = state.audited.clone();
    let done = tracker.spawn(async move {
        let response = next.run(request).await;
        record(&state, ctx, response).await
    });
    match done.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "an audited request's task failed");
            ApiError::Internal(anyhow::anyhow!("the request's task failed")).into_response()
        }
    }
}

/// The principal a bearer token names, or the answer refusing it.
async fn who(state: &AppState, token: &str) -> Result<Principal, Response> {
    if api_key::is_api_key(token) {
        let key = match state.store.live_api_key(&api_key::hash(token)).await {
            Ok(Some(k)) => k,
            Ok(None) => return Err(unauthorized("the API key is unknown, revoked or expired")),
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        let Some(role) = Role::parse(&key.role) else {
            tracing::error!(key = %key.id, role = %key.role, "an API key with an unknown role");
            return Err(unauthorized("the API key's role is unknown"));
        };
        return Ok(Principal {
            id: key.id,
            kind: PrincipalKind::ApiKey,
            name: key.name,
            role,
            labels: key.labels,
            scope_audience_id: None,
        });
    }
    let Some(oidc) = &state.oidc else {
        return Err(unauthorized(
            "the bearer token is not an API key of this installation, and no identity \
             provider is configured (OIDC_ISSUER)",
        ));
    };
    let identity = match oidc.verify(token).await {
        Ok(identity) => identity,
        Err(OidcError::KeysUnavailable(why)) => {
            tracing::warn!(%why, "an operator's token cannot be checked");
            return Err(ApiError::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "identity_provider_unavailable",
                message: "the identity provider's signing keys cannot be fetched; try again".into(),
            }
            .into_response());
        }
        Err(e @ (OidcError::NoRole { .. } | OidcError::BadLabels { .. })) => {
            return Err(ApiError::Status {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: e.to_string(),
            }
            .into_response());
        }
        Err(e) => return Err(unauthorized(&e.to_string())),
    };
    let operator = state
        .store
        .operator_signed_in(&OperatorSignIn {
            issuer: &identity.issuer,
            subject: &identity.subject,
            name: &identity.name,
            email: identity.email.as_deref(),
            role: identity.role.as_str(),
            labels: identity.labels.as_deref(),
        })
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Principal {
        id: operator.id,
        kind: PrincipalKind::Operator,
        name: operator.name,
        role: identity.role,
        labels: identity.labels,
        scope_audience_id: operator.scope_audience_id,
    })
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::Status {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthorized",
        message: message.to_owned(),
    }
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"pushfleet\""),
    );
    response
}
