use crate::api_error::{ErrorBody, ErrorDetail, FieldError};
use crate::routes::{
    audiences, campaigns, dead_letters, people, people_import, templates, twilio_status,
};
use utoipa::OpenApi;

/// The OpenAPI document served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pushfleet API",
        description = "Targeted messaging over e-mail, Teams and SMS."
    ),
    paths(
        people::create_people,
        people::get_person,
        people::deactivate_person,
        people_import::import_people,
        audiences::create_audience,
        audiences::get_audience,
        audiences::preview_criteria,
        audiences::preview_audience,
        audiences::freeze_audience,
        audiences::get_snapshot,
        templates::create_template,
        templates::get_template,
        campaigns::create_campaign,
        campaigns::get_campaign,
        dead_letters::list_dead_letters,
        dead_letters::replay_dead_letters,
        twilio_status::twilio_status_callback,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        FieldError,
        people::CreatePeople,
        people::PersonInput,
        people::TeamsInput,
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
        campaigns::CreateCampaign,
        campaigns::CampaignView,
        campaigns::ProgressView,
        campaigns::SendWindowInput,
        campaigns::WorkingHours,
        dead_letters::DeadLetterView,
        dead_letters::DeadLetterPage,
        dead_letters::ReplayRequest,
        dead_letters::ReplayResult,
        twilio_status::TwilioStatusCallback,
        twilio_status::StatusCallbackAnswer,
    ))
)]
pub struct ApiDoc;
