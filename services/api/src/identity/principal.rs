//! Who is calling, and what their permission labels let them see: an operator signed in
//! with the organisation's identity provider, or an API key (a service account).

use super::permission::Role;
use crate::ApiError;
use axum::http::StatusCode;
use pushfleet_domain::permission_label::{self, PermissionLabel};
use pushfleet_store::{Labelled, Store};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person, signed in with an OIDC token.
    Operator,
    /// Automation, with an API key.
    ApiKey,
}

#[derive(Debug, Clone)]
pub struct Principal {
    /// The operator's or the API key's id.
    pub id: Uuid,
    pub kind: PrincipalKind,
    pub name: String,
    pub role: Role,
    /// The labels the caller is limited to; `None`: not limited.
    pub labels: Option<Vec<String>>,
    /// Owner scope: the audience of the people this caller's workflows may reach.
    pub scope_audience_id: Option<Uuid>,
}

impl Principal {
    /// The labels the caller is limited to, `None` when not limited. An organizer always is
    /// (seed 002: campaigns and pushes only where a label allows), to none without labels.
    pub fn label_limit(&self) -> Option<&[String]> {
        match (&self.labels, self.role) {
            (Some(labels), _) => Some(labels),
            (None, Role::Organizer) => Some(&[]),
            (None, _) => None,
        }
    }

    /// Whether an entity carrying `labels` is the caller's to see and change.
    pub fn sees(&self, labels: &[String]) -> bool {
        self.label_limit()
            .is_none_or(|mine| labels.iter().any(|l| mine.contains(l)))
    }

    /// The labels of a new entity, or of an entity's change of labels: those asked for
    /// (sorted, without repeats), of which a limited caller must hold every one; when none
    /// are asked for, a limited caller's own, so that what they make stays theirs.
    pub fn labels_for(&self, asked: Option<Vec<PermissionLabel>>) -> Result<Vec<String>, ApiError> {
        let asked = match asked {
            Some(asked) => permission_label::normalise(asked)
                .map_err(|e| ApiError::invalid("labels", e.to_string()))?,
            None => {
                return Ok(self
                    .label_limit()
                    .map(<[String]>::to_vec)
                    .unwrap_or_default())
            }
        };
        if let Some(mine) = self.label_limit() {
            if asked.is_empty() {
                return Err(ApiError::invalid(
                    "labels",
                    "you are limited to permission labels: give at least one of yours",
                ));
            }
            if let Some(other) = asked.iter().find(|l| !mine.contains(l)) {
                return Err(ApiError::Status {
                    status: StatusCode::FORBIDDEN,
                    code: "forbidden",
                    message: format!("you do not hold the permission label {other:?}"),
                });
            }
        }
        Ok(asked)
    }

    /// The SQL filter for a list: `None` lists all, `Some(labels)` only what carries one.
    pub fn list_filter(&self) -> Option<Vec<String>> {
        self.label_limit().map(<[String]>::to_vec)
    }

    /// The labels of entity `id`, when the caller may see it; `NotFound` otherwise, as if it
    /// did not exist (a limited caller learns nothing of what is not theirs).
    pub async fn visible(
        &self,
        store: &Store,
        entity: Labelled,
        id: Uuid,
    ) -> Result<Vec<String>, ApiError> {
        let labels = store.labels_of(entity, id).await?;
        if !self.sees(&labels) {
            return Err(ApiError::NotFound(entity.noun()));
        }
        Ok(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, labels: Option<&[&str]>) -> Principal {
        Principal {
            id: Uuid::nil(),
            kind: PrincipalKind::ApiKey,
            name: "p".into(),
            role,
            labels: labels.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
            scope_audience_id: None,
        }
    }

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_owned()).collect()
    }

    fn asked(l: &[&str]) -> Option<Vec<PermissionLabel>> {
        Some(
            l.iter()
                .map(|s| PermissionLabel::parse(*s).expect("label"))
                .collect(),
        )
    }

    #[test]
    fn a_limited_caller_sees_what_carries_one_of_its_labels() {
        let finance = principal(Role::Organizer, Some(&["finance"]));
        assert!(finance.sees(&labels(&["finance", "hr"])));
        assert!(!finance.sees(&labels(&["hr"])));
        assert!(!finance.sees(&[]), "unlabelled is not theirs");
        let bare_organizer = principal(Role::Organizer, None);
        assert!(!bare_organizer.sees(&labels(&["hr"])));
        let admin = principal(Role::Admin, None);
        assert!(admin.sees(&[]));
        let limited_admin = principal(Role::Admin, Some(&["hr"]));
        assert!(!limited_admin.sees(&labels(&["finance"])));
    }

    #[test]
    fn new_entities_carry_labels_the_caller_holds() {
        let finance = principal(Role::Organizer, Some(&["finance", "hr"]));
        assert_eq!(
            finance.labels_for(None).ok(),
            Some(labels(&["finance", "hr"]))
        );
        assert_eq!(
            finance.labels_for(asked(&["hr", "hr"])).ok(),
            Some(labels(&["hr"]))
        );
        assert!(finance.labels_for(asked(&["sales"])).is_err());
        assert!(finance.labels_for(asked(&[])).is_err());
        let admin = principal(Role::Admin, None);
        assert_eq!(admin.labels_for(None).ok(), Some(vec![]));
        assert_eq!(
            admin.labels_for(asked(&["sales"])).ok(),
            Some(labels(&["sales"]))
        );
    }
}
