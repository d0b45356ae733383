use crate::audiences::freeze_in;
use crate::campaign_recipients::{Members, RecipientSource, Recipients};
use crate::{Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use pushfleet_domain::{
    Channel, DeliveryState, EmailAddress, PhoneNumber, Recipient, SendJob, TeamsConversationRef,
};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Transaction};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// What expanding a campaign's recipients did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    /// Delivery rows written now (0 when a repeated evaluation found them all there).
    pub inserted: u64,
    /// Rows written as failed at once because the person has no address on that channel.
    pub unreachable: u64,
    /// Rows written as skipped because the person opted out of that channel.
    pub skipped: u64,
    /// An earlier evaluation of this campaign got this far: its send jobs may be queued.
    pub evaluated_before: bool,
}

/// The result of one send attempt, recorded by a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub delivery_id: i64,
    pub state: DeliveryState,
    pub error: Option<String>,
    pub provider_message_id: Option<String>,
    /// For a retry that waits longer than the delay queues hold: unpublish the delivery and
    /// let the scheduler publish it again at this time.
    pub defer_until: Option<DateTime<Utc>>,
    /// The recipient was not available (no provider call was made: `attempts` stays).
    pub presence_miss: bool,
    /// Its campaign is paused: no provider call was made; the delivery is unpublished and
    /// waits, with no due time, for the campaign to resume.
    pub parked: bool,
    /// SMS segments the message was billed as (sent SMS only).
    pub segments: Option<u32>,
    /// Teams: a conversation created for this send, stored on the person for later sends.
    pub new_teams_conversation: Option<String>,
}

impl Outcome {
    /// An outcome with nothing but its state; set the other fields with struct update syntax.
    pub fn new(delivery_id: i64, state: DeliveryState) -> Self {
        Self {
            delivery_id,
            state,
            error: None,
            provider_message_id: None,
            defer_until: None,
            presence_miss: false,
            parked: false,
            segments: None,
            new_teams_conversation: None,
        }
    }
}

/// What is recorded of a delivery, for a sender deciding whether a job is already done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryProgress {
    pub state: DeliveryState,
    /// Provider calls recorded (a presence miss is not one).
    pub attempts: u32,
}

/// Deliveries locked for publishing (by an evaluator or a scheduler). Publish `jobs`, then
/// `mark_published`; dropping the batch leaves every row as it was for the next attempt.
pub struct PublishBatch {
    tx: Transaction<'static, Postgres>,
    pub jobs: Vec<SendJob>,
    /// Rows that cannot become a send job (their recipient's stored data no longer parses,
    /// the person is gone), with the reason. `mark_published` ends them `failed`, so one
    /// bad row never holds back the rest of its batch, nor comes back in the next one.
    pub poisoned: Vec<(i64, String)>,
    /// Rows not to send on purpose, with the reason: the person opted out of the channel or
    /// was deactivated after the campaign was evaluated. `mark_published` ends them
    /// `skipped`: an unsubscribe is honoured by every send that had not left yet.
    pub skipped: Vec<(i64, String)>,
}

