use crate::BotTokenSource;
use pushfleet_domain::BotReplyJob;
use pushfleet_sender::http_errors::{classify_status, classify_transport};
use pushfleet_sender::ProviderError;
use reqwest::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// Posts the bot's replies to the activities users sent it (Bot Framework `ReplyToActivity`).
#[derive(Clone)]
pub struct ConnectorReplier {
    client: reqwest::Client,
    tokens: Arc<BotTokenSource>,
}

#[derive(Deserialize)]
struct ResourceResponse {
    #[serde(default)]
    id: Option<String>,
}

impl ConnectorReplier {
    pub(crate) fn new(client: reqwest::Client, tokens: Arc<BotTokenSource>) -> Self {
        Self { client, tokens }
    }

    /// `POST {serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}`; returns
    /// the Connector's id for the reply.
    #[tracing::instrument(skip_all, name = "connector_reply")]
    pub async fn reply(&self, job: &BotReplyJob) -> Result<Option<String>, ProviderError> {
        let mut url = reqwest::Url::parse(&job.service_url).map_err(|e| {
            ProviderError::permanent(format!("invalid serviceUrl {:?}: {e}", job.service_url))
        })?;
        url.path_segments_mut()
            .map_err(|_| ProviderError::permanent("serviceUrl cannot hold a path"))?
            .pop_if_empty()
            .extend([
                "v3",
                "conversations",
                &job.conversation_id,
                "activities",
                &job.activity_id,
            ]);
        let activity = serde_json::json!({
            "type": "message",
            "text": job.text,
            "textFormat": "plain",
            "replyToId": job.activity_id,
        });
        let token = self.tokens.token().await?;
        let response = self
            .client
            .post(url)
            .bearer_auth(token.expose())
            // A provider that deduplicates absorbs a reply posted again after a crash.
            .header("Idempotency-Key", format!("pf-reply-{}", job.activity_id))
            .json(&activity)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status();
        if status.is_success() {
            let body: ResourceResponse = response
                .json()
                .await
                .unwrap_or(ResourceResponse { id: None });
            return Ok(body.id);
        }
        if status == StatusCode::UNAUTHORIZED {
            self.tokens.invalidate().await;
            return Err(ProviderError::transient(
                "connector rejected the bot token (401)",
            ));
        }
        let headers = response.headers().clone();
        let detail = response.text().await.unwrap_or_default();
        Err(classify_status(status, &headers, detail))
    }
}
