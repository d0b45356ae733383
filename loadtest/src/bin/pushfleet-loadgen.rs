//! `pushfleet-loadgen`: the standard benchmark. Flags in `loadgen::args::USAGE`; exits
//! non-zero unless every run's audit is clean (nothing missing, nothing twice).

use pushfleet_loadtest::loadgen::{args, run_benchmark};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cfg = args::parse(&argv)?;
    let report = run_benchmark(&cfg).await?;
    println!("{}", report.to_markdown());
    eprintln!(
        "wrote {} and {}",
        cfg.out_dir.join("loadtest.md").display(),
        cfg.out_dir.join("loadtest-rate.svg").display()
    );
    if !report.is_clean() {
        eprintln!("audit failed: see the audit rows above");
        std::process::exit(1);
    }
    Ok(())
}