impl PublishBatch {
    /// No row was locked: nothing left to publish.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.poisoned.is_empty() && self.skipped.is_empty()
    }

    /// The highest delivery id in the batch (0 when empty): where the next claim starts.
    pub fn last_id(&self) -> i64 {
        let jobs = self.jobs.iter().map(|j| j.delivery_id);
        let others = self.poisoned.iter().chain(&self.skipped).map(|(id, _)| *id);
        jobs.chain(others).max().unwrap_or(0)
    }

    /// Marks the jobs published and the poisoned rows failed, and commits.
    pub async fn mark_published(mut self) -> Result<(), StoreError> {
        let ids: Vec<i64> = self.jobs.iter().map(|j| j.delivery_id).collect();
        sqlx::query("UPDATE deliveries SET published_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        if !self.poisoned.is_empty() {
            let ids: Vec<i64> = self.poisoned.iter().map(|(id, _)| *id).collect();
            let reasons: Vec<String> = self.poisoned.iter().map(|(_, r)| clean_text(r)).collect();
            sqlx::query(
                "UPDATE deliveries d
                 SET state = 'failed', last_error = u.reason, updated_at = now()
                 FROM UNNEST($1::bigint[], $2::text[]) AS u(id, reason)
                 WHERE d.id = u.id AND d.state NOT IN ('sent', 'failed', 'dead', 'skipped')",
            )
            .bind(&ids)
            .bind(&reasons)
            .execute(&mut *self.tx)
            .await?;
        }
        if !self.skipped.is_empty() {
            let ids: Vec<i64> = self.skipped.iter().map(|(id, _)| *id).collect();
            let reasons: Vec<String> = self.skipped.iter().map(|(_, r)| r.clone()).collect();
            sqlx::query(
                "UPDATE deliveries d
                 SET state = 'skipped', last_error = u.reason, updated_at = now()
                 FROM UNNEST($1::bigint[], $2::text[]) AS u(id, reason)
                 WHERE d.id = u.id AND d.state IN ('pending', 'retrying')",
            )
            .bind(&ids)
            .bind(&reasons)
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// The columns of `people p` a recipient is built from ([`RecipientRow`]): the send jobs'
/// and the preview's, so a preview shows what a send would.
macro_rules! recipient_columns {
    () => {
        "p.id AS person_id, p.first_name, p.last_name, p.email, p.phone,
        p.teams_conversation, p.department, p.job_title, p.location, p.language, p.time_zone,
        p.external_id, p.joining_date, p.attributes, coalesce(p.active, true) AS active"
    };
}
pub(crate) use recipient_columns;

/// Everything a send job needs, for the queries that lock deliveries to publish them. The
/// person is a LEFT JOIN: a delivery whose person is gone must fail, not wait unseen.
const JOB_SELECT: &str = concat!(
    "SELECT d.id, d.campaign_id, d.channel, d.attempts, c.template_id,
        c.wait_for_availability, c.link_key, ",
    recipient_columns!(),
    ", EXISTS (SELECT 1 FROM channel_opt_outs o
                WHERE o.person_id = d.person_id AND o.channel = d.channel) AS opted_out
     FROM deliveries d
     LEFT JOIN people p ON p.id = d.person_id
     JOIN campaigns c ON c.id = d.campaign_id"
);

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    campaign_id: Uuid,
    channel: String,
    attempts: i32,
    template_id: Uuid,
    wait_for_availability: bool,
    link_key: i64,
    #[sqlx(flatten)]
    person: RecipientRow,
    opted_out: bool,
}

/// A person as `recipient_columns!` reads them (all NULL when the person is gone).
#[derive(sqlx::FromRow)]
pub(crate) struct RecipientRow {
    pub(crate) person_id: Option<Uuid>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    /// Raw, decoded in `into_job`: a malformed value must fail its row, not the query.
    teams_conversation: Option<Json<serde_json::Value>>,
    department: Option<String>,
    job_title: Option<String>,
    location: Option<String>,
    language: Option<String>,
    time_zone: Option<String>,
    external_id: Option<String>,
    joining_date: Option<NaiveDate>,
    attributes: Option<Json<serde_json::Value>>,
    pub(crate) active: bool,
}

impl JobRow {
    /// The send job, or why this row cannot have one.
    fn into_job(self, maybe_duplicate: bool) -> Result<SendJob, String> {
        let id = self.id;
        let channel: Channel = self
            .channel
            .parse()
            .map_err(|e| format!("not sent: stored channel is invalid: {e}"))?;
        if self.person.person_id.is_none() {
            return Err("not sent: the recipient no longer exists".into());
        }
        let person_id = self.person.person_id;
        let recipient = self.person.into_recipient(Some(channel), Some(id))?;
        Ok(SendJob {
            delivery_id: id,
            campaign_id: self.campaign_id,
            channel,
            template_id: self.template_id,
            person_id,
            recipient,
            attempt: u32::try_from(self.attempts).unwrap_or(0) + 1,
            maybe_duplicate,
            wait_for_availability: self.wait_for_availability,
            link_key: Some(self.link_key),
        })
    }
}

