//! The load generator's side of the api: people, audience, template, campaign, progress.

use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use pushfleet_domain::Channel;

/// The most people one `POST /v1/people` takes.
const PEOPLE_PER_REQUEST: usize = 10_000;

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
}

/// Sends spread uniformly between two moments (a send window with working hours from..to,
/// UTC, on one day).
#[derive(Debug, Clone, Copy)]
pub struct SpreadWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl ApiClient {
    /// A client of the api at `base`, calling with `api_key` (an admin key).
    pub fn new(base: impl Into<String>, api_key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: crate::api_key::client_with_key(api_key, Duration::from_secs(300))?,
            base: base.into(),
        })
    }

    /// Creates `n` people `lt-{tag}-{i}` with an e-mail, a phone and a Teams conversation at
    /// the simulator; returns their ids in order.
    pub async fn create_people(
        &self,
        n: usize,
        tag: &str,
        sim_url: &str,
        mut progress: impl FnMut(usize),
    ) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let end = (start + PEOPLE_PER_REQUEST).min(n);
            let people: Vec<Value> = (start..end)
                .map(|i| {
                    json!({
                        "email": format!("lt-{tag}-{i}@example.org"),
                        "first_name": format!("Ada{i}"),
                        "last_name": "Lovelace",
                        "phone": format!("+1555{:07}", i % 10_000_000),
                        "teams": {
                            "service_url": format!("{sim_url}/"),
                            "conversation_id": format!("a:lt-{tag}-{i}"),
                        },
                    })
                })
                .collect();
            let created = self.post("/v1/people", json!({ "people": people })).await?;
            let batch = created["ids"]
                .as_array()
                .context("POST /v1/people answered without ids")?;
            if batch.len() != end - start {
                bail!("asked for {} people, got {} ids", end - start, batch.len());
            }
            ids.extend(batch.iter().filter_map(|v| v.as_str().map(str::to_owned)));
            start = end;
            progress(start);
        }
        Ok(ids)
    }

    pub async fn create_audience(
        &self,
        name: &str,
        person_ids: &[String],
    ) -> anyhow::Result<String> {
        let audience = self
            .post(
                "/v1/audiences",
                json!({ "name": name, "person_ids": person_ids }),
            )
            .await?;
        id_of(&audience, "audience")
    }

    pub async fn create_template(&self) -> anyhow::Result<String> {
        let template = self
            .post(
                "/v1/templates",
                json!({
                    "name": "load test",
                    "subject": "pushfleet load test for {{first_name}}",
                    "body": "Hello {{first_name}} {{last_name}}, this is a pushfleet load test message.",
                    "html": "<p>Hello <b>{{full_name}}</b>, this is a pushfleet load test message.</p>",
                }),
            )
            .await?;
        id_of(&template, "template")
    }

    /// A campaign starting now; with `spread`, its sends are due uniformly over that window.
    pub async fn create_campaign(
        &self,
        name: &str,
        audience_id: &str,
        template_id: &str,
        channels: &[Channel],
        spread: Option<SpreadWindow>,
    ) -> anyhow::Result<Uuid> {
        let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        let mut body = json!({
            "name": name,
            "audience_id": audience_id,
            "template_id": template_id,
            "channels": channels,
        });
        if let Some(w) = spread {
            if w.from.date_naive() != w.to.date_naive() {
                bail!("the paced run's window crosses midnight UTC; run it again in a minute");
            }
            body["send_window"] = json!({
                "days": 1,
                "time_zone": "UTC",
                "working_hours": {
                    "from": w.from.format("%H:%M:%S").to_string(),
                    "to": w.to.format("%H:%M:%S").to_string(),
                },
            });
        }
        let campaign = self.post("/v1/campaigns", body).await?;
        id_of(&campaign, "campaign")?
            .parse()
            .context("campaign id is not a uuid")
    }

    pub async fn campaign(&self, id: Uuid) -> anyhow::Result<Value> {
        self.get(&format!("/v1/campaigns/{id}")).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        answer(r, "POST", path).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        answer(r, "GET", path).await
    }
}

async fn answer(r: reqwest::Response, method: &str, path: &str) -> anyhow::Result<Value> {
    let status = r.status();
    let value: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{method} {path} answered {status}: {value}");
    }
    Ok(value)
}

fn id_of(v: &Value, what: &str) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{what} created without an id: {v}"))
}
