use crate::connector_post::{post_activity, ResourceResponse};
use crate::connector_reply::ConnectorReplier;
use crate::{BotTokenSource, TeamsConfig};
use pushfleet_domain::{teams_activity, Channel, RenderedMessage, SendJob};
use pushfleet_ratelimit::Quota;
use pushfleet_sender::http_errors::{classify_status, classify_transport, http_client};
use pushfleet_sender::{Provider, ProviderError, Receipt};
use reqwest::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// Sends proactive messages through the Bot Framework Connector REST API to the
/// conversation stored on the person.
pub struct ConnectorProvider {
    client: reqwest::Client,
    app_id: String,
    /// Conversations this replica created, by service URL and user, so a second message to
    /// the same user does not create another before the first outcome is stored.
    created: std::sync::Mutex<std::collections::HashMap<(String, String), String>>,
    /// Shared with the bot's replies (`replier`): one token for both.
    tokens: Arc<BotTokenSource>,
    graph_tokens: BotTokenSource,
    graph_base: String,
}

#[derive(Deserialize)]
struct Presence {
    availability: String,
}

impl ConnectorProvider {
    pub fn new(cfg: &TeamsConfig) -> anyhow::Result<Self> {
        let client = http_client()?;
        let tokens = Arc::new(BotTokenSource::new(
            client.clone(),
            cfg.token_url.clone(),
            cfg.app_id.clone(),
            cfg.app_password.clone(),
            cfg.scope.clone(),
        ));
        let graph_tokens = BotTokenSource::new(
            client.clone(),
            cfg.graph_token_url.clone(),
            cfg.app_id.clone(),
            cfg.app_password.clone(),
            cfg.graph_scope.clone(),
        );
        Ok(Self {
            client,
            app_id: cfg.app_id.clone(),
            created: Default::default(),
            tokens,
            graph_tokens,
            graph_base: cfg.graph_base.trim_end_matches('/').to_owned(),
        })
    }

    /// A client for the bot's replies, on this provider's HTTP client and token.
    pub fn replier(&self) -> ConnectorReplier {
        ConnectorReplier::new(self.client.clone(), self.tokens.clone())
    }

