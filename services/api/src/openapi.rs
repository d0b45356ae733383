use crate::api_error::{ErrorBody, ErrorDetail, FieldError};
use crate::identity::Access;
use crate::routes::{
    audiences, campaigns, dead_letters, people, people_import, segment_uploads, segments, surveys,
    teams_messages, templates, twilio_inbound, twilio_status,
};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// The document's frame: its title and the shared schemas. Its paths come from the router
/// (`server::routes`), so the list of operations is kept in one place; `document()` is the
/// whole of it, as served at `/openapi.json` and printed by `pushfleet-api openapi`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "pushfleet API",
        description = "Targeted messaging over e-mail, Teams and SMS."
    ),
    components(schemas(
        ErrorBody,
        // Named by a query parameter alone (the report's `state`), so not found by utoipa.
        pushfleet_domain::DeliveryState,
        ErrorDetail,
        FieldError,
        people::CreatePeople,
        people::PersonInput,
        people::TeamsInput,
        people::TeamsView,
        people::CreatedPeople,
        people::PersonView,
        people_import::ImportReport,
        people_import::RowErrorView,
        audiences::CreateAudience,
        audiences::AudienceView,
        audiences::PreviewRequest,
        audiences::PreviewView,
        audiences::MemberView,
        audiences::SnapshotView,
        templates::CreateTemplate,
        templates::TemplateView,
        templates::UpdateTemplate,
        templates::TemplatePage,
        surveys::CreateSurvey,
        surveys::UpdateSurvey,
        surveys::SurveyView,
        surveys::SurveyActor,
        surveys::SurveyPage,
        surveys::report::SurveyReport,
        surveys::report::QuestionReport,
        surveys::report::ChoiceCount,
        surveys::report::RatingCount,
        pushfleet_domain::survey::Question,
        pushfleet_domain::survey::QuestionKind,
        pushfleet_domain::survey::Choice,
        campaigns::CreateCampaign,
        campaigns::InitialStatus,
        campaigns::view::CampaignView,
        campaigns::view::ProgressView,
        campaigns::view::ActorView,
        campaigns::schedule::SendWindowInput,
        campaigns::schedule::WorkingHours,
        campaigns::lifecycle::UpdateCampaign,
        campaigns::lifecycle::SendCampaign,
        campaigns::lifecycle::CloneCampaign,
        campaigns::lifecycle::DeletedCampaign,
        campaigns::list::CampaignPage,
        campaigns::tries::TryCampaign,
        campaigns::recipients::ReachView,
        campaigns::recipients::ChannelReachView,
        campaigns::preview::PreviewFor,
        campaigns::preview::PreviewView,
        campaigns::preview::ChannelPreview,
        campaigns::preview::EmailPreview,
        campaigns::preview::TeamsPreview,
        campaigns::preview::SmsPreview,
        campaigns::tries::TryView,
        campaigns::tries::UnreachableView,
        dead_letters::DeadLetterView,
        dead_letters::DeadLetterPage,
        dead_letters::ReplayRequest,
        dead_letters::ReplayResult,
        twilio_status::TwilioStatusCallback,
        twilio_status::StatusCallbackAnswer,
        segments::CreateSegment,
        segments::UpdateSegment,
        segments::SegmentView,
        segments::SegmentPage,
        segments::AddMembers,
        segments::AddMembersReport,
        segments::RowErrorView,
        segment_uploads::UploadView,
        twilio_inbound::TwilioInboundMessage,
        teams_messages::Activity,
        teams_messages::ChannelAccount,
        teams_messages::ConversationAccount,
        teams_messages::ActivityResult,
        teams_messages::InvokeMessage,
    ))
)]
pub struct ApiDoc;

/// The whole OpenAPI document, without a server, as JSON.
pub fn document() -> serde_json::Value {
    let (_, doc) = crate::server::routes(0).split_for_parts();
    to_json(&complete(doc))
}

