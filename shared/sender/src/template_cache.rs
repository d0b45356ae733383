use pushfleet_domain::Template;
use pushfleet_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Parsed templates by id. Templates are immutable once saved, so an entry never goes stale;
/// one campaign costs one read per replica.
#[derive(Default)]
pub(crate) struct TemplateCache {
    entries: Mutex<HashMap<Uuid, Arc<Template>>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateLoadError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("stored template {0} no longer parses: {1}")]
    Invalid(Uuid, pushfleet_domain::TemplateError),
}

impl TemplateCache {
    pub(crate) async fn get(
        &self,
        store: &Store,
        id: Uuid,
    ) -> Result<Arc<Template>, TemplateLoadError> {
        if let Some(t) = self.lock().get(&id) {
            return Ok(t.clone());
        }
        let stored = store.get_template(id).await?;
        let parsed = Arc::new(
            stored
                .parse()
                .map_err(|e| TemplateLoadError::Invalid(id, e))?,
        );
        self.lock().insert(id, parsed.clone());
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Template>>> {
        // A panic while holding this lock cannot leave the map half-written; keep using it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
