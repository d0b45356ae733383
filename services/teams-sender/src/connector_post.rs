//! One activity posted to the Bot Framework Connector, for sends and replies alike: the bot
//! token, the idempotency key, and what the answer means (a 401 drops the cached token).

use crate::BotTokenSource;
use pushfleet_sender::http_errors::{classify_status, classify_transport};
use pushfleet_sender::ProviderError;
use reqwest::StatusCode;
use serde::Deserialize;

/// The Connector's answer to a created resource (activity, conversation).
#[derive(Deserialize)]
pub(crate) struct ResourceResponse {
    #[serde(default)]
    pub(crate) id: Option<String>,
}

/// `POST url` with `activity`; returns the Connector's id for it, when it gives one.
pub(crate) async fn post_activity(
    client: &reqwest::Client,
    tokens: &BotTokenSource,
    url: reqwest::Url,
    idempotency_key: &str,
    activity: &serde_json::Value,
) -> Result<Option<String>, ProviderError> {
    let token = tokens.token().await?;
    let response = client
        .post(url)
        .bearer_auth(token.expose())
        .header("Idempotency-Key", idempotency_key)
        .json(activity)
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
        tokens.invalidate().await;
        return Err(ProviderError::transient(
            "connector rejected the bot token (401)",
        ));
    }
    let headers = response.headers().clone();
    let detail = response.text().await.unwrap_or_default();
    Err(classify_status(status, &headers, detail))
}
