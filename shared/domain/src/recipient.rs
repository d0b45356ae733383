use crate::{EmailAddress, PhoneNumber};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a person's Teams conversation lives: stored from the bot's install activity, or
/// created by the Teams sender from the user's id and tenant on the first send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamsConversationRef {
    pub service_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// The slice of a person that a sender needs: how to address them and what to put in
/// the placeholders. Snapshotted into the send job when the audience is evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    pub teams: Option<TeamsConversationRef>,
    /// The directory properties the placeholders may name, by placeholder name
    /// (`department`, `joining_date` as `YYYY-MM-DD`, `attributes.<key>`...); only non-empty
    /// values. Absent from jobs of earlier releases: those render such placeholders empty
    /// (or with their fallback).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}
