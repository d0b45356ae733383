use super::{required_text, AppState};
use crate::api_error::ErrorBody;
use crate::extract::{ApiJson, ApiPath};
use crate::identity::Principal;
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, NaiveTime, Utc};
use pushfleet_domain::{Channel, SendWindow, SendWindowError};
use pushfleet_domain::{PermissionLabel, Text, Timestamp};
use pushfleet_store::{
    Campaign, CampaignProgress, CampaignStatus, Labelled, NewCampaign, StoreError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: Text,
    pub audience_id: Uuid,
    pub template_id: Uuid,
    /// One or more of `email`, `teams`, `sms`.
    pub channels: Vec<Channel>,
    /// When to start; now when absent.
    pub start_at: Option<Timestamp>,
    /// Spread the sends at random over days and working hours instead of sending them all at
    /// `start_at`.
    pub send_window: Option<SendWindowInput>,
    /// Teams: send only when the recipient's presence is Available; otherwise retry 10 min
    /// later, at the next hour, the next working day, for three rounds (then not sent).
    #[serde(default)]
    pub wait_for_availability: bool,
    /// Permission labels (seed 003): who, of the operators limited to labels, may see and
    /// change it. A limited caller gives only labels they hold, and gets theirs when absent.
    pub labels: Option<Vec<PermissionLabel>>,
}

/// When sends may go out: for `days` days from the start day, within working hours on the
/// given weekdays, in the company's time zone or each recipient's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendWindowInput {
    /// Days the sends spread over, counted from the start day (1 to 31).
    pub days: u32,
    /// Daily working hours in local time; all day when absent.
    pub working_hours: Option<WorkingHours>,
    /// ISO weekdays sends may go out on (1 = Monday ... 7 = Sunday); every day when empty.
    #[serde(default)]
    pub weekdays: Vec<u32>,
    /// The company's IANA time zone, e.g. `Europe/Paris`; UTC when absent.
    pub time_zone: Option<Text>,
    /// Follow each recipient's own time zone (people without one use the company's).
    #[serde(default)]
    pub recipient_time_zone: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// `HH:MM` or `HH:MM:SS`.
    pub from: Text,
    /// `HH:MM` or `HH:MM:SS`, after `from`.
    pub to: Text,
}

fn parse_clock(field: &str, value: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(value, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(value, "%H:%M"))
        .map_err(|_| ApiError::invalid(field, format!("`{value}` is not a time of day (HH:MM)")))
}

