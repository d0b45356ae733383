//! Postgres, the store of record: schema migrations and every query the fleet runs.
//!
//! Queries are plain `sqlx::query` with bound parameters (never string-built SQL) so the
//! workspace builds without a database at compile time.

mod api_keys;
mod audiences;
mod audit_log;
mod bot_replies;
mod campaign_controls;
mod campaign_lifecycle;
mod campaign_preview;
mod campaign_reach;
mod campaign_recipients;
mod campaign_report;
mod campaign_try;
mod campaigns;
mod conversation_templates;
mod criteria_sql;
mod dead_letters;
mod deliveries;
mod due_times;
mod error;
mod idempotency;
mod labels;
mod operators;
mod opt_out_notices;
mod opt_outs;
mod outbox;
mod people;
mod people_import;
mod person_feed;
mod provider_statuses;
mod push_start;
mod push_users;
mod pushes;
mod segment_uploads;
mod segments;
mod survey_answers;
mod surveys;
mod templates;
mod tracking;

pub use api_keys::{ApiKey, NewApiKey};
pub use audiences::{Audience, AudienceMember, Preview, Snapshot};
pub use audit_log::{AuditEntry, AuditFilter, NewAuditEntry};
pub use bot_replies::OwedReply;
pub use campaign_controls::Halt;
pub use campaign_lifecycle::{CampaignChange, CampaignFilter, Deletion};
pub use campaign_preview::{PersonKey, PreviewPerson};
pub use campaign_reach::{ChannelReach, Reach};
pub use campaign_recipients::{RecipientSource, Recipients};
pub use campaign_report::{Engagement, EventCounts, LinkClicks, ReportRecipient};
pub use campaign_try::{Try, TryError, Unreachable};
pub use campaigns::{Actor, Campaign, CampaignProgress, CampaignStatus, NewCampaign};
pub use conversation_templates::{
    ConversationQuestion, ConversationTemplate, NewConversationTemplate,
};
pub use criteria_sql::push_audience_filter;
pub use dead_letters::{DeadDelivery, ReplaySelection};
pub use deliveries::{DeliveryProgress, Expansion, Outcome, PresenceContext, PublishBatch};
pub use error::StoreError;
pub use idempotency::{KeyClaim, StoredResponse, IDEMPOTENCY_KEY_TTL_HOURS};
pub use labels::Labelled;
pub use operators::{Operator, OperatorChange, OperatorSignIn};
pub use opt_out_notices::{OptOutNotice, OptOutNoticeError, OptOutScope, OPT_OUT_NOTICES};
pub use outbox::{OutboxBatch, OutboxMessage};
pub use people::{NewPerson, Person};
pub use people_import::{
    field as import_field, ImportCounts, ImportPerson, ImportSession, RowError,
};
pub use person_feed::{FeedConversation, FeedTask};
pub use provider_statuses::{ProviderStatusReport, StatusApplied};
pub use push_start::StartedPush;
pub use push_users::{
    conductor_kinds, AddedUsers, Conductor, FollowUp, FollowUpApplied, PushCounts, PushUser,
    PushUserFilter,
};
pub use pushes::{
    NewPush, Push, PushChange, PushFilter, PushStatus, METHOD_LOCKED, NOT_PUSHABLE, PUSH_CLOSED,
};
pub use segment_uploads::{ClaimedUpload, SegmentUpload, UploadClaim, UploadCounts, UploadStatus};
pub use segments::{
    BatchReport, MemberSource, Segment, SegmentChange, SegmentMember, SegmentReplies,
    SegmentRowError,
};
pub use survey_answers::{AnswerContext, AnswerRow, SurveyTallies};
pub use surveys::{NewSurvey, StoredSurvey, SURVEY_SENT};
pub use templates::{NewTemplate, StoredTemplate};
pub use tracking::{LinkedCampaign, NewTrackingEvent, TOO_SOON};

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

/// The migrations compiled into every binary; applied only by the explicit `migrate` step.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle on the store: a connection pool plus the queries, grouped by table in the
/// modules of this crate.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations. Run once per release (`api migrate`), not by every replica.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Readiness probe: a round trip to the server.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl Store {
    /// A `/readyz` check for this store. It asks the database on a connection of its own
    /// (opened on first use), not from the request pool: readiness says whether Postgres
    /// answers, not whether this replica's requests happen to hold every pooled connection
    /// (a busy pool answered 503 and took the replica out of service, making it worse).
    pub fn readiness_check(
        &self,
    ) -> impl Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static
    {
        let probe = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with((*self.pool.connect_options()).clone());
        move || {
            let probe = probe.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1")
                    .execute(&probe)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }
    }
}
