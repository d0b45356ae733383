//! The quick-start demo: creates people, an audience, a template and a campaign over every
//! channel through the API, follows the campaign to the end, and checks with the provider
//! simulator that every message arrived exactly once.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// `API_URL`
    pub api_url: String,
    /// `SIM_URL`: the provider simulator's HTTP address.
    pub sim_url: String,
    /// `PUSHFLEET_API_KEY`: an admin key (`pushfleet-api api-key create --role admin`).
    pub api_key: String,
    /// `DEMO_RECIPIENTS`
    pub recipients: usize,
    /// `/readyz` URLs to wait for before starting.
    pub readiness_urls: Vec<String>,
    pub timeout: Duration,
}

impl DemoConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
        let recipients = var("DEMO_RECIPIENTS", "300")
            .parse()
            .context("DEMO_RECIPIENTS must be a number")?;
        let readiness_urls = (9100..=9105)
            .map(|port| format!("http://127.0.0.1:{port}/readyz"))
            .collect();
        Ok(Self {
            api_url: var("API_URL", "http://127.0.0.1:8080"),
            sim_url: var("SIM_URL", "http://127.0.0.1:18080"),
            api_key: std::env::var("PUSHFLEET_API_KEY").context(
                "PUSHFLEET_API_KEY is not set: create a key with \
                 `pushfleet-api api-key create --role admin --name demo`",
            )?,
            recipients,
            readiness_urls,
            timeout: Duration::from_secs(300),
        })
    }
}

/// Per channel: what the fleet recorded and what the provider received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelReport {
    pub expected: u64,
    pub sent: u64,
    pub failed: u64,
    pub received: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone)]
pub struct DemoReport {
    pub campaign_id: String,
    pub elapsed: Duration,
    pub channels: BTreeMap<String, ChannelReport>,
}

impl DemoReport {
    pub fn expected(&self) -> u64 {
        self.channels.values().map(|c| c.expected).sum()
    }

    /// Messages the provider received once and the fleet recorded as sent.
    pub fn delivered(&self) -> u64 {
        self.channels.values().map(|c| c.received.min(c.sent)).sum()
    }

    pub fn duplicates(&self) -> u64 {
        self.channels.values().map(|c| c.duplicates).sum()
    }

    pub fn is_complete(&self) -> bool {
        self.delivered() == self.expected() && self.duplicates() == 0
    }

    /// The summary; its last line is `delivered N/M`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "campaign {} completed in {:.1} s",
            self.campaign_id,
            self.elapsed.as_secs_f64()
        );
        for (name, c) in &self.channels {
            let _ = writeln!(
                out,
                "  {name:<6} sent {}/{}  failed {}  received by provider {}  duplicates {}",
                c.sent, c.expected, c.failed, c.received, c.duplicates
            );
        }
        let _ = write!(out, "delivered {}/{}", self.delivered(), self.expected());
        out
    }
}

