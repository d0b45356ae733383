//! The standard benchmark: the broker's ceiling, a full-rate campaign, a paced campaign for
//! latency, and the scaling runs, each on a freshly started fleet in a fresh database.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{DurationRound, Utc};
use pushfleet_domain::Channel;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::api_client::{ApiClient, SpreadWindow};
use super::campaign_run::{run_campaign, CampaignSpec, RunResult, Target};
use super::ceiling::{self, CeilingSpec};
use super::fleet::{Fleet, FleetSpec};
use super::progress::ProgressBar;
use super::report::{machine_summary, Report};
use crate::bench_support::database_url;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Any database on the Postgres server, used to create the benchmark's own.
    pub server_database_url: String,
    /// Dropped and created again at the start.
    pub database: String,
    pub amqp_url: String,
    pub redis_url: String,
    pub namespace: String,
    pub bin_dir: PathBuf,
    pub out_dir: PathBuf,
    pub recipients: usize,
    pub channels: Vec<Channel>,
    /// Recipients of each scaling run (0: no scaling runs).
    pub scale_recipients: usize,
    pub replicas: Vec<usize>,
    /// Deliveries per second offered by the paced run (0: no paced run).
    pub paced_rate: f64,
    pub paced_seconds: u64,
    pub ceiling_messages: usize,
    pub api_port: u16,
    pub admin_port_base: u16,
    pub sim_http_port: u16,
    pub sim_smtp_port: u16,
    pub sms_callbacks: bool,
    /// Environment for every service (quotas, tuning), on top of the benchmark's defaults.
    pub env: Vec<(String, String)>,
    /// The command line, quoted in the report.
    pub command: String,
}

impl BenchConfig {
    /// Quotas raised far above the run's rate: the real ones (Teams 50 req/s per app, a
    /// Twilio long code 1 segment/s) would make the run take hours. The audience goes to
    /// the api as one list of ids (about 40 bytes each): a 1,000,000-recipient run needs a
    /// body larger than the api's 16 MiB default.
    pub fn default_env() -> Vec<(String, String)> {
        [
            ("RATE_LIMIT_PER_SECOND", "100000"),
            ("RATE_LIMIT_BURST", "1000"),
            ("SCHEDULER_TICK_MS", "50"),
            ("API_MAX_BODY_BYTES", "268435456"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// A service setting as the fleet gets it: from `env`, else the services' default.
    fn setting<T: std::str::FromStr>(&self, key: &str, default: T) -> anyhow::Result<T> {
        match self.env.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) => v
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--env {key}={v}: not a number")),
            None => Ok(default),
        }
    }

    /// `SEND_JOBS_PER_MESSAGE` of the fleet's evaluator and scheduler.
    pub fn jobs_per_message(&self) -> anyhow::Result<usize> {
        Ok(self
            .setting(
                "SEND_JOBS_PER_MESSAGE",
                pushfleet_domain::DEFAULT_SEND_JOBS_PER_MESSAGE,
            )?
            .max(1))
    }

    fn fleet(&self, replicas: usize) -> FleetSpec {
        FleetSpec {
            bin_dir: self.bin_dir.clone(),
            log_dir: self.out_dir.join("logs"),
            database_url: database_url(&self.server_database_url, &self.database),
            amqp_url: self.amqp_url.clone(),
            redis_url: self.redis_url.clone(),
            namespace: self.namespace.clone(),
            api_port: self.api_port,
            admin_port_base: self.admin_port_base,
            sim_http_port: self.sim_http_port,
            sim_smtp_port: self.sim_smtp_port,
            channels: self.channels.clone(),
            replicas,
            env: self.env.clone(),
            sms_callbacks: self.sms_callbacks,
        }
    }

    fn paced_recipients(&self) -> usize {
        if self.paced_rate <= 0.0 || self.channels.is_empty() {
            return 0;
        }
        (self.paced_rate * self.paced_seconds as f64 / self.channels.len() as f64).round() as usize
    }

    fn settings(&self) -> Vec<String> {
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            "Provider simulator with its rate limits off (`SIM_RATE_LIMITS=off`) and no added \
             latency; the real limits (Teams 50 requests/s per app, Twilio 1 segment/s per \
             long code) would make 100,000 messages take hours."
                .to_owned(),
            format!(
                "Service environment: `{}`; every other setting at its default.",
                env.join(" ")
            ),
            "Persistent messages, publisher confirms and manual acks; every outcome written \
             to Postgres; logs at `warn`."
                .to_owned(),
            format!(
                "Send jobs travel up to {} per message (`SEND_JOBS_PER_MESSAGE`): the broker's \
                 ceiling is measured with messages of that many jobs, and compared in \
                 deliveries (messages/s x jobs per message).",
                self.jobs_per_message().unwrap_or(1)
            ),
            format!(
                "Twilio status callbacks to the api: {}.",
                if self.sms_callbacks { "on" } else { "off" }
            ),
            "Each run starts a fresh fleet (simulator and services) on the same database; \
             CPU is counted from campaign creation to completion, peak RSS is `VmHWM` reset at \
             the start of the run (and RSS sampled every 200 ms)."
                .to_owned(),
        ]
    }
}

