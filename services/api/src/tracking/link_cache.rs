//! A campaign's tracked links by its link key, read once per replica: a frozen template
//! never changes, so an entry never goes stale, and a warm cache lets the redirect answer
//! while Postgres is unreachable.

use pushfleet_domain::TrackedLinks;
use pushfleet_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Campaigns held at most; past it the cache starts over (a replica serves the clicks of
/// recent campaigns, a handful at a time).
const MAX_CAMPAIGNS: usize = 10_000;

/// A campaign's id and the links of its frozen template.
#[derive(Debug)]
pub struct CampaignLinks {
    pub campaign_id: Uuid,
    pub links: TrackedLinks,
}

#[derive(Default)]
pub struct LinkCache {
    entries: Mutex<HashMap<i64, Arc<CampaignLinks>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkCacheError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the campaign's template no longer parses: {0}")]
    Template(#[from] pushfleet_domain::TemplateError),
}

impl LinkCache {
    pub async fn get(
        &self,
        store: &Store,
        link_key: i64,
    ) -> Result<Arc<CampaignLinks>, LinkCacheError> {
        if let Some(found) = self.lock().get(&link_key) {
            return Ok(found.clone());
        }
        let campaign = store.campaign_by_link_key(link_key).await?;
        let template_id = campaign
            .template_id
            .ok_or(StoreError::NotFound("template"))?;
        let template = store.get_template(template_id).await?.parse()?;
        let entry = Arc::new(CampaignLinks {
            campaign_id: campaign.campaign_id,
            links: template.links().clone(),
        });
        let mut entries = self.lock();
        if entries.len() >= MAX_CAMPAIGNS {
            entries.clear();
        }
        entries.insert(link_key, entry.clone());
        Ok(entry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<CampaignLinks>>> {
        // Nothing is left half-written under this lock: keep using it after a panic.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
