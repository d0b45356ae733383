//! The report and click benchmark (issue 13): a campaign of 1,000,000 deliveries with
//! clicks and opens, written straight into a fresh database; then, through a real
//! `pushfleet-api` process,
//! - the report (`GET /v1/campaigns/{id}/report`) timed over many runs, a deep recipients
//!   page and the full CSV;
//! - the click redirect under an open-loop load (a fixed rate, latency measured from when
//!   each click was due, so a stall counts against it) while deliveries of the campaign are
//!   being marked sent in batches, as the senders' outcome writer does;
//! - every click of the load found in `tracking_events` afterwards.

use crate::bench_support::{database_url, psql};
use anyhow::{bail, Context};
use pushfleet_domain::{TrackedEvent, TrackingKey, TrackingToken};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct ReportBenchConfig {
    /// The `pushfleet-api` binary (a release build for real figures).
    pub api_bin: PathBuf,
    /// A Postgres server URL whose user may create databases; the bench makes its own.
    pub postgres_url: String,
    pub database: String,
    pub api_port: u16,
    pub public_port: u16,
    pub admin_port: u16,
    pub deliveries: i64,
    pub report_runs: usize,
    /// Clicks per second the load aims at, and for how long.
    pub click_rate: u32,
    pub click_seconds: u32,
}

#[derive(Debug, Clone, Default)]
pub struct ReportBenchReport {
    pub deliveries: i64,
    pub events: i64,
    pub seed_seconds: f64,
    pub report_ms: Vec<f64>,
    pub page_ms: Vec<f64>,
    pub csv_rows: usize,
    pub csv_seconds: f64,
    pub clicks_sent: usize,
    pub click_errors: usize,
    pub clicks_per_second: f64,
    pub click_ms: Vec<f64>,
    pub outcomes_written: i64,
    pub clicks_recorded: i64,
}

/// The secret the bench's api opens tokens with (a bench database, nothing else).
const SECRET: &str = "pushfleet-report-bench-secret";
const TEMPLATE_BODY: &str =
    "Hello {{first_name}}, the guide: https://intranet.example/guide and the form: https://forms.example/f/1";

struct Api {
    child: Child,
    url: String,
    public_url: String,
    key: String,
}

