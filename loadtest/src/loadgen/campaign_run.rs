//! One measured campaign: audience and campaign through the api, followed to the end with a
//! progress bar, then timed and audited; CPU and peak memory of every process over the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pushfleet_domain::Channel;
use sqlx::PgPool;
use uuid::Uuid;

use super::api_client::{ApiClient, SpreadWindow};
use super::measure::{analyse, delivery_rows, receipts, Analysis};
use super::procstat;
use super::progress::ProgressBar;
use crate::simulator::SimStats;

/// What a campaign runs against.
pub struct Target {
    pub api: ApiClient,
    pub sim_url: String,
    pub db: PgPool,
    /// `(name, role, pid)` of every process to measure.
    pub processes: Vec<(String, String, u32)>,
    pub template_id: String,
    /// Give up when no delivery arrives for this long.
    pub stall_timeout: Duration,
}

/// One campaign to run.
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    pub label: String,
    pub person_ids: Vec<String>,
    pub channels: Vec<Channel>,
    pub replicas: usize,
    pub spread: Option<SpreadWindow>,
}

/// CPU and memory of one process over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessUsage {
    pub name: String,
    pub role: String,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub label: String,
    pub campaign_id: Uuid,
    pub recipients: usize,
    pub channels: Vec<Channel>,
    pub replicas: usize,
    /// Campaign created -> completion seen by the load generator.
    pub wall_seconds: f64,
    pub analysis: Analysis,
    pub processes: Vec<ProcessUsage>,
    /// 1-minute load average when the run started (a busy machine shows here).
    pub load_average: f64,
    pub spread: Option<SpreadWindow>,
    /// CPU seconds of the servers over the run, by name (all their processes; on a shared
    /// machine this includes anyone else's use of them).
    pub servers: Vec<(String, f64)>,
}

/// Servers measured: a display name and the process command name.
pub const SERVERS: [(&str, &str); 3] = [
    ("RabbitMQ", "beam.smp"),
    ("Postgres", "postgres"),
    ("Redis", "redis-server"),
];

fn server_cpu() -> Vec<(String, f64)> {
    SERVERS
        .iter()
        .map(|(name, comm)| ((*name).to_owned(), procstat::cpu_seconds_of_command(comm)))
        .collect()
}

impl RunResult {
    pub fn deliveries(&self) -> u64 {
        (self.recipients * self.channels.len()) as u64
    }

    /// CPU seconds summed and peak RSS maximised over the replicas of each role.
    pub fn by_role(&self) -> BTreeMap<String, (f64, f64)> {
        let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for p in &self.processes {
            let e = out.entry(p.role.clone()).or_default();
            e.0 += p.cpu_seconds;
            e.1 = e.1.max(p.peak_rss_mib);
        }
        out
    }
}

/// Reads the 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn sim_stats(http: &reqwest::Client, sim_url: &str) -> anyhow::Result<SimStats> {
    Ok(http
        .get(format!("{sim_url}/_sim/stats"))
        .send()
        .await
        .context("GET /_sim/stats")?
        .error_for_status()?
        .json()
        .await?)
}

/// Runs one campaign to completion and measures it.
pub async fn run_campaign(target: &Target, spec: &CampaignSpec) -> anyhow::Result<RunResult> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let audience = target
        .api
        .create_audience(&spec.label, &spec.person_ids)
        .await?;
    let baseline = sim_stats(&http, &target.sim_url).await?.total.unique as u64;
    let expected = (spec.person_ids.len() * spec.channels.len()) as u64;

    let mut before = BTreeMap::new();
    let mut peak_sampled: BTreeMap<u32, u64> = BTreeMap::new();
    for (_, _, pid) in &target.processes {
        // Without the reset the peak covers the process's whole life, still an upper bound.
        let _ = procstat::reset_peak(*pid);
        before.insert(*pid, procstat::sample(*pid)?);
    }
    let load = load_average();
    let servers_before = server_cpu();

    let started = Instant::now();
    let t0_us = chrono::Utc::now().timestamp_micros();
    let campaign = target
        .api
        .create_campaign(
            &spec.label,
            &audience,
            &target.template_id,
            &spec.channels,
            spec.spread,
        )
        .await?;

    let mut bar = ProgressBar::new(spec.label.clone(), expected);
    let mut last_check = Instant::now();
    let mut last_progress = (0u64, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let done = sim_stats(&http, &target.sim_url)
            .await?
            .total
            .unique
            .saturating_sub(baseline as usize) as u64;
        bar.update(done);
        for (_, _, pid) in &target.processes {
            if let Ok(s) = procstat::sample(*pid) {
                let e = peak_sampled.entry(*pid).or_default();
                *e = (*e).max(s.rss_kib);
            }
        }
        if done != last_progress.0 {
            last_progress = (done, Instant::now());
        }
        // The api's progress is a GROUP BY over the campaign's rows: asked twice a second it
        // cost Postgres a quarter of a core, which the fleet is measured against. The
        // simulator's receipt count says when to look; every 5 s covers failures and stalls.
        if last_check.elapsed() >= Duration::from_secs(5) || done >= expected {
            last_check = Instant::now();
            let view = target.api.campaign(campaign).await?;
            if view["status"] == "completed" {
                bar.finish(done);
                break;
            }
            let waiting_for_window = spec
                .spread
                .is_some_and(|w| chrono::Utc::now() < w.to + chrono::Duration::seconds(5));
            if !waiting_for_window && last_progress.1.elapsed() > target.stall_timeout {
                bar.finish(done);
                bail!(
                    "campaign {campaign} stalled at {done}/{expected} for {:?}: {view}",
                    target.stall_timeout
                );
            }
        }
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let servers = server_cpu()
        .into_iter()
        .zip(servers_before)
        .map(|((name, after), (_, before))| (name, (after - before).max(0.0)))
        .collect();

    let mut processes = Vec::new();
    for (name, role, pid) in &target.processes {
        let after = procstat::sample(*pid)?;
        let b = before.get(pid).copied().unwrap_or_default();
        let sampled = peak_sampled.get(pid).copied().unwrap_or(0);
        processes.push(ProcessUsage {
            name: name.clone(),
            role: role.clone(),
            cpu_seconds: after.cpu_seconds - b.cpu_seconds,
            peak_rss_mib: after.peak_rss_kib.max(sampled) as f64 / 1024.0,
        });
    }

    let rows = delivery_rows(&target.db, campaign).await?;
    let got = receipts(&http, &target.sim_url).await?;
    let analysis = analyse(campaign, expected, &rows, &got, t0_us);
    Ok(RunResult {
        label: spec.label.clone(),
        campaign_id: campaign,
        recipients: spec.person_ids.len(),
        channels: spec.channels.clone(),
        replicas: spec.replicas,
        wall_seconds,
        analysis,
        processes,
        load_average: load,
        spread: spec.spread,
        servers,
    })
}
