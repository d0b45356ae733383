//! A campaign's report (seed 001 "Report", issue 13): name, when it was sent, the result
//! (success, error, rescheduled, ongoing), the recipients, and the click engagement; a page
//! of recipients with each one's result; the same as a CSV download.

use super::view::ProgressView;
use crate::api_error::ErrorBody;
use crate::csv_response::{csv_download, line, PageFn};
use crate::extract::ApiPath;
use crate::identity::Principal;
use crate::routes::AppState;
use crate::ApiError;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use pushfleet_domain::DeliveryState;
use pushfleet_store::{
    Campaign, CampaignProgress, CampaignStatus, EventCounts, ReportRecipient, Store,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The seed's result, in four words (and the two ends the engine adds).
#[derive(Serialize, ToSchema)]
pub struct ResultCounts {
    /// Sent: the provider accepted the message.
    pub success: i64,
    /// Failed for good, or given up after every retry.
    pub error: i64,
    /// Waiting for a later time: a failed attempt's retry, an absent recipient's next round,
    /// or the spread of a send window.
    pub rescheduled: i64,
    /// Being sent now.
    pub ongoing: i64,
    /// Not sent on purpose: opted out or deactivated after the broadcast, no address.
    pub skipped: i64,
    /// Ended unsent by a cancel.
    pub cancelled: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CountsView {
    /// People's requests (scanners' left out).
    pub total: i64,
    /// Deliveries with at least one.
    pub unique: i64,
    /// Requests from link scanners and mail gateways, counted apart.
    pub scanner: i64,
}

impl From<EventCounts> for CountsView {
    fn from(c: EventCounts) -> Self {
        Self {
            total: c.total,
            unique: c.unique,
            scanner: c.scanner,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LinkView {
    /// The link's position in the message.
    pub position: u16,
    pub url: String,
    pub clicks: CountsView,
}

#[derive(Serialize, ToSchema)]
pub struct EngagementView {
    /// Deliveries the provider accepted: what clicks and opens are measured against.
    pub delivered: i64,
    pub clicks: CountsView,
    /// Unique clickers (deliveries with a person's click) per delivered, 0 to 1.
    pub click_rate: f64,
    /// Opens of HTML e-mails. Approximate: mail privacy features (Apple Mail, Gmail's image
    /// proxy) load the pixel for the recipient, and clients that block images never do.
    pub opens_approximate: CountsView,
    pub links: Vec<LinkView>,
}

#[derive(Serialize, ToSchema)]
pub struct ReportView {
    pub id: Uuid,
    pub name: String,
    pub status: CampaignStatus,
    /// When the broadcast began (the seed's "date and time sent").
    pub sent_at: Option<DateTime<Utc>>,
    /// Deliveries (one per recipient and channel).
    pub recipients: i64,
    pub result: ResultCounts,
    pub progress: ProgressView,
    pub engagement: EngagementView,
}

fn result_counts(p: &CampaignProgress) -> ResultCounts {
    let ongoing = p.open() - p.deferred;
    ResultCounts {
        success: p.count(DeliveryState::Sent),
        error: p.count(DeliveryState::Failed) + p.count(DeliveryState::Dead),
        rescheduled: p.deferred,
        ongoing,
        skipped: p.count(DeliveryState::Skipped),
        cancelled: p.count(DeliveryState::Cancelled),
    }
}

/// The campaign, if the caller may see it (404 otherwise, as for a missing one).
async fn visible_campaign(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<Campaign, ApiError> {
    let campaign = state.store.get_campaign(id).await?;
    if !principal.sees(&campaign.labels) {
        return Err(ApiError::NotFound("campaign"));
    }
    Ok(campaign)
}

/// The links of the campaign's message, by position.
async fn link_urls(store: &Store, campaign: &Campaign) -> Result<Vec<String>, ApiError> {
    let Some(template_id) = campaign.template_id else {
        return Ok(Vec::new());
    };
    let template = store
        .get_template(template_id)
        .await?
        .parse()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored template: {e}")))?;
    Ok(template.links().iter().map(str::to_owned).collect())
}

/// The report: the result per state and channel, and the engagement.
#[utoipa::path(get, path = "/v1/campaigns/{id}/report", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, body = ReportView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn campaign_report(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ReportView>, ApiError> {
    let campaign = visible_campaign(&state, &principal, id).await?;
    let (progress, engagement, urls) = tokio::try_join!(
        async { Ok::<_, ApiError>(state.store.campaign_progress(id).await?) },
        async { Ok(state.store.campaign_engagement(id).await?) },
        link_urls(&state.store, &campaign),
    )?;
    let delivered = progress.count(DeliveryState::Sent);
    let click_rate = if delivered > 0 {
        engagement.clicks.unique as f64 / delivered as f64
    } else {
        0.0
    };
    let links = urls
        .iter()
        .enumerate()
        .filter_map(|(position, url)| {
            let position = u16::try_from(position).ok()?;
            let clicks = engagement
                .links
                .iter()
                .find(|l| l.link == position)
                .map(|l| l.counts)
                .unwrap_or_default();
            Some(LinkView {
                position,
                url: url.clone(),
                clicks: clicks.into(),
            })
        })
        .collect();
    Ok(Json(ReportView {
        id: campaign.id,
        status: campaign.status(&progress),
        name: campaign.name,
        sent_at: campaign.message_frozen_at.or(campaign.evaluated_at),
        recipients: progress.total,
        result: result_counts(&progress),
        engagement: EngagementView {
            delivered,
            clicks: engagement.clicks.into(),
            click_rate,
            opens_approximate: engagement.opens.into(),
            links,
        },
        progress: ProgressView::from(progress),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecipientQuery {
    /// Only deliveries in this state.
    pub state: Option<DeliveryState>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// The `next_after` of the previous page.
    pub after: Option<i64>,
}

/// One recipient's line of the report.
#[derive(Serialize, ToSchema)]
pub struct RecipientLine {
    pub delivery_id: i64,
    pub person_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub channel: String,
    /// The delivery state: pending, retrying, sent, failed, dead, skipped, cancelled.
    pub state: String,
    /// The seed's result: success, error, rescheduled, ongoing, skipped or cancelled.
    pub result: &'static str,
    /// Why it failed, was skipped, or is tried again.
    pub reason: Option<String>,
    /// What the provider reported after accepting it (SMS: delivered, undelivered...).
    pub provider_status: Option<String>,
    pub attempts: i32,
    /// When the state was last written (for a sent one: when it was sent).
    pub at: DateTime<Utc>,
    /// When a rescheduled one is due.
    pub due_at: Option<DateTime<Utc>>,
    /// The recipient's clicks (scanners' left out).
    pub clicks: i64,
    /// Whether the open pixel was loaded (approximate).
    pub opened: bool,
}

fn result_of(r: &ReportRecipient, now: DateTime<Utc>) -> &'static str {
    match r.state.as_str() {
        "sent" => "success",
        "failed" | "dead" => "error",
        "skipped" => "skipped",
        "cancelled" => "cancelled",
        _ if r.due_at.is_some_and(|d| d > now) => "rescheduled",
        _ => "ongoing",
    }
}

impl RecipientLine {
    fn new(r: ReportRecipient, now: DateTime<Utc>) -> Self {
        let result = result_of(&r, now);
        let name = format!(
            "{} {}",
            r.first_name.unwrap_or_default(),
            r.last_name.unwrap_or_default()
        )
        .trim()
        .to_owned();
        Self {
            delivery_id: r.delivery_id,
            person_id: r.person_id,
            name,
            email: r.email,
            channel: r.channel,
            state: r.state,
            result,
            reason: r.last_error,
            provider_status: r.provider_status,
            attempts: r.attempts,
            at: r.updated_at,
            due_at: r.due_at,
            clicks: r.clicks,
            opened: r.opened,
        }
    }

    fn csv(&self) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        line(&[
            &self.delivery_id.to_string(),
            &self.person_id.to_string(),
            &self.name,
            &opt(&self.email),
            &self.channel,
            self.result,
            &self.state,
            &opt(&self.reason),
            &opt(&self.provider_status),
            &self.attempts.to_string(),
            &self.at.to_rfc3339(),
            &self.due_at.map(|d| d.to_rfc3339()).unwrap_or_default(),
            &self.clicks.to_string(),
            if self.opened { "yes" } else { "no" },
        ])
    }
}

const CSV_HEADER: [&str; 14] = [
    "delivery_id",
    "person_id",
    "name",
    "email",
    "channel",
    "result",
    "state",
    "reason",
    "provider_status",
    "attempts",
    "at",
    "due_at",
    "clicks",
    "opened",
];
/// Rows fetched per query of the CSV download.
const CSV_PAGE: i64 = 1000;

#[derive(Serialize, ToSchema)]
pub struct RecipientPage {
    pub recipients: Vec<RecipientLine>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// The report's recipients, in delivery order, a page at a time.
#[utoipa::path(get, path = "/v1/campaigns/{id}/report/recipients",
    params(("id" = Uuid, Path, description = "The resource's id"), RecipientQuery),
    responses((status = 200, body = RecipientPage), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn report_recipients(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
    query: Result<Query<RecipientQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecipientPage>, ApiError> {
    let q = crate::routes::query(query)?;
    let limit = crate::routes::page_limit(q.limit, 100)?;
    visible_campaign(&state, &principal, id).await?;
    let rows = state
        .store
        .report_recipients(id, q.state.map(DeliveryState::as_str), q.after, limit + 1)
        .await?;
    let now = Utc::now();
    let (recipients, next_after) = crate::routes::keyset_page(
        rows,
        limit,
        |r| RecipientLine::new(r, now),
        |r| r.delivery_id,
    );
    Ok(Json(RecipientPage {
        recipients,
        next_after,
    }))
}

/// Every recipient's line as CSV, streamed page by page.
#[utoipa::path(get, path = "/v1/campaigns/{id}/report.csv", params(("id" = Uuid, Path, description = "The resource's id")),
    responses((status = 200, content_type = "text/csv", description = "one line per delivery"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip(state, principal))]
pub async fn report_csv(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    visible_campaign(&state, &principal, id).await?;
    let store = state.store.clone();
    let next_page: PageFn<i64> = Box::new(move |cursor| {
        let store = store.clone();
        async move {
            let rows = store.report_recipients(id, None, cursor, CSV_PAGE).await?;
            let Some(last) = rows.last().map(|r| r.delivery_id) else {
                return Ok(None);
            };
            let now = Utc::now();
            let chunk: String = rows
                .into_iter()
                .map(|r| RecipientLine::new(r, now).csv())
                .collect();
            Ok(Some((chunk, last)))
        }
        .boxed()
    });
    Ok(csv_download(
        &format!("campaign-{id}-report.csv"),
        &CSV_HEADER,
        next_page,
    ))
}