async fn recreate_database(cfg: &BenchConfig) -> anyhow::Result<()> {
    if !cfg
        .database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        anyhow::bail!(
            "database name {:?}: letters, digits and _ only",
            cfg.database
        );
    }
    let server = PgPoolOptions::new()
        .max_connections(1)
        .connect(&cfg.server_database_url)
        .await
        .context("connecting to Postgres")?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        cfg.database
    ))
    .execute(&server)
    .await?;
    sqlx::query(&format!("CREATE DATABASE {}", cfg.database))
        .execute(&server)
        .await?;
    server.close().await;
    Ok(())
}

async fn connect(cfg: &BenchConfig) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url(&cfg.server_database_url, &cfg.database))
        .await?)
}

/// Runs everything and returns the report (also written to `out_dir`).
pub async fn run_benchmark(cfg: &BenchConfig) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    recreate_database(cfg).await?;

    let ceiling_result = if cfg.ceiling_messages > 0 {
        eprintln!(
            "ceiling: {} messages through RabbitMQ, persistent, confirms, manual acks",
            cfg.ceiling_messages
        );
        let jobs_per_message = cfg.jobs_per_message()?;
        let c = ceiling::measure(&CeilingSpec {
            amqp_url: cfg.amqp_url.clone(),
            namespace: cfg.namespace.clone(),
            queues: cfg.channels.len().max(1),
            messages: cfg.ceiling_messages,
            payload: ceiling::sample_send_message(jobs_per_message)?,
            jobs_per_message,
            // The evaluator's and the senders' defaults, or what --env sets.
            confirm_window: cfg.setting("CONFIRM_WINDOW", 256)?,
            prefetch: cfg.setting("SENDER_PREFETCH", 16)?,
        })
        .await?;
        eprintln!(
            "ceiling: {:.0} msg/s x {jobs_per_message} jobs",
            c.per_second
        );
        Some(c)
    } else {
        None
    };

    let people_needed = cfg
        .recipients
        .max(cfg.scale_recipients)
        .max(cfg.paced_recipients());
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let db = connect(cfg).await?;

    // Full rate; the people are created on this first fleet and kept for the other runs.
    let spec = cfg.fleet(1);
    let fleet = Fleet::start(&spec).await?;
    let api = ApiClient::new(spec.api_url(), &fleet.api_key)?;
    let mut bar = ProgressBar::new("people", people_needed as u64);
    let people = api
        .create_people(people_needed, &tag, &spec.sim_url(), |n| {
            bar.update(n as u64)
        })
        .await;
    bar.finish(people.as_ref().map_or(0, |p| p.len() as u64));
    let people = people?;
    let main = measured(cfg, &spec, fleet, &db, &people[..cfg.recipients], 1, None).await?;

    let mut paced = None;
    let paced_n = cfg.paced_recipients();
    if paced_n > 0 {
        let spec = cfg.fleet(1);
        let fleet = Fleet::start(&spec).await?;
        let from = (Utc::now() + chrono::Duration::seconds(5))
            .duration_trunc(chrono::Duration::seconds(1))?
            + chrono::Duration::seconds(1);
        let to = from + chrono::Duration::seconds(cfg.paced_seconds as i64);
        let window = SpreadWindow { from, to };
        paced = Some(measured(cfg, &spec, fleet, &db, &people[..paced_n], 1, Some(window)).await?);
    }

    let mut scaling = Vec::new();
    if cfg.scale_recipients > 0 {
        for &replicas in &cfg.replicas {
            let spec = cfg.fleet(replicas);
            let fleet = Fleet::start(&spec).await?;
            scaling.push(
                measured(
                    cfg,
                    &spec,
                    fleet,
                    &db,
                    &people[..cfg.scale_recipients],
                    replicas,
                    None,
                )
                .await?,
            );
        }
    }

    let report = Report {
        command: cfg.command.clone(),
        machine: machine_summary(),
        settings: cfg.settings(),
        ceiling: ceiling_result,
        main,
        paced,
        scaling,
        plot_file: Some("loadtest-rate.svg".to_owned()),
    };
    std::fs::write(cfg.out_dir.join("loadtest-rate.svg"), report.plot_svg())?;
    std::fs::write(cfg.out_dir.join("loadtest.md"), report.to_markdown())?;
    Ok(report)
}

/// One campaign on a running fleet, which is stopped afterwards whatever happened.
async fn measured(
    cfg: &BenchConfig,
    spec: &FleetSpec,
    fleet: Fleet,
    db: &PgPool,
    people: &[String],
    replicas: usize,
    spread: Option<SpreadWindow>,
) -> anyhow::Result<RunResult> {
    let api = ApiClient::new(spec.api_url(), &fleet.api_key)?;
    let result = async {
        let template_id = api.create_template().await?;
        let target = Target {
            api: api.clone(),
            sim_url: spec.sim_url(),
            db: db.clone(),
            processes: fleet.pids(),
            template_id,
            stall_timeout: Duration::from_secs(120),
        };
        let label = match (spread.is_some(), replicas) {
            (true, _) => "paced".to_owned(),
            (false, 1) if people.len() == cfg.recipients => "full rate".to_owned(),
            (false, r) => format!("{r} replica(s)"),
        };
        run_campaign(
            &target,
            &CampaignSpec {
                label,
                person_ids: people.to_vec(),
                channels: cfg.channels.clone(),
                replicas,
                spread,
            },
        )
        .await
    }
    .await;
    fleet.stop().await;
    result
}