impl SendWindowInput {
    fn into_window(self, start: DateTime<Utc>) -> Result<SendWindow, ApiError> {
        let hours = match &self.working_hours {
            Some(h) => Some((
                parse_clock("send_window.working_hours.from", &h.from)?,
                parse_clock("send_window.working_hours.to", &h.to)?,
            )),
            None => None,
        };
        let window = SendWindow {
            start,
            days: self.days,
            hours,
            weekdays: self.weekdays,
            time_zone: self
                .time_zone
                .map_or_else(|| "UTC".into(), Text::into_string),
            recipient_time_zone: self.recipient_time_zone,
        };
        window.validate().map_err(|e| {
            let field = match e {
                SendWindowError::UnknownTimeZone(_) => "send_window.time_zone",
                SendWindowError::EmptyHours => "send_window.working_hours",
                SendWindowError::Days => "send_window.days",
                SendWindowError::Weekday(_) => "send_window.weekdays",
            };
            ApiError::invalid(field, e.to_string())
        })?;
        Ok(window)
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProgressView {
    /// Delivery rows written (one per recipient and channel).
    pub total: i64,
    /// Pending or retrying deliveries waiting for their due time (spread sends, long retries).
    pub deferred: i64,
    /// Counts per delivery state: pending, retrying, sent, failed, dead.
    pub by_state: BTreeMap<String, i64>,
    pub by_channel: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per channel, counts per status the provider reported after accepting a message
    /// (SMS: queued, sent, delivered, undelivered, failed). Deliveries without a report
    /// are not counted.
    pub by_provider_status: BTreeMap<String, BTreeMap<String, i64>>,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    pub id: Uuid,
    pub name: String,
    pub audience_id: Uuid,
    pub template_id: Uuid,
    #[schema(value_type = Vec<Channel>)]
    pub channels: Vec<String>,
    pub start_at: DateTime<Utc>,
    pub status: CampaignStatus,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub evaluated_at: Option<DateTime<Utc>>,
    /// The spread-out sending window, when the campaign has one.
    #[schema(value_type = Option<Object>)]
    pub send_window: Option<SendWindow>,
    pub wait_for_availability: bool,
    /// Why the evaluation was given up after repeated failures, when it was; replaying the
    /// campaign's dead letters evaluates it again.
    pub evaluation_error: Option<String>,
    pub progress: ProgressView,
}

impl CampaignView {
    fn new(c: Campaign, p: CampaignProgress) -> Self {
        Self {
            status: c.status(&p),
            id: c.id,
            name: c.name,
            audience_id: c.audience_id,
            template_id: c.template_id,
            channels: c.channels,
            start_at: c.start_at,
            labels: c.labels,
            created_at: c.created_at,
            evaluated_at: c.evaluated_at,
            send_window: c.send_window.map(|w| w.0),
            wait_for_availability: c.wait_for_availability,
            evaluation_error: c.evaluation_error,
            progress: ProgressView {
                total: p.total,
                deferred: p.deferred,
                by_state: p.by_state,
                by_channel: p.by_channel,
                by_provider_status: p.by_provider_status,
            },
        }
    }
}

/// Schedules a campaign. The scheduler starts it at `start_at`.
#[utoipa::path(post, path = "/v1/campaigns", request_body = CreateCampaign,
    responses((status = 201, body = CampaignView), (status = 400, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateCampaign>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let labels = principal.labels_for(body.labels)?;
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name".into(), &body.name, 200);
    ApiError::check(errors)?;
    let mut channels = body.channels;
    channels.sort();
    channels.dedup();
    if channels.is_empty() {
        return Err(ApiError::invalid("channels", "choose at least one channel"));
    }
    let start_at = body.start_at.map_or_else(Utc::now, Timestamp::get);
    let send_window = body
        .send_window
        .map(|w| w.into_window(start_at))
        .transpose()?;
    let new = NewCampaign {
        name,
        audience_id: body.audience_id,
        template_id: body.template_id,
        channels,
        start_at,
        send_window,
        wait_for_availability: body.wait_for_availability,
        labels,
    };
    // What the caller's labels do not reach is, to them, not there.
    let hidden = |e: ApiError, field: &'static str, what: &str| match e {
        ApiError::NotFound(_) => ApiError::invalid(field, format!("no {what} with this id")),
        other => other,
    };
    principal
        .visible(&state.store, Labelled::Audience, new.audience_id)
        .await
        .map_err(|e| hidden(e, "audience_id", "audience"))?;
    principal
        .visible(&state.store, Labelled::Template, new.template_id)
        .await
        .map_err(|e| hidden(e, "template_id", "template"))?;
    // A reference to something missing is a fault in this request's body: 422, naming it.
    let campaign = state
        .store
        .create_campaign(&new)
        .await
        .map_err(|e| match e {
            StoreError::NotFound("audience") => {
                ApiError::invalid("audience_id", "no audience with this id")
            }
            StoreError::NotFound("template") => {
                ApiError::invalid("template_id", "no template with this id")
            }
            StoreError::Conflict(msg) => ApiError::invalid("audience_id", msg),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(CampaignView::new(campaign, CampaignProgress::default())),
    ))
}

/// A campaign with its progress: delivery counts per state and per channel, and per
/// provider-reported status per channel.
#[utoipa::path(get, path = "/v1/campaigns/{id}", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn get_campaign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CampaignView>, ApiError> {
    let campaign = state.store.get_campaign(id).await?;
    if !principal.sees(&campaign.labels) {
        return Err(ApiError::NotFound("campaign"));
    }
    let progress = state.store.campaign_progress(id).await?;
    Ok(Json(CampaignView::new(campaign, progress)))
}
