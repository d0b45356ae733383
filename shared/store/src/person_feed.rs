//! A person's feed (seed 000), for the product's front end: the conversation templates
//! pushed to them that are open (their push started and not closed), with the deadline and
//! their follow-up; and, for a team leader or coach, the conversations they must conduct
//! (the "Plan" action). A closed push leaves both.

use crate::{Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// A conversation template pushed to the person.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedTask {
    pub push_id: Uuid,
    pub push_name: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub deadline: NaiveDate,
    pub started_at: Option<DateTime<Utc>>,
    /// The follow-up: not_planned, planned or conducted.
    pub status: String,
    pub planned_on: Option<NaiveDate>,
    pub conducted_on: Option<NaiveDate>,
}

/// A conversation the person conducts, as a team leader or coach of a push's user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedConversation {
    pub push_id: Uuid,
    pub push_name: String,
    pub template_name: String,
    pub deadline: NaiveDate,
    pub person_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    /// team_leader or coach.
    pub as_kind: String,
    pub status: String,
    pub planned_on: Option<NaiveDate>,
    pub conducted_on: Option<NaiveDate>,
}

/// Rows of a feed, at most (a person in more open pushes than this is shown the nearest
/// deadlines first).
const FEED_LIMIT: i64 = 500;

impl Store {
    /// The person's open tasks and the conversations they conduct, nearest deadline first.
    #[tracing::instrument(skip(self))]
    /// `visible_labels`: a caller limited to labels sees only pushes carrying one of them.
    pub async fn person_feed(
        &self,
        person_id: Uuid,
        visible_labels: Option<&[String]>,
    ) -> Result<(Vec<FeedTask>, Vec<FeedConversation>), StoreError> {
        let tasks = sqlx::query_as::<_, FeedTask>(
            "SELECT p.id AS push_id, p.name AS push_name, t.id AS template_id,
                    t.name AS template_name, p.deadline, p.started_at,
                    u.status, u.planned_on, u.conducted_on
             FROM push_users u
             JOIN pushes p ON p.id = u.push_id
             JOIN conversation_templates t ON t.id = p.template_id
             WHERE u.person_id = $1 AND p.status = 'started'
               AND ($3::text[] IS NULL OR p.labels && $3)
             ORDER BY p.deadline, p.id
             LIMIT $2",
        )
        .bind(person_id)
        .bind(FEED_LIMIT)
        .bind(visible_labels)
        .fetch_all(self.pool());
        // Who conducts follows the push's `conducted_by`, as `push_users::conductor_kinds`.
        let conversations = sqlx::query_as::<_, FeedConversation>(
            "SELECT p.id AS push_id, p.name AS push_name, t.name AS template_name, p.deadline,
                    u.person_id, pe.first_name, pe.last_name, r.kind AS as_kind,
                    u.status, u.planned_on, u.conducted_on
             FROM person_relations r
             JOIN push_users u ON u.person_id = r.person_id
             JOIN pushes p ON p.id = u.push_id
             JOIN conversation_templates t ON t.id = p.template_id
             JOIN people pe ON pe.id = u.person_id
             WHERE r.related_id = $1 AND p.status = 'started'
               AND (p.conducted_by = 'both'
                    OR (p.conducted_by = 'team_leaders' AND r.kind = 'team_leader')
                    OR (p.conducted_by = 'coaches' AND r.kind = 'coach'))
               AND ($3::text[] IS NULL OR p.labels && $3)
             ORDER BY p.deadline, p.id, pe.last_name, u.person_id
             LIMIT $2",
        )
        .bind(person_id)
        .bind(FEED_LIMIT)
        .bind(visible_labels)
        .fetch_all(self.pool());
        let (tasks, conversations) = futures::future::join(tasks, conversations).await;
        Ok((tasks?, conversations?))
    }
}