impl RecipientRow {
    /// The recipient as a sender gets it, or why there is none. The address of `own`
    /// channel (the job's) must parse; another channel's address that no longer parses is
    /// left out (it only feeds placeholders) and logged. `delivery_id` is for the logs.
    pub(crate) fn into_recipient(
        self,
        own: Option<Channel>,
        delivery_id: Option<i64>,
    ) -> Result<Recipient, String> {
        let id = delivery_id;
        let own = |c: Channel| own == Some(c);
        let email = match self.email.as_deref().map(EmailAddress::parse).transpose() {
            Ok(e) => e,
            Err(e) if own(Channel::Email) => {
                return Err(format!(
                    "not sent: the recipient's stored e-mail address is invalid: {e}"
                ))
            }
            Err(e) => {
                tracing::warn!(delivery_id = ?id, error = %e, "stored e-mail address is invalid; left out");
                None
            }
        };
        let phone = match self.phone.as_deref().map(PhoneNumber::parse).transpose() {
            Ok(p) => p,
            Err(e) if own(Channel::Sms) => {
                return Err(format!(
                    "not sent: the recipient's stored phone number is invalid: {e}"
                ))
            }
            Err(e) => {
                tracing::warn!(delivery_id = ?id, error = %e, "stored phone number is invalid; left out");
                None
            }
        };
        let teams = match self
            .teams_conversation
            .map(|j| serde_json::from_value::<TeamsConversationRef>(j.0))
            .transpose()
        {
            Ok(t) => t,
            Err(e) if own(Channel::Teams) => {
                return Err(format!(
                    "not sent: the recipient's stored Teams conversation is invalid: {e}"
                ))
            }
            Err(e) => {
                tracing::warn!(delivery_id = ?id, error = %e, "stored Teams conversation is invalid; left out");
                None
            }
        };
        let properties = recipient_properties(
            &DirectoryProperties {
                department: self.department.as_deref(),
                job_title: self.job_title.as_deref(),
                location: self.location.as_deref(),
                language: self.language.as_deref(),
                time_zone: self.time_zone.as_deref(),
                external_id: self.external_id.as_deref(),
                joining_date: self.joining_date,
                attributes: self.attributes.as_ref().map(|j| &j.0),
            },
            id,
        );
        Ok(Recipient {
            first_name: self.first_name.unwrap_or_default(),
            last_name: self.last_name.unwrap_or_default(),
            email,
            phone,
            teams,
            properties,
        })
    }
}

/// What the expansion reads of its campaign.
#[derive(sqlx::FromRow)]
struct ExpandedCampaign {
    audience_id: Option<Uuid>,
    segment_id: Option<Uuid>,
    all_bot_users: bool,
    channels: Vec<String>,
    evaluated_before: bool,
    snapshot_id: Option<Uuid>,
    /// The audience's kind, when the recipients are an audience.
    kind: Option<String>,
}

/// A person's directory properties, as read from their row.
pub(crate) struct DirectoryProperties<'a> {
    pub department: Option<&'a str>,
    pub job_title: Option<&'a str>,
    pub location: Option<&'a str>,
    pub language: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub joining_date: Option<NaiveDate>,
    pub attributes: Option<&'a serde_json::Value>,
}

/// Custom attributes a send job carries at most. The import bounds each attribute (a key of
/// at most 64 characters, a string value of at most 200) but not how many a person has: a
/// JSON import may give one person thousands. Every job of a campaign carries its
/// recipient's properties through RabbitMQ, so they are capped here: at most 64 attributes
/// (the first by key) of at most 200 characters each, about 17 KB at worst and a few dozen
/// bytes for a typical person. A placeholder naming an attribute beyond the cap renders as
/// missing (its fallback, if any).
pub(crate) const MAX_JOB_ATTRIBUTES: usize = 64;
/// The longest attribute value the import accepts; a longer one (written another way) is
/// cut there.
const MAX_JOB_VALUE_CHARS: usize = 200;