    /// `POST {serviceUrl}/v3/conversations`: the 1:1 conversation with a user known only by
    /// id (the Bot Framework returns the existing one if there is one).
    #[tracing::instrument(skip(self, service_url), name = "create_conversation")]
    async fn create_conversation(
        &self,
        service_url: &str,
        user: &str,
        tenant: &str,
    ) -> Result<String, ProviderError> {
        let key = (service_url.to_owned(), user.to_owned());
        if let Some(id) = self.lock_created().get(&key) {
            return Ok(id.clone());
        }
        let mut url = reqwest::Url::parse(service_url)
            .map_err(|e| ProviderError::permanent(format!("invalid serviceUrl: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| ProviderError::permanent("serviceUrl cannot hold a path"))?
            .pop_if_empty()
            .extend(["v3", "conversations"]);
        let member = if user.starts_with("29:") {
            user.to_owned()
        } else {
            format!("29:{user}")
        };
        let body = serde_json::json!({
            "bot": {"id": format!("28:{}", self.app_id)},
            "members": [{"id": member}],
            "channelData": {"tenant": {"id": tenant}},
            "isGroup": false,
        });
        let token = self.tokens.token().await?;
        let response = self
            .client
            .post(url)
            .bearer_auth(token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            if status == StatusCode::UNAUTHORIZED {
                self.tokens.invalidate().await;
            }
            let headers = response.headers().clone();
            let detail = response.text().await.unwrap_or_default();
            return Err(classify_status(
                status,
                &headers,
                format!("creating the conversation: {detail}"),
            ));
        }
        let id = response
            .json::<ResourceResponse>()
            .await
            .ok()
            .and_then(|r| r.id)
            .ok_or_else(|| ProviderError::transient("conversation created without an id"))?;
        let mut created = self.lock_created();
        // The id is stored on the person too; this cache only bridges the gap until then.
        if created.len() >= 10_000 {
            created.clear();
        }
        created.insert(key, id.clone());
        Ok(id)
    }

    fn lock_created(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, String), String>> {
        self.created.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user's availability from Graph (`Available`, `Away`, ...).
    #[tracing::instrument(skip(self), name = "graph_presence")]
    async fn availability(&self, user_id: &str) -> Result<String, ProviderError> {
        let mut url = reqwest::Url::parse(&self.graph_base)
            .map_err(|e| ProviderError::transient(format!("GRAPH_API_BASE: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| ProviderError::transient("GRAPH_API_BASE cannot hold a path"))?
            .pop_if_empty()
            .extend(["v1.0", "users", user_id, "presence"]);
        let token = self.graph_tokens.token().await?;
        let response = self
            .client
            .get(url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        if !response.status().is_success() {
            let status = response.status();
            let headers = response.headers().clone();
            return Err(classify_status(status, &headers, "presence lookup".into()));
        }
        let presence: Presence = response
            .json()
            .await
            .map_err(|e| ProviderError::transient(format!("unreadable presence: {e}")))?;
        Ok(presence.availability)
    }
}

impl Provider for ConnectorProvider {
    const CHANNEL: Channel = Channel::Teams;

    /// Every Connector call counts against the app's 50 per second: a message to a person
    /// without a stored conversation is two (create the conversation, then post), unless
    /// this replica has just created it.
    fn cost(&self, job: &SendJob, _message: &RenderedMessage) -> u32 {
        let Some(c) = &job.recipient.teams else {
            return 1;
        };
        match (&c.conversation_id, &c.user_id, &c.tenant_id) {
            (None, Some(user), Some(_)) => {
                let key = (c.service_url.clone(), user.clone());
                if self.lock_created().contains_key(&key) {
                    1
                } else {
                    2
                }
            }
            _ => 1,
        }
    }

    /// The Bot Framework allows a bot 7 messages per second in one conversation, 60 per 30 s
    /// and 1,800 per hour: a burst of 7 refilled at just under 0.5/s keeps all of them.
    fn recipient_limit(&self, job: &SendJob) -> Option<(String, Quota)> {
        let conversation = job.recipient.teams.as_ref()?;
        let key = conversation
            .conversation_id
            .as_deref()
            .or(conversation.user_id.as_deref())?;
        Some((format!("teams:conv:{key}"), Quota::new(0.498, 7)?))
    }

    async fn send(
        &self,
        job: &SendJob,
        message: &RenderedMessage,
    ) -> Result<Receipt, ProviderError> {
        let conversation = job
            .recipient
            .teams
            .as_ref()
            .ok_or_else(|| ProviderError::permanent("recipient has no Teams conversation"))?;
        if job.wait_for_availability {
            if let Some(user) = &conversation.user_id {
                match self.availability(user).await {
                    Ok(a) if a == "Available" || a == "AvailableIdle" => {}
                    Ok(a) => {
                        return Err(ProviderError::Unavailable {
                            reason: format!("presence {a}"),
                        })
                    }
                    // Presence is a courtesy: when Graph cannot say, send rather than hold back.
                    Err(e) => tracing::warn!(error = %e, "presence unknown; sending anyway"),
                }
            }
        }
        let (conversation_id, created) = match (
            &conversation.conversation_id,
            &conversation.user_id,
            &conversation.tenant_id,
        ) {
            (Some(id), _, _) => (id.clone(), None),
            (None, Some(user), Some(tenant)) => {
                let id = self
                    .create_conversation(&conversation.service_url, user, tenant)
                    .await?;
                (id.clone(), Some(id))
            }
            _ => {
                return Err(ProviderError::permanent(
                    "no Teams conversation, and no user and tenant id to create one",
                ))
            }
        };
        let mut url = reqwest::Url::parse(&conversation.service_url).map_err(|e| {
            ProviderError::permanent(format!(
                "invalid serviceUrl {:?}: {e}",
                conversation.service_url
            ))
        })?;
        url.path_segments_mut()
            .map_err(|_| ProviderError::permanent("serviceUrl cannot hold a path"))?
            .pop_if_empty()
            .extend(["v3", "conversations", &conversation_id, "activities"]);
        let provider_message_id = post_activity(
            &self.client,
            &self.tokens,
            url,
            &job.idempotency_key(),
            &teams_activity(message),
        )
        .await?;
        Ok(Receipt {
            provider_message_id,
            new_teams_conversation: created,
        })
    }
}