/// The document as served. utoipa 5 writes a link's fields in snake case
/// (`operation_id`); OpenAPI names them in camel case, so they are renamed here.
pub fn to_json(doc: &OpenApi) -> serde_json::Value {
    let mut json = serde_json::to_value(doc).unwrap_or_default();
    let links = json
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|r| r.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(serde_json::Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(snake) {
                link.insert(camel.to_owned(), v);
            }
        }
    }
    json
}

/// Adds the answers every operation of a kind can give, so that no operation forgets one:
/// a body that is not JSON or too large or of the wrong type, a path id that is not one, a
/// query that does not parse, and a missing resource.
pub fn complete(mut doc: OpenApi) -> OpenApi {
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`pushfleet-api api-key create`, or POST /v1/api-keys), or \
                         an operator's token from the organisation's identity provider (OIDC)",
                    ))
                    .build(),
            ),
        );
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in operations_by_method(item) {
            secure(op, &method, path);
        }
        if let Some(post) = item.post.as_mut() {
            if crate::idempotency::applies_to(&axum::http::Method::POST, path) {
                takes_idempotency_key(post);
            }
        }
        let has_path_params = path.contains('{');
        for op in operations(item) {
            let has_body = op.request_body.is_some();
            let has_query = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
            });
            if has_body {
                answer(
                    op,
                    400,
                    "The body is not well-formed (or not JSON), or could not be read",
                );
                answer(
                    op,
                    408,
                    "The body stalled longer than the server's read timeout",
                );
                answer(op, 413, "The body is larger than the server accepts");
                answer(
                    op,
                    415,
                    "The body's content type is not one this operation reads",
                );
                answer(op, 422, "The body is well-formed but a value is invalid");
            }
            if has_path_params {
                answer(op, 400, "A path parameter is malformed");
                answer(op, 404, "No such resource");
            }
            if has_query {
                answer(op, 400, "A query parameter is malformed");
                answer(op, 422, "A query parameter is out of range");
            }
        }
    }
    link_creates_to_reads(&mut doc);
    doc
}

/// What a create answers and the operations that take it: (create, the operation's method
/// and path, its parameters as runtime expressions). OpenAPI links, so that clients and
/// schemathesis's stateful phase follow a create to what it made.
const LINKS: &[(&str, &str, &str, LinkParameters)] = &[
    (
        "/v1/people",
        "get",
        "/v1/people/{id}",
        &[("id", "$response.body#/ids/0")],
    ),
    (
        "/v1/people",
        "delete",
        "/v1/people/{id}",
        &[("id", "$response.body#/ids/0")],
    ),
    ("/v1/audiences", "get", "/v1/audiences/{id}", ID),
    ("/v1/audiences", "get", "/v1/audiences/{id}/preview", ID),
    ("/v1/audiences", "post", "/v1/audiences/{id}/snapshots", ID),
    (
        "/v1/audiences/{id}/snapshots",
        "get",
        "/v1/snapshots/{id}",
        ID,
    ),
    ("/v1/templates", "get", "/v1/templates/{id}", ID),
    ("/v1/surveys", "get", "/v1/surveys/{id}", ID),
    ("/v1/surveys", "patch", "/v1/surveys/{id}", ID),
    ("/v1/campaigns", "get", "/v1/campaigns/{id}", ID),
    ("/v1/segments", "get", "/v1/segments/{id}", ID),
    ("/v1/segments", "patch", "/v1/segments/{id}", ID),
    ("/v1/segments", "post", "/v1/segments/{id}/members", ID),
    ("/v1/segments", "get", "/v1/segments/{id}/members.csv", ID),
    ("/v1/segments", "post", "/v1/segments/{id}/uploads", ID),
    (
        "/v1/segments/{id}/uploads",
        "get",
        "/v1/segments/{id}/uploads/{upload_id}",
        &[
            ("id", "$request.path.id"),
            ("upload_id", "$response.body#/id"),
        ],
    ),
    ("/v1/api-keys", "delete", "/v1/api-keys/{id}", ID),
];

