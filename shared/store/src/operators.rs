//! Operators: the people who use pushfleet, recorded at each sign-in with an OIDC token
//! (their identity provider's issuer and subject name them). Their role and labels are what
//! the provider's claims said at the last sign-in; admins link an operator to a person of
//! the directory and set the owner scope.

use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Operator {
    pub id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub labels: Option<Vec<String>>,
    pub person_id: Option<Uuid>,
    pub scope_audience_id: Option<Uuid>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// What a verified token says about its operator.
#[derive(Debug, Clone)]
pub struct OperatorSignIn<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub role: &'a str,
    pub labels: Option<&'a [String]>,
}

/// An admin's change to an operator: `None` leaves a field; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct OperatorChange {
    pub person_id: Option<Option<Uuid>>,
    pub scope_audience_id: Option<Option<Uuid>>,
}

const COLUMNS: &str = "id, issuer, subject, name, email, role, labels, person_id, \
                       scope_audience_id, first_seen_at, last_seen_at";

impl Store {
    /// Records a sign-in: the operator is created on first sight (and linked to the person
    /// with the same e-mail, if there is one); afterwards its claims are refreshed when they
    /// changed, and its last-seen time at most once a minute, so that a busy operator does
    /// not write on every request.
    pub async fn operator_signed_in(&self, s: &OperatorSignIn<'_>) -> Result<Operator, StoreError> {
        let changed: Option<Operator> = sqlx::query_as(&format!(
            "INSERT INTO operators AS o (issuer, subject, name, email, role, labels, person_id)
             VALUES ($1, $2, $3, $4, $5, $6,
                     (SELECT id FROM people WHERE $4::text IS NOT NULL
                        AND lower(email) = lower($4) ORDER BY created_at LIMIT 1))
             ON CONFLICT (issuer, subject) DO UPDATE
                SET name = excluded.name, email = excluded.email, role = excluded.role,
                    labels = excluded.labels, last_seen_at = now()
              WHERE (o.name, o.email, o.role, o.labels)
                        IS DISTINCT FROM (excluded.name, excluded.email, excluded.role, excluded.labels)
                 OR o.last_seen_at < now() - interval '1 minute'
             RETURNING {COLUMNS}"
        ))
        .bind(s.issuer)
        .bind(s.subject)
        .bind(s.name)
        .bind(s.email)
        .bind(s.role)
        .bind(s.labels)
        .fetch_optional(self.pool())
        .await?;
        match changed {
            Some(o) => Ok(o),
            None => Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM operators WHERE issuer = $1 AND subject = $2"
            ))
            .bind(s.issuer)
            .bind(s.subject)
            .fetch_one(self.pool())
            .await?),
        }
    }

    pub async fn get_operator(&self, id: Uuid) -> Result<Operator, StoreError> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM operators WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound("operator"))
    }

    /// Operators, most recently seen first, `limit` of them after `before`.
    pub async fn list_operators(
        &self,
        limit: i64,
        before: Option<Uuid>,
    ) -> Result<Vec<Operator>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM operators
             WHERE $2::uuid IS NULL
                OR (last_seen_at, id) < (SELECT last_seen_at, id FROM operators WHERE id = $2)
             ORDER BY last_seen_at DESC, id DESC
             LIMIT $1"
        ))
        .bind(limit)
        .bind(before)
        .fetch_all(self.pool())
        .await?)
    }

    /// Links an operator to a person or sets its owner scope. A person or audience that
    /// does not exist is `NotFound`.
    pub async fn update_operator(
        &self,
        id: Uuid,
        change: &OperatorChange,
    ) -> Result<Operator, StoreError> {
        let result = sqlx::query_as(&format!(
            "UPDATE operators
                SET person_id = CASE WHEN $2 THEN $3 ELSE person_id END,
                    scope_audience_id = CASE WHEN $4 THEN $5 ELSE scope_audience_id END
              WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(change.person_id.is_some())
        .bind(change.person_id.flatten())
        .bind(change.scope_audience_id.is_some())
        .bind(change.scope_audience_id.flatten())
        .fetch_optional(self.pool())
        .await;
        match result {
            Ok(Some(o)) => Ok(o),
            Ok(None) => Err(StoreError::NotFound("operator")),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(
                StoreError::NotFound(if e.constraint() == Some("operators_person_id_fkey") {
                    "person"
                } else {
                    "audience"
                }),
            ),
            Err(e) => Err(e.into()),
        }
    }
}
