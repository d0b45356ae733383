//! The audiences benchmark (issue 4): import a directory of N people as CSV through a real
//! `pushfleet-api` process, then time a three-criterion AND/OR preview and the freezing of a
//! large matching set. The api's memory is sampled from /proc during the import, to show
//! that the importer streams (its peak does not grow with the file).

use crate::bench_support::{database_url, psql};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug, Clone)]
pub struct AudienceBenchConfig {
    /// The `pushfleet-api` binary to run (a release build for real figures).
    pub api_bin: PathBuf,
    /// A Postgres server URL whose user may create databases; the bench makes its own.
    pub postgres_url: String,
    pub database: String,
    pub api_port: u16,
    pub admin_port: u16,
    /// People in the big import.
    pub people: usize,
    /// People in the first, small import (the memory baseline).
    pub warmup_people: usize,
    pub preview_runs: usize,
}

#[derive(Debug, Clone)]
pub struct ImportFigures {
    pub rows: u64,
    pub bytes: usize,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub api_peak_rss_mib: f64,
}

#[derive(Debug, Clone)]
pub struct AudienceBenchReport {
    pub warmup: ImportFigures,
    pub import: ImportFigures,
    pub preview_count: i64,
    pub preview_ms: Vec<f64>,
    pub freeze_members: i64,
    pub freeze_seconds: f64,
    pub explain: String,
}

/// 10 departments, so "department in two of them" matches a fifth of the directory.
const DEPARTMENTS: [&str; 10] = [
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Legal",
    "Support",
    "Operations",
    "Research",
    "People",
    "Design",
];

/// The directory as CSV: every property the criteria use, a manager for most people (the
/// person 10 rows up), and a custom attribute.
pub fn directory_csv(from: usize, n: usize) -> Vec<u8> {
    let mut out = String::with_capacity(n * 170);
    out.push_str("external_id,email,first_name,last_name,department,job_title,teams,roles,joining_date,location,manager,attributes.cost_center\n");
    for i in from..from + n {
        let department = DEPARTMENTS[i % DEPARTMENTS.len()];
        let title = match i % 7 {
            0 => "Junior analyst",
            1 => "Trainee",
            2 => "Senior analyst",
            3 => "Lead",
            _ => "Analyst",
        };
        let role = if i % 25 == 0 { "trainer" } else { "" };
        // Joining dates spread over ten years up to today.
        let joined = chrono::Utc::now().date_naive() - chrono::Duration::days((i % 3650) as i64);
        let manager = if i >= 10 {
            format!("E{}", i / 10)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "E{i},person{i}@corp.example,First{i},Last{i},{department},{title},Team {};Guild {},{role},{joined},Site {},{manager},CC-{}\n",
            i % 50,
            i % 7,
            i % 20,
            i % 100
        ));
    }
    out.into_bytes()
}

/// The three-criterion AND/OR audience the preview figure is for.
pub fn preview_criteria() -> Value {
    json!({"any": [
        {"all": [
            {"property": "department", "op": "equals", "value": "engineering"},
            {"property": "joining_date", "op": "within_last", "value": {"months": 12}}
        ]},
        {"property": "roles", "op": "has_role", "value": "trainer"}
    ]})
}

/// A fifth of the directory: what the freeze figure is for.
pub fn freeze_criteria() -> Value {
    json!({"property": "department", "op": "in", "value": ["Engineering", "Sales"]})
}

struct Api {
    child: Child,
    url: String,
}

