//! The load generator's and the demo's credential: an admin API key, made with the api's own
//! CLI (`pushfleet-api api-key create`), sent as `Authorization: Bearer` on every request.

use anyhow::{bail, Context};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// Creates an admin key with `api_binary` on `database_url`; returns it.
pub async fn create_admin_key(
    api_binary: &Path,
    database_url: &str,
    name: &str,
) -> anyhow::Result<String> {
    let out = Command::new(api_binary)
        .args(["api-key", "create", "--role", "admin", "--name", name])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .context("running pushfleet-api api-key create")?;
    if !out.status.success() {
        bail!(
            "pushfleet-api api-key create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8(out.stdout).context("the key is text")?;
    match stdout.lines().last().map(str::trim) {
        Some(key) if !key.is_empty() => Ok(key.to_owned()),
        _ => bail!("pushfleet-api api-key create printed no key"),
    }
}

/// An HTTP client that sends `key` with every request.
pub fn client_with_key(key: &str, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
        .context("the API key is not a valid header value")?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .build()?)
}
