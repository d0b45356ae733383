use crate::connector_post::post_activity;
use crate::BotTokenSource;
use pushfleet_domain::BotReplyJob;
use pushfleet_sender::ProviderError;
use std::sync::Arc;

/// Posts the bot's replies to the activities users sent it (Bot Framework `ReplyToActivity`).
#[derive(Clone)]
pub struct ConnectorReplier {
    client: reqwest::Client,
    tokens: Arc<BotTokenSource>,
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
        // A provider that deduplicates absorbs a reply posted again after a crash.
        let key = format!("pf-reply-{}", job.activity_id);
        post_activity(&self.client, &self.tokens, url, &key, &activity).await
    }
}