async fn start_api(cfg: &ReportBenchConfig, db_url: &str) -> anyhow::Result<Api> {
    let migrated = Command::new(&cfg.api_bin)
        .arg("migrate")
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .status()
        .await
        .context("running api migrate")?;
    if !migrated.success() {
        bail!("api migrate failed");
    }
    let key = Command::new(&cfg.api_bin)
        .args([
            "api-key",
            "create",
            "--role",
            "admin",
            "--name",
            "report-bench",
        ])
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .context("creating an api key")?;
    let key = String::from_utf8_lossy(&key.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let child = Command::new(&cfg.api_bin)
        .env("DATABASE_URL", db_url)
        .env("API_ADDR", format!("127.0.0.1:{}", cfg.api_port))
        .env("PUBLIC_ADDR", format!("127.0.0.1:{}", cfg.public_port))
        .env("ADMIN_ADDR", format!("127.0.0.1:{}", cfg.admin_port))
        .env("TRACKING_SECRET", SECRET)
        .env("PUSHFLEET_ENV", "development")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdout(Stdio::null())
        .spawn()
        .context("starting the api")?;
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{}/readyz", cfg.admin_port);
    for _ in 0..200 {
        if let Ok(r) = http.get(&ready).send().await {
            if r.status().is_success() {
                return Ok(Api {
                    child,
                    url: format!("http://127.0.0.1:{}", cfg.api_port),
                    public_url: format!("http://127.0.0.1:{}", cfg.public_port),
                    key,
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the api did not become ready")
}

/// One campaign (made through the api, as a draft) turned into a broadcast one of
/// `deliveries` rows, with a realistic mix of channels, states and engagement.
async fn seed(api: &Api, db_url: &str, deliveries: i64) -> anyhow::Result<(String, i64)> {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", api.url))
            .bearer_auth(&api.key)
            .json(&body)
            .send()
    };
    let template: Value = post(
        "/v1/templates",
        json!({"name": "bench", "subject": "Bench", "body": TEMPLATE_BODY}),
    )
    .await?
    .json()
    .await?;
    let template_id = template["id"].as_str().context("template id")?.to_owned();
    let campaign: Value = post(
        "/v1/campaigns",
        json!({"name": "a million", "status": "draft", "template_id": template_id,
               "channels": ["email", "teams", "sms"]}),
    )
    .await?
    .json()
    .await?;
    let campaign_id = campaign["id"].as_str().context("campaign id")?.to_owned();
    let n = deliveries;
    // People and deliveries in bulk: 60 % e-mail, 30 % Teams, 10 % SMS; 90 % sent, 4 %
    // pending (a tenth of them due later), 3 % failed, 1 % dead, 2 % skipped.
    let sql = format!(
        "BEGIN;
         INSERT INTO people (id, email, first_name, last_name)
           SELECT gen_random_uuid(), 'p' || i || '@bench.example', 'First' || i, 'Last' || i
           FROM generate_series(1, {n}) i;
         INSERT INTO audiences (id, name, kind) VALUES (gen_random_uuid(), 'bench', 'fixed');
         UPDATE campaigns SET status = 'sending', message_frozen_at = now(), evaluated_at = now(),
                audience_id = (SELECT id FROM audiences LIMIT 1)
           WHERE id = '{campaign_id}';
         INSERT INTO deliveries (campaign_id, person_id, channel, state, attempts, last_error,
                                 provider_status, due_at, published_at, updated_at)
           SELECT '{campaign_id}', p.id,
                  CASE WHEN r % 10 < 6 THEN 'email' WHEN r % 10 < 9 THEN 'teams' ELSE 'sms' END,
                  CASE WHEN r % 100 < 90 THEN 'sent' WHEN r % 100 < 94 THEN 'pending'
                       WHEN r % 100 < 97 THEN 'failed' WHEN r % 100 < 98 THEN 'dead'
                       ELSE 'skipped' END,
                  CASE WHEN r % 100 < 90 THEN 1 ELSE 0 END,
                  CASE WHEN r % 100 >= 94 THEN 'bench reason' END,
                  CASE WHEN r % 10 = 9 AND r % 100 < 90 THEN 'delivered' END,
                  CASE WHEN r % 100 = 93 THEN now() + interval '1 day' END,
                  now(), now() - interval '1 hour'
           FROM (SELECT id, row_number() OVER () AS r FROM people) p;
         INSERT INTO tracking_events (event_id, campaign_id, delivery_id, kind, link, occurred_at, scanner)
           SELECT gen_random_uuid(), d.campaign_id, d.id,
                  CASE WHEN d.id % 5 = 0 THEN 'click' ELSE 'open' END,
                  CASE WHEN d.id % 5 = 0 THEN (d.id % 2)::smallint END,
                  now(), CASE WHEN d.id % 50 = 0 THEN 'a HEAD request' END
           FROM deliveries d WHERE d.state = 'sent' AND d.id % 3 = 0;
         -- The running counts the api's recorder keeps as it writes events.
         CREATE TEMP TABLE keyed AS
           SELECT e.campaign_id, e.delivery_id, e.kind, k.link, e.scanner FROM tracking_events e
           CROSS JOIN LATERAL (VALUES (coalesce(e.link, -1::smallint)),
                                      (CASE WHEN e.link IS NOT NULL THEN -1::smallint END)) AS k(link)
           WHERE k.link IS NOT NULL;
         INSERT INTO tracking_firsts (campaign_id, kind, link, delivery_id)
           SELECT DISTINCT campaign_id, kind, link, delivery_id FROM keyed WHERE scanner IS NULL;
         INSERT INTO tracking_counts (campaign_id, kind, link, people, unique_people, scanners)
           SELECT campaign_id, kind, link, count(*) FILTER (WHERE scanner IS NULL),
                  count(DISTINCT delivery_id) FILTER (WHERE scanner IS NULL),
                  count(*) FILTER (WHERE scanner IS NOT NULL)
           FROM keyed GROUP BY 1, 2, 3;
         COMMIT;"
    );
    psql(db_url, &sql).await?;
    // As autovacuum leaves them shortly after: statistics, and the visibility map that lets
    // counts read the indexes alone. (VACUUM cannot run in the seed's transaction.)
    psql(db_url, "VACUUM ANALYZE people, deliveries, tracking_events").await?;
    let events: i64 = psql(db_url, "SELECT count(*) FROM tracking_events")
        .await?
        .parse()
        .unwrap_or(-1);
    Ok((campaign_id, events))
}

async fn timed_get(http: &reqwest::Client, api: &Api, path: &str) -> anyhow::Result<(f64, String)> {
    let started = Instant::now();
    let r = http
        .get(format!("{}{path}", api.url))
        .bearer_auth(&api.key)
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        bail!("GET {path} answered {status}: {body}");
    }
    Ok((ms, body))
}

/// Marks pending deliveries sent in batches of 500 every 100 ms while `stop` is not set:
/// what the senders' outcome writer does to the same table while a campaign sends.
async fn outcome_writer(
    db_url: String,
    campaign_id: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> i64 {
    let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db_url)
        .await
    else {
        return -1;
    };
    let mut written = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        let done = sqlx::query(
            "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, updated_at = now()
             WHERE id IN (SELECT id FROM deliveries WHERE campaign_id = $1::uuid
                          AND state = 'pending' AND due_at IS NULL LIMIT 500)",
        )
        .bind(&campaign_id)
        .execute(&pool)
        .await;
        written += done.map(|d| d.rows_affected() as i64).unwrap_or(0);
    }
    written
}

async fn click_load(
    cfg: &ReportBenchConfig,
    api: &Api,
    db_url: &str,
) -> anyhow::Result<(Vec<f64>, usize, usize, f64)> {
    let link_key: i64 = psql(db_url, "SELECT link_key FROM campaigns LIMIT 1")
        .await?
        .parse()?;
    let ids: Vec<i64> = psql(
        db_url,
        "SELECT id FROM deliveries WHERE state = 'sent' ORDER BY id LIMIT 100000",
    )
    .await?
    .lines()
    .filter_map(|l| l.parse().ok())
    .collect();
    if ids.is_empty() {
        bail!("no sent deliveries to click");
    }
    let key = TrackingKey::new(SECRET.as_bytes());
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let token = key.make(TrackingToken {
                    delivery_id: *id,
                    campaign_key: link_key,
                    event: TrackedEvent::Click {
                        link: (i % 2) as u16,
                    },
                });
                format!("{}/r/{token}", api.public_url)
            })
            .collect(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(10))
        .build()?;
    // Warm the connection pool and the api's link cache.
    for url in urls.iter().take(64) {
        http.get(url)
            .header("user-agent", "Mozilla/5.0 bench")
            .send()
            .await?;
    }
    let total = (cfg.click_rate * cfg.click_seconds) as usize;
    let in_flight = Arc::new(Semaphore::new(1024));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(cfg.click_rate));
    for i in 0..total {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let permit = in_flight.clone().acquire_owned().await?;
        let http = http.clone();
        let url = urls[i % urls.len()].clone();
        tasks.spawn(async move {
            let r = http
                .get(&url)
                .header("user-agent", "Mozilla/5.0 bench")
                .send()
                .await;
            drop(permit);
            // From when the click was due: a stalled redirect delays every click behind it.
            let ms = due.elapsed().as_secs_f64() * 1000.0;
            (ms, matches!(r, Ok(r) if r.status().as_u16() == 302))
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (ms, ok) = done?;
        latencies.push(ms);
        if !ok {
            errors += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((latencies, total, errors, total as f64 / seconds))
}

pub async fn run(cfg: &ReportBenchConfig) -> anyhow::Result<ReportBenchReport> {
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
    let mut api = start_api(cfg, &db_url).await?;
    let started = Instant::now();
    let (campaign_id, events) = seed(&api, &db_url, cfg.deliveries).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;

    let report_path = format!("/v1/campaigns/{campaign_id}/report");
    timed_get(&http, &api, &report_path).await?; // warm
    let mut report_ms = Vec::with_capacity(cfg.report_runs);
    for _ in 0..cfg.report_runs {
        report_ms.push(timed_get(&http, &api, &report_path).await?.0);
    }
    let middle: i64 = psql(&db_url, "SELECT id FROM deliveries ORDER BY id OFFSET (SELECT count(*) / 2 FROM deliveries) LIMIT 1")
        .await?
        .parse()?;
    let mut page_ms = Vec::new();
    for _ in 0..cfg.report_runs.min(20) {
        let path =
            format!("/v1/campaigns/{campaign_id}/report/recipients?limit=100&after={middle}");
        page_ms.push(timed_get(&http, &api, &path).await?.0);
    }
    let csv_started = Instant::now();
    let (_, csv) = timed_get(
        &http,
        &api,
        &format!("/v1/campaigns/{campaign_id}/report.csv"),
    )
    .await?;
    let csv_seconds = csv_started.elapsed().as_secs_f64();
    let csv_rows = csv.lines().count().saturating_sub(1);
    drop(csv);

    let before: i64 = psql(&db_url, "SELECT count(*) FROM tracking_events")
        .await?
        .parse()?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn(outcome_writer(
        db_url.clone(),
        campaign_id.clone(),
        stop.clone(),
    ));
    let (click_ms, clicks_sent, click_errors, clicks_per_second) =
        click_load(cfg, &api, &db_url).await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let outcomes_written = writer.await.unwrap_or(-1);
    // Every click answered must be written: the recorder drains within a few seconds.
    let warmup_clicks = 64;
    let expected = before + (clicks_sent - click_errors + warmup_clicks) as i64;
    let mut clicks_recorded = 0;
    for _ in 0..300 {
        clicks_recorded = psql(&db_url, "SELECT count(*) FROM tracking_events")
            .await?
            .parse::<i64>()?
            - before;
        if before + clicks_recorded >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = api.child.kill().await;
    Ok(ReportBenchReport {
        deliveries: cfg.deliveries,
        events,
        seed_seconds,
        report_ms,
        page_ms,
        csv_rows,
        csv_seconds,
        clicks_sent: clicks_sent + warmup_clicks,
        click_errors,
        clicks_per_second,
        click_ms,
        outcomes_written,
        clicks_recorded,
    })
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((s.len() as f64 - 1.0) * p).round() as usize;
    s[i.min(s.len() - 1)]
}

impl ReportBenchReport {
    pub fn markdown(&self, cfg: &ReportBenchConfig) -> String {
        format!(
            "| measure | figure | target |\n|---|---|---|\n\
             | `GET /v1/campaigns/{{id}}/report`, {} deliveries, {} tracking events | median **{:.0} ms**, p99 {:.0} ms, max {:.0} ms over {} runs | < 300 ms |\n\
             | a recipients page (100 lines) from the middle of the campaign | median {:.1} ms, max {:.1} ms | |\n\
             | the report's CSV, {} lines | {:.1} s | streams |\n\
             | click redirect, open loop at {}/s for {} s while {} outcomes were written | **{:.0} clicks/s**, p50 {:.1} ms, **p99 {:.1} ms**, max {:.1} ms, {} errors | 5,000/s, p99 < 20 ms |\n\
             | clicks of the load found in `tracking_events` afterwards | {} of {} | all |\n",
            self.deliveries,
            self.events,
            percentile(&self.report_ms, 0.5),
            percentile(&self.report_ms, 0.99),
            percentile(&self.report_ms, 1.0),
            self.report_ms.len(),
            percentile(&self.page_ms, 0.5),
            percentile(&self.page_ms, 1.0),
            self.csv_rows,
            self.csv_seconds,
            cfg.click_rate,
            cfg.click_seconds,
            self.outcomes_written,
            self.clicks_per_second,
            percentile(&self.click_ms, 0.5),
            percentile(&self.click_ms, 0.99),
            percentile(&self.click_ms, 1.0),
            self.click_errors,
            self.clicks_recorded,
            self.clicks_sent - self.click_errors,
        )
    }
}
