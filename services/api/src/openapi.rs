use crate::api_error::{ErrorBody, ErrorDetail, FieldError};
use crate::routes::{
    audiences, campaigns, dead_letters, people, segment_uploads, segments, teams_messages,
    templates, twilio_inbound, twilio_status, unsubscribe,
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
        audiences::create_audience,
        audiences::get_audience,
        templates::create_template,
        templates::get_template,
        campaigns::create_campaign,
        campaigns::get_campaign,
        dead_letters::list_dead_letters,
        dead_letters::replay_dead_letters,
        twilio_status::twilio_status_callback,
        segments::create_segment,
        segments::list_segments,
        segments::get_segment,
        segments::add_members,
        segments::members_csv,
        segment_uploads::upload_csv,
        segment_uploads::get_upload,
        segment_uploads::upload_errors_csv,
        twilio_inbound::twilio_inbound,
        teams_messages::teams_messages,
        unsubscribe::unsubscribe_page,
        unsubscribe::unsubscribe_one_click,
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
        audiences::CreateAudience,
        audiences::AudienceView,
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
        segments::CreateSegment,
        segments::SegmentView,
        segments::SegmentPage,
        segments::AddMembers,
        segments::AddMembersReport,
        segments::RowErrorView,
        segment_uploads::UploadView,
        twilio_inbound::TwilioInboundMessage,
        teams_messages::Activity,
        teams_messages::ChannelAccount,
        teams_messages::ActivityResult,
    ))
)]
pub struct ApiDoc;
