//! The audit trail of the API: every write (any method but GET) and every read of personal
//! data by an identified caller, with who, the operation, the entity, the answer's status
//! (a 403 included: an attempt is worth knowing of) and where the call came from. Calls
//! without a valid credential identify no one and are only logged.

use super::{Permission, Principal};
use crate::routes::AppState;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use pushfleet_store::NewAuditEntry;

/// The largest answer read for the id of what a create made.
const MAX_CREATED_ANSWER: usize = 1024 * 1024;

/// Whether a call with `permission` is audited.
pub fn audited(method: &Method, permission: Permission) -> bool {
    method != Method::GET || permission == Permission::PeopleRead
}

/// What the audit needs from the request, taken before it is handed on.
pub struct AuditContext {
    pub method: Method,
    pub route: String,
    pub path: String,
    pub client_addr: Option<String>,
    pub principal: Principal,
    pub kind: &'static str,
}

/// The route's `{id}` (or last parameter) as it was called.
fn entity_in_path(route: &str, path: &str) -> Option<String> {
    route
        .split('/')
        .zip(path.split('/'))
        .filter(|(r, _)| r.starts_with('{') && *r != "{token}")
        .map(|(_, p)| p.to_owned())
        .next()
}

/// Appends the entry, then returns the response (read whole when it is a create's answer,
/// for the created id).
pub async fn record(state: &AppState, ctx: AuditContext, response: Response) -> Response {
    let status = response.status();
    let (response, created) = if status == StatusCode::CREATED || status == StatusCode::ACCEPTED {
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, MAX_CREATED_ANSWER).await {
            Ok(bytes) => {
                let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| {
                        v.get("id")
                            .or_else(|| v.get("ids").and_then(|ids| ids.get(0)))
                            .and_then(|id| id.as_str().map(str::to_owned))
                    });
                (Response::from_parts(parts, Body::from(bytes)), id)
            }
            Err(e) => {
                tracing::error!(error = %e, "an answer could not be read for the audit log");
                (Response::from_parts(parts, Body::empty()), None)
            }
        }
    } else {
        (response, None)
    };
    let entity = entity_in_path(&ctx.route, &ctx.path).or(created);
    let entry = NewAuditEntry {
        actor_id: Some(ctx.principal.id),
        actor_name: Some(&ctx.principal.name),
        actor_role: Some(ctx.principal.role.as_str()),
        method: ctx.method.as_str(),
        route: &ctx.route,
        path: &ctx.path,
        entity_id: entity.as_deref(),
        status: status.as_u16(),
        kind: ctx.kind,
        client_addr: ctx.client_addr.as_deref(),
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        // The act is done; its record is missing. Loud, so that it is seen and fixed.
        tracing::error!(error = %e, route = %ctx.route, "writing the audit log failed");
        metrics::counter!("pushfleet_api_audit_failures_total").increment(1);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entity_is_the_routes_parameter() {
        assert_eq!(
            entity_in_path("/v1/campaigns/{id}", "/v1/campaigns/abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            entity_in_path(
                "/v1/segments/{id}/uploads/{upload_id}",
                "/v1/segments/s/uploads/u"
            )
            .as_deref(),
            Some("s")
        );
        assert_eq!(entity_in_path("/v1/campaigns", "/v1/campaigns"), None);
    }
}
