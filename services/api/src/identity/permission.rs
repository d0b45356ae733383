//! Who may do what: the roles, the permissions, and the one table that names the permission
//! every operation of the API requires. The authentication middleware and the OpenAPI
//! document both read the table, and a test calls every operation of the document as every
//! role, so an operation without a declared permission is refused (fail closed) and fails
//! the test.

use axum::http::Method;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a caller may be. Service accounts (API keys) hold a role too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Seed 002's organizer: campaigns, templates, audiences and segments where a
    /// permission label allows (reads and writes); no personal data outside the inbox.
    Organizer,
    /// Read-only reports: campaigns, templates, audience and segment definitions; no
    /// personal data.
    Viewer,
    /// SRE: dead letters and replay, campaign progress; no personal data.
    Operator,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Organizer, Role::Viewer, Role::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Organizer => "organizer",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role holds `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Organizer => permission.label_scoped() || permission == SessionRead,
            Role::Viewer => matches!(
                permission,
                CampaignsRead
                    | TemplatesRead
                    | AudiencesRead
                    | SegmentsRead
                    | PushesRead
                    | SessionRead
            ),
            Role::Operator => matches!(
                permission,
                CampaignsRead
                    | CampaignsControl
                    | DeadLettersRead
                    | DeadLettersReplay
                    | SessionRead
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One right. Reads of personal data (people, audience members, segment members) are their
/// own permission, held by admins only until access groups and labels scope them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    PeopleRead,
    PeopleWrite,
    AudiencesRead,
    AudiencesWrite,
    TemplatesRead,
    TemplatesWrite,
    CampaignsRead,
    CampaignsWrite,
    /// Pause, resume, cancel a campaign being sent (SREs too: no personal data).
    CampaignsControl,
    SegmentsRead,
    SegmentsWrite,
    /// Conversation pushes (seed 000): read them and their completion counts.
    PushesRead,
    /// Make, change and close pushes, add users, and set follow-up (also the product that
    /// holds the conversations, through an API key).
    PushesWrite,
    DeadLettersRead,
    DeadLettersReplay,
    ApiKeysManage,
    AuditRead,
    /// Operators: list them, link them to people, set their owner scope.
    OperatorsManage,
    /// The caller's own identity (`/v1/me`): every role.
    SessionRead,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            PeopleRead => "people:read",
            PeopleWrite => "people:write",
            AudiencesRead => "audiences:read",
            AudiencesWrite => "audiences:write",
            TemplatesRead => "templates:read",
            TemplatesWrite => "templates:write",
            CampaignsRead => "campaigns:read",
            CampaignsWrite => "campaigns:write",
            CampaignsControl => "campaigns:control",
            SegmentsRead => "segments:read",
            SegmentsWrite => "segments:write",
            PushesRead => "pushes:read",
            PushesWrite => "pushes:write",
            DeadLettersRead => "dead_letters:read",
            DeadLettersReplay => "dead_letters:replay",
            ApiKeysManage => "api_keys:manage",
            AuditRead => "audit:read",
            OperatorsManage => "operators:manage",
            SessionRead => "session:read",
        }
    }

    /// Whether the permission reaches labelled entities (campaigns, templates, audiences,
    /// segments), so that a caller limited to labels holds it only for theirs.
    pub fn label_scoped(self) -> bool {
        use Permission::*;
        matches!(
            self,
            CampaignsRead
                | CampaignsWrite
                | CampaignsControl
                | TemplatesRead
                | TemplatesWrite
                | AudiencesRead
                | AudiencesWrite
                | SegmentsRead
                | SegmentsWrite
                | PushesRead
                | PushesWrite
        )
    }
}

/// What an operation requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A provider's webhook or a recipient's link: no operator credential, each checks its
    /// own signature or token.
    Public,
    Requires(Permission),
}

/// Every operation of the API and what it requires, by method and route (as routed, with
/// `{param}` placeholders).
pub const OPERATIONS: &[(&str, &str, Access)] = {
    use Access::*;
    use Permission::*;
    &[
        ("POST", "/v1/people", Requires(PeopleWrite)),
        ("POST", "/v1/people/import", Requires(PeopleWrite)),
        ("GET", "/v1/people/{id}", Requires(PeopleRead)),
        // Who must talk to whom: personal data.
        ("GET", "/v1/people/{id}/feed", Requires(PeopleRead)),
        ("DELETE", "/v1/people/{id}", Requires(PeopleWrite)),
        ("POST", "/v1/audiences", Requires(AudiencesWrite)),
        // Lists who matches: personal data.
        ("POST", "/v1/audiences/preview", Requires(PeopleRead)),
        ("GET", "/v1/audiences/{id}", Requires(AudiencesRead)),
        ("GET", "/v1/audiences/{id}/preview", Requires(PeopleRead)),
        (
            "POST",
            "/v1/audiences/{id}/snapshots",
            Requires(AudiencesWrite),
        ),
        ("GET", "/v1/snapshots/{id}", Requires(PeopleRead)),
        ("POST", "/v1/templates", Requires(TemplatesWrite)),
        ("GET", "/v1/templates", Requires(TemplatesRead)),
        ("GET", "/v1/templates/{id}", Requires(TemplatesRead)),
        ("PATCH", "/v1/templates/{id}", Requires(TemplatesWrite)),
        // A survey is a campaign's message, as a template is.
        ("POST", "/v1/surveys", Requires(TemplatesWrite)),
        ("GET", "/v1/surveys", Requires(TemplatesRead)),
        ("GET", "/v1/surveys/{id}", Requires(TemplatesRead)),
        ("PATCH", "/v1/surveys/{id}", Requires(TemplatesWrite)),
        ("POST", "/v1/campaigns", Requires(CampaignsWrite)),
        ("GET", "/v1/campaigns", Requires(CampaignsRead)),
        ("GET", "/v1/campaigns/{id}", Requires(CampaignsRead)),
        ("PATCH", "/v1/campaigns/{id}", Requires(CampaignsWrite)),
        ("DELETE", "/v1/campaigns/{id}", Requires(CampaignsWrite)),
        ("POST", "/v1/campaigns/{id}/send", Requires(CampaignsWrite)),
        ("POST", "/v1/campaigns/{id}/clone", Requires(CampaignsWrite)),
        ("POST", "/v1/campaigns/{id}/try", Requires(CampaignsWrite)),
        (
            "GET",
            "/v1/campaigns/{id}/recipients",
            Requires(CampaignsRead),
        ),
        // Renders a chosen person's name, addresses and attributes: personal data.
        ("GET", "/v1/campaigns/{id}/preview", Requires(PeopleRead)),
        ("POST", "/v1/templates/{id}/preview", Requires(PeopleRead)),
        // Counts only.
        ("GET", "/v1/campaigns/{id}/survey", Requires(CampaignsRead)),
        // Who answered what: personal data.
        ("GET", "/v1/campaigns/{id}/survey.csv", Requires(PeopleRead)),
        (
            "POST",
            "/v1/campaigns/{id}/pause",
            Requires(CampaignsControl),
        ),
        (
            "POST",
            "/v1/campaigns/{id}/resume",
            Requires(CampaignsControl),
        ),
        (
            "POST",
            "/v1/campaigns/{id}/cancel",
            Requires(CampaignsControl),
        ),
        ("GET", "/v1/campaigns/{id}/report", Requires(CampaignsRead)),
        // Names and addresses of the recipients: personal data.
        (
            "GET",
            "/v1/campaigns/{id}/report/recipients",
            Requires(PeopleRead),
        ),
        ("GET", "/v1/campaigns/{id}/report.csv", Requires(PeopleRead)),
        // A conversation template is a message, as a template and a survey are.
        (
            "POST",
            "/v1/conversation-templates",
            Requires(TemplatesWrite),
        ),
        ("GET", "/v1/conversation-templates", Requires(TemplatesRead)),
        (
            "GET",
            "/v1/conversation-templates/{id}",
            Requires(TemplatesRead),
        ),
        (
            "PATCH",
            "/v1/conversation-templates/{id}",
            Requires(TemplatesWrite),
        ),
        ("POST", "/v1/pushes", Requires(PushesWrite)),
        ("GET", "/v1/pushes", Requires(PushesRead)),
        ("GET", "/v1/pushes/{id}", Requires(PushesRead)),
        ("PATCH", "/v1/pushes/{id}", Requires(PushesWrite)),
        ("POST", "/v1/pushes/{id}/close", Requires(PushesWrite)),
        // Who matches, who the users are and who conducts: personal data.
        ("GET", "/v1/pushes/{id}/preview", Requires(PeopleRead)),
        ("GET", "/v1/pushes/{id}/users", Requires(PeopleRead)),
        ("GET", "/v1/pushes/{id}/users.csv", Requires(PeopleRead)),
        // Ids in, counts and the caller's own ids out.
        ("POST", "/v1/pushes/{id}/users", Requires(PushesWrite)),
        // The product that holds the conversations reports follow-up (an API key).
        ("POST", "/v1/pushes/{id}/follow-up", Requires(PushesWrite)),
        ("GET", "/v1/dead-letters", Requires(DeadLettersRead)),
        (
            "POST",
            "/v1/dead-letters/replay",
            Requires(DeadLettersReplay),
        ),
        ("POST", "/v1/segments", Requires(SegmentsWrite)),
        ("GET", "/v1/segments", Requires(SegmentsRead)),
        ("GET", "/v1/segments/{id}", Requires(SegmentsRead)),
        ("PATCH", "/v1/segments/{id}", Requires(SegmentsWrite)),
        ("POST", "/v1/segments/{id}/members", Requires(SegmentsWrite)),
        ("GET", "/v1/segments/{id}/members.csv", Requires(PeopleRead)),
        ("POST", "/v1/segments/{id}/uploads", Requires(SegmentsWrite)),
        (
            "GET",
            "/v1/segments/{id}/uploads/{upload_id}",
            Requires(SegmentsRead),
        ),
        (
            "GET",
            "/v1/segments/{id}/uploads/{upload_id}/errors.csv",
            Requires(PeopleRead),
        ),
        ("POST", "/v1/api-keys", Requires(ApiKeysManage)),
        ("GET", "/v1/api-keys", Requires(ApiKeysManage)),
        ("DELETE", "/v1/api-keys/{id}", Requires(ApiKeysManage)),
        ("GET", "/v1/audit-log", Requires(AuditRead)),
        ("GET", "/v1/me", Requires(SessionRead)),
        ("GET", "/v1/operators", Requires(OperatorsManage)),
        ("GET", "/v1/operators/{id}", Requires(OperatorsManage)),
        ("PATCH", "/v1/operators/{id}", Requires(OperatorsManage)),
        ("POST", "/v1/webhooks/twilio/status", Public),
        ("POST", "/v1/twilio/inbound", Public),
        ("POST", "/v1/teams/messages", Public),
        ("GET", "/u/{token}", Public),
        ("POST", "/u/{token}", Public),
        ("GET", "/r/{token}", Public),
        ("GET", "/o/{token}", Public),
        ("GET", "/openapi.json", Public),
    ]
};

/// What `method` on `route` requires; `None` for an operation missing from the table (the
/// middleware then refuses it).
pub fn access(method: &Method, route: &str) -> Option<Access> {
    OPERATIONS
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map(|(_, _, a)| *a)
}

/// Whether any method of `route` is in the table.
pub fn route_declared(route: &str) -> bool {
    OPERATIONS.iter().any(|(_, r, _)| *r == route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_hold_everything_and_no_one_else_reads_personal_data() {
        for (_, _, access) in OPERATIONS {
            if let Access::Requires(p) = access {
                assert!(Role::Admin.allows(*p));
            }
        }
        for role in [Role::Organizer, Role::Viewer, Role::Operator] {
            assert!(!role.allows(Permission::PeopleRead), "{role}");
            assert!(!role.allows(Permission::ApiKeysManage), "{role}");
            assert!(!role.allows(Permission::OperatorsManage), "{role}");
            assert!(role.allows(Permission::SessionRead), "{role}");
        }
        assert!(Role::Organizer.allows(Permission::CampaignsWrite));
        assert!(!Role::Viewer.allows(Permission::CampaignsWrite));
        assert!(!Role::Operator.allows(Permission::CampaignsWrite));
        assert!(Role::Operator.allows(Permission::DeadLettersReplay));
        assert!(!Role::Viewer.allows(Permission::DeadLettersReplay));
        assert_eq!(Role::parse("viewer"), Some(Role::Viewer));
        assert_eq!(Role::parse("root"), None);
    }
}