/// What a recipient's placeholders read, by placeholder name: the non-empty properties, and
/// the string, number and boolean attributes as `attributes.<key>` (other JSON values are
/// left out).
pub(crate) fn recipient_properties(
    p: &DirectoryProperties<'_>,
    delivery_id: Option<i64>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = [
        ("department", p.department),
        ("job_title", p.job_title),
        ("location", p.location),
        ("language", p.language),
        ("time_zone", p.time_zone),
        ("external_id", p.external_id),
    ];
    for (name, value) in text {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            out.insert(name.to_owned(), v.to_owned());
        }
    }
    if let Some(d) = p.joining_date {
        out.insert("joining_date".to_owned(), d.format("%Y-%m-%d").to_string());
    }
    let Some(serde_json::Value::Object(attributes)) = p.attributes else {
        return out;
    };
    let mut taken = 0;
    for (key, value) in attributes {
        let value = match value {
            serde_json::Value::String(s) => s.chars().take(MAX_JOB_VALUE_CHARS).collect(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if value.trim().is_empty() {
            continue;
        }
        if taken == MAX_JOB_ATTRIBUTES {
            tracing::warn!(
                ?delivery_id,
                count = attributes.len(),
                "the recipient has more attributes than a send job carries; the rest are left out"
            );
            break;
        }
        taken += 1;
        out.insert(format!("attributes.{key}"), value);
    }
    out
}

/// Splits locked rows into send jobs and poisoned rows.
fn into_batch(
    tx: Transaction<'static, Postgres>,
    rows: Vec<JobRow>,
    maybe_duplicate: bool,
) -> PublishBatch {
    let mut jobs = Vec::with_capacity(rows.len());
    let mut poisoned = Vec::new();
    let mut skipped = Vec::new();
    for row in rows {
        let id = row.id;
        if row.person.person_id.is_some() && row.opted_out {
            skipped.push((id, format!("opted out of {}", row.channel)));
            continue;
        }
        if row.person.person_id.is_some() && !row.person.active {
            skipped.push((id, "the recipient was deactivated".to_owned()));
            continue;
        }
        match row.into_job(maybe_duplicate) {
            Ok(job) => jobs.push(job),
            Err(reason) => {
                tracing::warn!(delivery_id = id, %reason, "delivery cannot be sent; failing it");
                poisoned.push((id, reason));
            }
        }
    }
    PublishBatch {
        tx,
        jobs,
        poisoned,
        skipped,
    }
}

/// Text Postgres accepts and a reader can take in: no NUL byte (Postgres refuses it in
/// `text`, which would fail a whole batch), at most 2,000 characters.
pub(crate) fn clean_text(s: &str) -> String {
    const MAX: usize = 2000;
    let s: String = s.chars().filter(|c| *c != '\0').take(MAX + 1).collect();
    if s.chars().count() > MAX {
        let mut cut: String = s.chars().take(MAX).collect();
        cut.push('…');
        cut
    } else {
        s
    }
}

impl Store {
    /// Writes one delivery row per (member, channel) and moves the campaign to `sending`,
    /// in one transaction. Running it again for the same campaign writes nothing new.
    ///
    /// Who the members are (`campaign_recipients::Members`): a fixed audience's or a
    /// segment's active members, everyone active with the bot (a Teams conversation), or a
    /// dynamic audience's criteria evaluated on `as_of` and frozen into a snapshot that the
    /// campaign keeps, so a second evaluation (after a crash) sees the same people whatever
    /// changed since.
    /// A person who opted out of a channel gets a `skipped` row for it; one without an
    /// address on a channel, a `failed` row.
    #[tracing::instrument(skip(self))]
    pub async fn expand_campaign(&self, campaign_id: Uuid) -> Result<Expansion, StoreError> {
        // Relative criteria ("joined in the last 6 months") count from today, in UTC.
        self.expand_campaign_on(campaign_id, Utc::now().date_naive())
            .await
    }

    /// `expand_campaign` with the evaluation day given.
    pub async fn expand_campaign_on(
        &self,
        campaign_id: Uuid,
        as_of: NaiveDate,
    ) -> Result<Expansion, StoreError> {
        let mut tx = self.pool().begin().await?;
        let campaign: Option<ExpandedCampaign> = sqlx::query_as(
            "SELECT c.audience_id, c.segment_id, c.all_bot_users, c.channels,
                    c.evaluated_at IS NOT NULL AS evaluated_before, c.snapshot_id, a.kind
             FROM campaigns c LEFT JOIN audiences a ON a.id = c.audience_id
             WHERE c.id = $1 FOR UPDATE OF c",
        )
        .bind(campaign_id)
        .fetch_optional(&mut *tx)
        .await?;
        let c = campaign.ok_or(StoreError::NotFound("campaign"))?;
        let evaluated_before = c.evaluated_before;
        // The broadcast freezes the message: sends use a copy of the template as it is now,
        // so a later edit of the template does not change what this campaign sends. In this
        // transaction, before any send job names the template, and once.
        sqlx::query(
            "WITH frozen AS (
                 INSERT INTO templates (id, name, subject, body, html, teams_format, card,
                                        labels, frozen_for)
                 SELECT $2, t.name, t.subject, t.body, t.html, t.teams_format, t.card,
                        t.labels, c.id
                 FROM campaigns c JOIN templates t ON t.id = c.template_id
                 WHERE c.id = $1 AND c.message_frozen_at IS NULL
                 RETURNING id
             )
             UPDATE campaigns c SET source_template_id = c.template_id,
                                    template_id = frozen.id, message_frozen_at = now()
             FROM frozen WHERE c.id = $1",
        )
        .bind(campaign_id)
        .bind(Uuid::now_v7())
        .execute(&mut *tx)
        .await?;
        // A survey campaign's message is the survey's card, frozen the same way.
        crate::surveys::freeze_survey_in(&mut tx, campaign_id).await?;
        let recipients = Recipients {
            audience_id: c.audience_id,
            segment_id: c.segment_id,
            all_bot_users: c.all_bot_users,
        };
        let members = match recipients.source()? {
            None => return Err(StoreError::Missing("audience_id")),
            Some(RecipientSource::Audience(audience_id))
                if c.kind.as_deref() == Some("dynamic") =>
            {
                let snapshot_id = match c.snapshot_id {
                    Some(id) => id,
                    None => {
                        let snapshot = freeze_in(&mut tx, audience_id, as_of).await?;
                        sqlx::query("UPDATE campaigns SET snapshot_id = $2 WHERE id = $1")
                            .bind(campaign_id)
                            .bind(snapshot.id)
                            .execute(&mut *tx)
                            .await?;
                        snapshot.id
                    }
                };
                Members::Snapshot(snapshot_id)
            }
            Some(RecipientSource::Audience(audience_id)) => Members::Audience(audience_id),
            Some(RecipientSource::Segment(segment_id)) => Members::Segment(segment_id),
            Some(RecipientSource::EveryoneWithBot) => Members::EveryoneWithBot,
        };
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO deliveries (campaign_id, person_id, channel, state, last_error) SELECT ",
        );
        q.push_bind(campaign_id).push(
            ", person_id, ch, x.state, x.reason
             FROM (SELECT p.id AS person_id, p.email, p.phone, p.teams_conversation",
        );
        members.push_from(&mut q);
        q.push(") p CROSS JOIN UNNEST(")
            .push_bind(&c.channels)
            .push(
                "::text[]) AS ch
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN opted_out THEN 'skipped' WHEN missing THEN 'failed' ELSE 'pending' END AS state,
                        CASE WHEN opted_out THEN 'opted out of ' || ch
                             WHEN missing THEN 'recipient has no ' || ch || ' address' END AS reason
                 FROM (SELECT EXISTS (SELECT 1 FROM channel_opt_outs o
                                      WHERE o.person_id = p.person_id AND o.channel = ch) AS opted_out,
                              (ch = 'email' AND p.email IS NULL)
                           OR (ch = 'sms' AND p.phone IS NULL)
                           OR (ch = 'teams' AND p.teams_conversation IS NULL) AS missing) f
             ) x
             ON CONFLICT (campaign_id, person_id, channel) DO NOTHING
             RETURNING state",
            );
        let rows: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
        sqlx::query(
            "UPDATE campaigns
             SET status = CASE WHEN status = 'evaluating' THEN 'sending' ELSE status END,
                 evaluated_at = coalesce(evaluated_at, now())
             WHERE id = $1",
        )
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let unreachable = rows.iter().filter(|(s,)| s == "failed").count() as u64;
        let skipped = rows.iter().filter(|(s,)| s == "skipped").count() as u64;
        Ok(Expansion {
            inserted: rows.len() as u64,
            unreachable,
            skipped,
            evaluated_before,
        })
    }

    /// Locks up to `limit` pending, unpublished deliveries of a campaign with an id above
    /// `after_id` (skipping rows another evaluator holds) and builds their send jobs.
    ///
    /// Pass the highest id of the previous batch: the partial index still holds entries for
    /// rows published moments ago (until they are dead to every snapshot), and a scan from
    /// the start would step over all of them again on every batch, quadratic in the size
    /// of the campaign. A caller that gets an empty batch after a cursor asks once more from
    /// 0, for rows another evaluator skipped past and then gave back.
    pub async fn claim_unpublished(
        &self,
        campaign_id: Uuid,
        after_id: i64,
        limit: i64,
        maybe_duplicate: bool,
    ) -> Result<PublishBatch, StoreError> {
        let mut tx = self.pool().begin().await?;
        // The rows are chosen and locked first, on `deliveries` alone, and only those are
        // joined: right after an expansion the statistics still say the campaign has no
        // rows, and with the joins inside, the planner joined every pending row of the
        // campaign before sorting and keeping `limit` of them (250 ms per claim, most of
        // Postgres' time in the load test).
        let rows = sqlx::query_as::<_, JobRow>(&format!(
            "WITH claimed AS (
                 SELECT id FROM deliveries
                 WHERE campaign_id = $1 AND id > $3
                   AND published_at IS NULL AND state = 'pending'
                   AND (due_at IS NULL OR due_at <= now())
                   -- A paused or cancelled campaign publishes nothing; resume re-dues what
                   -- is left.
                   AND NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = $1
                                   AND c.status IN ('paused', 'cancelled'))
                 ORDER BY id
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             {JOB_SELECT}
             JOIN claimed k ON k.id = d.id
             ORDER BY d.id"
        ))
        .bind(campaign_id)
        .bind(limit)
        .bind(after_id)
        .fetch_all(&mut *tx)
        .await?;
        Ok(into_batch(tx, rows, maybe_duplicate))
    }

    /// What is recorded of each given delivery (missing ids are absent from the map), in one
    /// query: the state, and how many provider calls were recorded. A sender reads it before
    /// sending a job that may be a second copy.
    pub async fn delivery_progress(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, DeliveryProgress>, StoreError> {
        let rows: Vec<(i64, String, i32)> =
            sqlx::query_as("SELECT id, state, attempts FROM deliveries WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(id, s, attempts)| {
                let state = s.parse::<DeliveryState>().map_err(StoreError::Corrupt)?;
                let attempts = u32::try_from(attempts).unwrap_or(0);
                Ok((id, DeliveryProgress { state, attempts }))
            })
            .collect()
    }

    /// Records a batch of outcomes in one statement. A row already in a final state is left
    /// alone, so a late duplicate cannot overwrite the first answer. Then applies provider
    /// status reports that arrived before their message id was recorded.
    #[tracing::instrument(skip_all, fields(count = outcomes.len()))]
    pub async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<u64, StoreError> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let created: Vec<(i64, &str)> = outcomes
            .iter()
            .filter_map(|o| Some((o.delivery_id, o.new_teams_conversation.as_deref()?)))
            .collect();
        if !created.is_empty() {
            // Before the outcome: a crash in between re-creates (the same) conversation,
            // never loses it.
            let ids: Vec<i64> = created.iter().map(|(id, _)| *id).collect();
            let convs: Vec<&str> = created.iter().map(|(_, c)| *c).collect();
            sqlx::query(
                "UPDATE people p
                 SET teams_conversation = p.teams_conversation
                         || jsonb_build_object('conversation_id', u.conv),
                     updated_at = now()
                 FROM UNNEST($1::bigint[], $2::text[]) AS u(id, conv)
                 JOIN deliveries d ON d.id = u.id
                 WHERE p.id = d.person_id",
            )
            .bind(&ids)
            .bind(&convs)
            .execute(self.pool())
            .await?;
        }
        let ids: Vec<i64> = outcomes.iter().map(|o| o.delivery_id).collect();
        let states: Vec<&str> = outcomes.iter().map(|o| o.state.as_str()).collect();
        // Provider answers end up in these texts: clean them, so that no answer can make
        // the batch's statement fail (and with it every outcome in the batch).
        let errors: Vec<Option<String>> = outcomes
            .iter()
            .map(|o| o.error.as_deref().map(clean_text))
            .collect();
        let provider_ids: Vec<Option<String>> = outcomes
            .iter()
            .map(|o| o.provider_message_id.as_deref().map(clean_text))
            .collect();
        let defer: Vec<Option<DateTime<Utc>>> = outcomes.iter().map(|o| o.defer_until).collect();
        let misses: Vec<bool> = outcomes.iter().map(|o| o.presence_miss).collect();
        let parked: Vec<bool> = outcomes.iter().map(|o| o.parked).collect();
        let segments: Vec<Option<i32>> = outcomes
            .iter()
            .map(|o| {
                o.segments
                    .and_then(|s| i32::try_from(s).ok())
                    .filter(|s| *s > 0)
            })
            .collect();
        let done = sqlx::query(
            "UPDATE deliveries d
             SET state = u.state, last_error = u.error,
                 -- A presence miss or a skip made no provider call.
                 attempts = d.attempts
                     + CASE WHEN u.presence_miss OR u.parked OR u.state = 'skipped' THEN 0 ELSE 1 END,
                 presence_misses = d.presence_misses + CASE WHEN u.presence_miss THEN 1 ELSE 0 END,
                 provider_message_id = coalesce(u.provider_id, d.provider_message_id),
                 published_at = CASE WHEN u.defer_until IS NULL AND NOT u.parked
                                     THEN d.published_at END,
                 -- Parked only while the campaign is paused: the share lock orders this
                 -- against a resume, so a job parked as the campaign resumes is due at once
                 -- instead of waiting for a resume that already happened.
                 due_at = CASE
                     WHEN NOT u.parked THEN coalesce(u.defer_until, d.due_at)
                     WHEN EXISTS (SELECT 1 FROM campaigns c WHERE c.id = d.campaign_id
                                  AND c.status = 'paused' FOR SHARE) THEN NULL
                     ELSE now() END,
                 segments = coalesce(u.segments, d.segments),
                 updated_at = now()
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                         $6::boolean[], $7::int[], $8::boolean[])
                  AS u(id, state, error, provider_id, defer_until, presence_miss, segments, parked)
             WHERE d.id = u.id AND d.state NOT IN ('sent', 'failed', 'dead', 'skipped')
               -- A cancelled delivery whose call was already under way when the campaign
               -- was cancelled: what it became is the truth only if it was sent.
               AND (d.state <> 'cancelled' OR u.state = 'sent')",
        )
        .bind(&ids)
        .bind(&states)
        .bind(&errors)
        .bind(&provider_ids)
        .bind(&defer)
        .bind(&misses)
        .bind(&segments)
        .bind(&parked)
        .execute(self.pool())
        .await?
        .rows_affected();

        // Only after the commit above (see `park`). The outcomes are durable by now, so a
        // failure here must not fail the batch, which would requeue and resend it; the
        // reports left parked are only logged, and expire.
        let sids: Vec<&str> = provider_ids.iter().flatten().map(String::as_str).collect();
        if let Err(e) = self.adopt_parked_statuses(&sids).await {
            tracing::warn!(error = %e, count = sids.len(), "adopting parked provider statuses failed");
        }
        Ok(done)
    }
}

