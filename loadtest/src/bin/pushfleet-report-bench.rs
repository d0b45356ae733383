//! `pushfleet-report-bench`: the report and click benchmark (see `infra/bench-report.sh`).
//! Prints a markdown table for docs/benchmarks.md.

use pushfleet_loadtest::bench_support::env_or;
use pushfleet_loadtest::report_bench::{run, ReportBenchConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = ReportBenchConfig {
        api_bin: env_or("BENCH_API_BIN", "target/release/pushfleet-api".into()),
        postgres_url: env_or(
            "DATABASE_URL",
            "postgres://pushfleet:pushfleet@127.0.0.1:55432/pushfleet".to_owned(),
        ),
        database: env_or("BENCH_DATABASE", "pf_bench_report".to_owned()),
        api_port: env_or("BENCH_API_PORT", 18380),
        public_port: env_or("BENCH_PUBLIC_PORT", 18381),
        admin_port: env_or("BENCH_ADMIN_PORT", 19380),
        deliveries: env_or("BENCH_DELIVERIES", 1_000_000),
        report_runs: env_or("BENCH_REPORT_RUNS", 30),
        click_rate: env_or("BENCH_CLICK_RATE", 5_000),
        click_seconds: env_or("BENCH_CLICK_SECONDS", 20),
    };
    eprintln!(
        "report bench: {} deliveries, then clicks at {}/s for {} s, through {}",
        cfg.deliveries,
        cfg.click_rate,
        cfg.click_seconds,
        cfg.api_bin.display()
    );
    let report = run(&cfg).await?;
    println!("{}", report.markdown(&cfg));
    Ok(())
}
