//! `pushfleet-audience-bench`: the audiences benchmark (see `infra/bench-audiences.sh`).
//! Prints a markdown table for docs/benchmarks.md, and the preview query's plan.

use pushfleet_loadtest::audience_bench::{run, AudienceBenchConfig};
use pushfleet_loadtest::bench_support::env_or;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = AudienceBenchConfig {
        api_bin: env_or("BENCH_API_BIN", "target/release/pushfleet-api".into()),
        postgres_url: env_or(
            "DATABASE_URL",
            "postgres://pushfleet:pushfleet@127.0.0.1:55432/pushfleet".to_owned(),
        ),
        database: env_or("BENCH_DATABASE", "pf_bench_audiences".to_owned()),
        api_port: env_or("BENCH_API_PORT", 18280),
        admin_port: env_or("BENCH_ADMIN_PORT", 19280),
        people: env_or("BENCH_PEOPLE", 1_000_000),
        warmup_people: env_or("BENCH_WARMUP_PEOPLE", 100_000),
        preview_runs: env_or("BENCH_PREVIEW_RUNS", 7),
    };
    eprintln!(
        "audience bench: importing {} + {} people through {}",
        cfg.warmup_people,
        cfg.people,
        cfg.api_bin.display()
    );
    let report = run(&cfg).await?;
    println!("{}", report.markdown(&cfg));
    println!(
        "Plan of the preview's count query:\n```\n{}```",
        report.explain
    );
    Ok(())
}