/// A link's parameters: (name, runtime expression).
type LinkParameters = &'static [(&'static str, &'static str)];

/// The created entity's `id` as the `{id}` of the next operation.
const ID: LinkParameters = &[("id", "$response.body#/id")];

fn link_creates_to_reads(doc: &mut OpenApi) {
    for (create, method, target, parameters) in LINKS {
        let Some(target_id) = doc
            .paths
            .paths
            .get(*target)
            .and_then(|item| match *method {
                "get" => item.get.as_ref(),
                "post" => item.post.as_ref(),
                "patch" => item.patch.as_ref(),
                "delete" => item.delete.as_ref(),
                _ => None,
            })
            .and_then(|op| op.operation_id.clone())
        else {
            continue;
        };
        let Some(RefOr::T(created)) = doc
            .paths
            .paths
            .get_mut(*create)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| {
                let answers = &mut op.responses.responses;
                let created = if answers.contains_key("201") {
                    "201"
                } else {
                    "202"
                };
                answers.get_mut(created)
            })
        else {
            continue;
        };
        let link = parameters
            .iter()
            .fold(
                LinkBuilder::new().operation_id(&target_id),
                |l, (name, value)| l.parameter(*name, *value),
            )
            .build();
        created.links.insert(target_id, RefOr::T(link));
    }
}

const BEARER: &str = "bearer";
/// The extension naming the permission an operation requires (`campaigns:write`), read by
/// the role matrix test.
pub const PERMISSION_EXTENSION: &str = "x-pushfleet-permission";

/// Declares what the operation requires, from the one table of operations: public, or a
/// bearer credential holding a permission (and then 401 and 403 as answers). An operation
/// missing from the table is declared as requiring a permission no one holds, which the
/// middleware enforces.
fn secure(op: &mut Operation, method: &axum::http::Method, path: &str) {
    match crate::identity::access(method, path) {
        Some(Access::Public) => op.security = Some(vec![SecurityRequirement::default()]),
        access => {
            let permission = match access {
                Some(Access::Requires(p)) => p.as_str(),
                _ => "undeclared",
            };
            op.security = Some(vec![SecurityRequirement::new::<_, _, String>(BEARER, [])]);
            op.extensions
                .get_or_insert_with(Default::default)
                .insert(PERMISSION_EXTENSION.into(), permission.into());
            answer(
                op,
                401,
                "No credential, or an unknown, revoked or expired one",
            );
            answer(
                op,
                403,
                "The caller's role does not hold the permission required",
            );
            answer(
                op,
                503,
                "The identity provider's signing keys cannot be fetched now; retry",
            );
        }
    }
}

fn operations_by_method(
    item: &mut PathItem,
) -> impl Iterator<Item = (axum::http::Method, &mut Operation)> {
    use axum::http::Method;
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Documents `status` with an `ErrorBody`, unless the operation documents it already.
fn answer(op: &mut Operation, status: u16, description: &str) {
    let key = status.to_string();
    if op.responses.responses.contains_key(&key) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    op.responses.responses.insert(key, RefOr::T(response));
}

/// Documents the optional `Idempotency-Key` header and the answers it brings.
fn takes_idempotency_key(op: &mut Operation) {
    let header = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .description(Some(
            "Any unique string (a UUID) of 1 to 255 visible ASCII characters: a retry with the \
             same key and request gets the first answer (with `Idempotent-Replayed: true`) \
             and creates nothing again. Kept for 24 hours.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(header);
    answer(op, 400, "A malformed body or Idempotency-Key");
    answer(
        op,
        408,
        "The body stalled longer than the server's read timeout",
    );
    answer(
        op,
        409,
        "A request with this Idempotency-Key is still running",
    );
    answer(op, 413, "The body is larger than the server accepts");
    answer(
        op,
        422,
        "Invalid values, or an Idempotency-Key used for another request",
    );
}