/// Runs the demo; `progress` is called with each campaign view while it runs.
pub async fn run_demo(
    cfg: &DemoConfig,
    mut progress: impl FnMut(&Value),
) -> anyhow::Result<DemoReport> {
    let http = crate::api_key::client_with_key(&cfg.api_key, Duration::from_secs(30))?;
    wait_until_ready(&http, cfg).await?;

    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let people: Vec<Value> = (0..cfg.recipients)
        .map(|i| {
            json!({
                "email": format!("demo-{run}-{i}@example.org"),
                "first_name": format!("Ada{i}"),
                "last_name": "Lovelace",
                "phone": format!("+1555{i:07}"),
                "teams": {"service_url": format!("{}/", cfg.sim_url), "conversation_id": format!("a:demo-{run}-{i}")},
            })
        })
        .collect();
    let created = post(&http, cfg, "/v1/people", json!({ "people": people })).await?;
    let audience = post(
        &http,
        cfg,
        "/v1/audiences",
        json!({"name": format!("demo {run}"), "person_ids": created["ids"]}),
    )
    .await?;
    let template = post(
        &http,
        cfg,
        "/v1/templates",
        json!({
            "name": "demo welcome",
            "subject": "Welcome to pushfleet, {{first_name}}",
            "body": "Hello {{first_name}} {{last_name}}, this is the pushfleet demo.",
            "html": "<p>Hello <b>{{full_name}}</b>, this is the pushfleet demo.</p>",
        }),
    )
    .await?;
    let campaign = post(
        &http,
        cfg,
        "/v1/campaigns",
        json!({
            "name": format!("demo {run}"),
            "audience_id": audience["id"],
            "template_id": template["id"],
            "channels": ["email", "teams", "sms"],
        }),
    )
    .await?;
    let id = campaign["id"].as_str().context("campaign id")?.to_owned();

    let started = Instant::now();
    let view = loop {
        let view = get(&http, &format!("{}/v1/campaigns/{id}", cfg.api_url)).await?;
        progress(&view);
        if view["status"] == "completed" {
            break view;
        }
        if started.elapsed() > cfg.timeout {
            bail!(
                "campaign {id} not completed after {:?}: {view}",
                cfg.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let elapsed = started.elapsed();

    // What the provider side saw, for this campaign only (its id is in every idempotency key).
    let received = get(&http, &format!("{}/_sim/messages", cfg.sim_url)).await?;
    let key_part = id.replace('-', "");
    let mut channels: BTreeMap<String, ChannelReport> = BTreeMap::new();
    for ch in ["email", "teams", "sms"] {
        let by_state = &view["progress"]["by_channel"][ch];
        channels.insert(
            ch.to_owned(),
            ChannelReport {
                expected: cfg.recipients as u64,
                sent: by_state["sent"].as_u64().unwrap_or(0),
                failed: by_state["failed"].as_u64().unwrap_or(0)
                    + by_state["dead"].as_u64().unwrap_or(0),
                ..Default::default()
            },
        );
    }
    for m in received.as_array().map(Vec::as_slice).unwrap_or_default() {
        let ours = m["idempotency_key"]
            .as_str()
            .is_some_and(|k| k.contains(&key_part));
        let Some(report) = m["channel"].as_str().and_then(|c| channels.get_mut(c)) else {
            continue;
        };
        if ours {
            if m["duplicate"] == true {
                report.duplicates += 1;
            } else {
                report.received += 1;
            }
        }
    }
    Ok(DemoReport {
        campaign_id: id,
        elapsed,
        channels,
    })
}

async fn wait_until_ready(http: &reqwest::Client, cfg: &DemoConfig) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut urls = cfg.readiness_urls.clone();
    urls.push(format!("{}/healthz", cfg.sim_url));
    for url in urls {
        loop {
            let ok = matches!(http.get(&url).send().await, Ok(r) if r.status().is_success());
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("{url} is not ready; see .pushfleet/logs/");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

async fn post(
    http: &reqwest::Client,
    cfg: &DemoConfig,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = http
        .post(format!("{}{path}", cfg.api_url))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = r.status();
    let value: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path} answered {status}: {value}");
    }
    Ok(value)
}

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let r = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let value: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("GET {url} answered {status}: {value}");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_ends_with_delivered_line() {
        let mut channels = BTreeMap::new();
        channels.insert(
            "email".to_owned(),
            ChannelReport {
                expected: 3,
                sent: 3,
                failed: 0,
                received: 3,
                duplicates: 0,
            },
        );
        channels.insert(
            "sms".to_owned(),
            ChannelReport {
                expected: 3,
                sent: 2,
                failed: 1,
                received: 2,
                duplicates: 0,
            },
        );
        let r = DemoReport {
            campaign_id: "c".into(),
            elapsed: Duration::from_secs(1),
            channels,
        };
        assert_eq!(r.render().lines().last(), Some("delivered 5/6"));
        assert!(!r.is_complete());
    }
}