impl Api {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

async fn start_api(cfg: &AudienceBenchConfig) -> anyhow::Result<Api> {
    let db_url = database_url(&cfg.postgres_url, &cfg.database);
    psql(
        &cfg.postgres_url,
        &format!("DROP DATABASE IF EXISTS {}", cfg.database),
    )
    .await?;
    psql(
        &cfg.postgres_url,
        &format!("CREATE DATABASE {}", cfg.database),
    )
    .await?;
    let migrated = Command::new(&cfg.api_bin)
        .arg("migrate")
        .env("DATABASE_URL", &db_url)
        .status()
        .await
        .context("running api migrate")?;
    if !migrated.success() {
        bail!("api migrate failed");
    }
    let child = Command::new(&cfg.api_bin)
        .env("DATABASE_URL", &db_url)
        .env("API_ADDR", format!("127.0.0.1:{}", cfg.api_port))
        .env("ADMIN_ADDR", format!("127.0.0.1:{}", cfg.admin_port))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdout(Stdio::null())
        .spawn()
        .context("starting the api")?;
    let api = Api {
        child,
        url: format!("http://127.0.0.1:{}", cfg.api_port),
    };
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{}/readyz", cfg.admin_port);
    for _ in 0..200 {
        if let Ok(r) = http.get(&ready).send().await {
            if r.status().is_success() {
                return Ok(api);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the api did not become ready")
}

/// Resident memory of a process now, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn import(http: &reqwest::Client, api: &Api, csv: Vec<u8>) -> anyhow::Result<ImportFigures> {
    let bytes = csv.len();
    let pid = api.pid().context("api pid")?;
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = sampling.clone();
    let sampler = tokio::spawn(async move {
        let mut peak = 0u64;
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    });
    let started = Instant::now();
    let r = http
        .post(format!("{}/v1/people/import", api.url))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .context("POST /v1/people/import")?;
    let status = r.status();
    let report: Value = r.json().await.context("import report")?;
    let seconds = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap_or(0);
    if !status.is_success() || report["failed"] != 0 {
        bail!("import failed ({status}): {report}");
    }
    let rows = report["rows"].as_u64().unwrap_or(0);
    Ok(ImportFigures {
        rows,
        bytes,
        seconds,
        rows_per_second: rows as f64 / seconds,
        api_peak_rss_mib: peak as f64 / 1024.0,
    })
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> anyhow::Result<Value> {
    let r = http.post(&url).json(body).send().await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {v}");
    }
    Ok(v)
}

pub async fn run(cfg: &AudienceBenchConfig) -> anyhow::Result<AudienceBenchReport> {
    let mut api = start_api(cfg).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let warmup = import(&http, &api, directory_csv(cfg.people, cfg.warmup_people)).await?;
    let import_figures = import(&http, &api, directory_csv(0, cfg.people)).await?;
    // Fresh statistics, as autovacuum would have them shortly after a big import.
    psql(
        &database_url(&cfg.postgres_url, &cfg.database),
        "ANALYZE people",
    )
    .await?;

    let preview_url = format!("{}/v1/audiences/preview", api.url);
    let body = json!({"criteria": preview_criteria(), "limit": 50});
    post(&http, preview_url.clone(), &body).await?; // warm the cache once
    let mut preview_ms = Vec::with_capacity(cfg.preview_runs);
    let mut preview_count = 0;
    for _ in 0..cfg.preview_runs {
        let started = Instant::now();
        let v = post(&http, preview_url.clone(), &body).await?;
        preview_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        preview_count = v["count"].as_i64().unwrap_or(-1);
    }

    let audience = post(
        &http,
        format!("{}/v1/audiences", api.url),
        &json!({"name": "bench freeze", "criteria": freeze_criteria()}),
    )
    .await?;
    let id = audience["id"].as_str().context("audience id")?;
    let started = Instant::now();
    let snapshot = post(
        &http,
        format!("{}/v1/audiences/{id}/snapshots", api.url),
        &json!({}),
    )
    .await?;
    let freeze_seconds = started.elapsed().as_secs_f64();
    let explain = explain_preview(cfg)
        .await
        .unwrap_or_else(|e| format!("(explain failed: {e})"));
    let _ = api.child.kill().await;
    Ok(AudienceBenchReport {
        warmup,
        import: import_figures,
        preview_count,
        preview_ms,
        freeze_members: snapshot["member_count"].as_i64().unwrap_or(-1),
        freeze_seconds,
        explain,
    })
}

/// The plan of the preview's count query, for the report.
async fn explain_preview(cfg: &AudienceBenchConfig) -> anyhow::Result<String> {
    let cutoff = chrono::Utc::now().date_naive() - chrono::Months::new(12);
    let today = chrono::Utc::now().date_naive();
    let sql = format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT count(*) FROM people p WHERE p.active AND (((lower(p.department) = lower('engineering')) AND (p.joining_date BETWEEN '{cutoff}' AND '{today}')) OR (p.roles @> ARRAY['trainer']::text[]))"
    );
    let out = Command::new("psql")
        .arg(database_url(&cfg.postgres_url, &cfg.database))
        .args(["-qAtc", &sql])
        .output()
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

impl AudienceBenchReport {
    pub fn markdown(&self, cfg: &AudienceBenchConfig) -> String {
        let max = self.preview_ms.iter().copied().fold(0.0, f64::max);
        format!(
            "| measure | figure | target |\n|---|---|---|\n\
             | CSV import, {} people ({:.0} MiB) through `POST /v1/people/import` | {:.1} s, **{:.0} rows/s** | ≥ 100,000 rows/s |\n\
             | api peak RSS during that import | {:.0} MiB (after a {}-row import: {:.0} MiB) | flat |\n\
             | preview (count + first 50) of a 3-criterion AND/OR audience over {} people, {} matches | median **{:.0} ms**, max {:.0} ms over {} runs | < 300 ms |\n\
             | freeze a dynamic audience of {} people | **{:.2} s** | < 5 s |\n",
            self.import.rows,
            self.import.bytes as f64 / 1048576.0,
            self.import.seconds,
            self.import.rows_per_second,
            self.import.api_peak_rss_mib,
            self.warmup.rows,
            self.warmup.api_peak_rss_mib,
            cfg.people + cfg.warmup_people,
            self.preview_count,
            median(&self.preview_ms),
            max,
            self.preview_ms.len(),
            self.freeze_members,
            self.freeze_seconds,
        )
    }
}
