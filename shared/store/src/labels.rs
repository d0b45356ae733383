//! Permission labels (seed 003) on campaigns, templates, audiences, segments and surveys. An
//! operator limited to labels sees and changes only the entities carrying one of them; the
//! api asks here what an entity carries before it answers.

use crate::{Store, StoreError};
use uuid::Uuid;

/// An entity that carries labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labelled {
    Campaign,
    Template,
    Audience,
    Segment,
    Survey,
    ConversationTemplate,
    Push,
}

impl Labelled {
    fn table(self) -> &'static str {
        match self {
            Labelled::Campaign => "campaigns",
            Labelled::Template => "templates",
            Labelled::Audience => "audiences",
            Labelled::Segment => "segments",
            Labelled::Survey => "surveys",
            Labelled::ConversationTemplate => "conversation_templates",
            Labelled::Push => "pushes",
        }
    }

    /// The entity's name in a "not found" answer.
    pub fn noun(self) -> &'static str {
        match self {
            Labelled::Campaign => "campaign",
            Labelled::Template => "template",
            Labelled::Audience => "audience",
            Labelled::Segment => "segment",
            Labelled::Survey => "survey",
            Labelled::ConversationTemplate => "conversation template",
            Labelled::Push => "push",
        }
    }
}

impl Store {
    /// The labels an entity carries; `NotFound` when there is no such entity.
    pub async fn labels_of(&self, entity: Labelled, id: Uuid) -> Result<Vec<String>, StoreError> {
        // The table name comes from the enum above, never from input.
        sqlx::query_scalar(&format!(
            "SELECT labels FROM {} WHERE id = $1",
            entity.table()
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound(entity.noun()))
    }
}