impl Store {
    /// Locks up to `limit` deferred deliveries (any campaign) whose time has come, skipping
    /// rows another scheduler or evaluator holds, and builds their send jobs.
    pub async fn claim_due_deliveries(&self, limit: i64) -> Result<PublishBatch, StoreError> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query_as::<_, JobRow>(&format!(
            "{JOB_SELECT}
             WHERE d.published_at IS NULL AND d.state IN ('pending', 'retrying')
               AND d.due_at IS NOT NULL AND d.due_at <= now()
             ORDER BY d.due_at
             LIMIT $1
             FOR UPDATE OF d SKIP LOCKED"
        ))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        // A crash between publishing and committing publishes these again: flag every
        // deferred job so the sender checks the recorded outcome first.
        Ok(into_batch(tx, rows, true))
    }
}

/// What a sender needs to reschedule a delivery whose recipient was not available.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PresenceContext {
    pub presence_misses: i32,
    pub time_zone: String,
    pub send_window: Option<Json<pushfleet_domain::SendWindow>>,
}

impl Store {
    pub async fn presence_context(&self, delivery_id: i64) -> Result<PresenceContext, StoreError> {
        sqlx::query_as::<_, PresenceContext>(
            "SELECT d.presence_misses, p.time_zone, c.send_window
             FROM deliveries d JOIN people p ON p.id = d.person_id
             JOIN campaigns c ON c.id = d.campaign_id
             WHERE d.id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound("delivery"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props<'a>(attributes: &'a serde_json::Value) -> DirectoryProperties<'a> {
        DirectoryProperties {
            department: Some("Marketing"),
            job_title: Some(" "),
            location: None,
            language: Some(""),
            time_zone: Some("Europe/Paris"),
            external_id: Some("E1"),
            joining_date: NaiveDate::from_ymd_opt(2026, 3, 1),
            attributes: Some(attributes),
        }
    }

    #[test]
    fn properties_hold_non_empty_values_and_scalar_attributes() {
        let attributes = serde_json::json!({
            "cost_center": "CC-12", "level": 3, "remote": true, "blank": "",
            "list": ["a"], "object": {"a": 1}, "none": null
        });
        let got = recipient_properties(&props(&attributes), Some(1));
        let want: BTreeMap<String, String> = [
            ("department", "Marketing"),
            ("time_zone", "Europe/Paris"),
            ("external_id", "E1"),
            ("joining_date", "2026-03-01"),
            ("attributes.cost_center", "CC-12"),
            ("attributes.level", "3"),
            ("attributes.remote", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn attributes_are_bounded_per_job() {
        let many: serde_json::Map<String, serde_json::Value> = (0..500)
            .map(|i| {
                (
                    format!("k{i:03}"),
                    serde_json::Value::String("v".repeat(300)),
                )
            })
            .collect();
        let attributes = serde_json::Value::Object(many);
        let got = recipient_properties(&props(&attributes), None);
        let attrs: Vec<_> = got
            .iter()
            .filter(|(k, _)| k.starts_with("attributes."))
            .collect();
        assert_eq!(attrs.len(), MAX_JOB_ATTRIBUTES);
        assert_eq!(attrs[0].0, "attributes.k000");
        assert!(attrs
            .iter()
            .all(|(_, v)| v.chars().count() == MAX_JOB_VALUE_CHARS));
    }
}
