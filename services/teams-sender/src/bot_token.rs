use pushfleet_config::Secret;
use pushfleet_sender::ProviderError;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Refresh this long before the token expires, so no call goes out with a dying token.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

struct Cached {
    token: Secret<String>,
    refresh_at: Instant,
}

/// The bot's OAuth client-credentials token, fetched once and shared by every call until it
/// is near expiry. The mutex makes concurrent callers wait for one refresh, not stampede.
pub struct BotTokenSource {
    client: reqwest::Client,
    token_url: String,
    app_id: String,
    app_password: Secret<String>,
    scope: String,
    cached: Mutex<Option<Cached>>,
}

impl BotTokenSource {
    pub fn new(
        client: reqwest::Client,
        token_url: String,
        app_id: String,
        app_password: Secret<String>,
        scope: String,
    ) -> Self {
        Self {
            client,
            token_url,
            app_id,
            app_password,
            scope,
            cached: Mutex::new(None),
        }
    }

    pub async fn token(&self) -> Result<Secret<String>, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drops the cached token (after a 401), so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    #[tracing::instrument(skip_all, name = "bot_token_fetch")]
    async fn fetch(&self) -> Result<Cached, ProviderError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app_id.as_str()),
            ("client_secret", self.app_password.expose().as_str()),
            ("scope", self.scope.as_str()),
        ];
        let response = self
            .client
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| ProviderError::transient(format!("token request failed: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            // Wrong credentials will not fix themselves, but a retry after an operator fixes
            // them should still go through: keep it transient so the attempts budget decides.
            return Err(ProviderError::transient(format!(
                "token endpoint answered {status}: {detail}"
            )));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| ProviderError::transient(format!("token response unreadable: {e}")))?;
        let lifetime = Duration::from_secs(body.expires_in);
        let refresh_in = lifetime.checked_sub(REFRESH_MARGIN).unwrap_or(lifetime / 2);
        tracing::info!(expires_in = body.expires_in, "bot token refreshed");
        Ok(Cached {
            token: Secret::new(body.access_token),
            refresh_at: Instant::now() + refresh_in,
        })
    }
}
