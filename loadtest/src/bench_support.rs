//! What the benchmarks share: psql against the bench's own database, and their settings
//! from the environment.

use anyhow::{bail, Context};
use std::process::Stdio;
use tokio::process::Command;

/// Runs SQL through `psql` (stopping at the first error); returns what it printed.
pub async fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql failed: {sql}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `url` (a database URL) with its database name replaced.
pub fn database_url(url: &str, database: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_path(&format!("/{database}"));
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// A setting from the environment, or its default when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
