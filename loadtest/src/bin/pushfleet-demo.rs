//! `pushfleet-demo`: runs the quick-start campaign against a running fleet and prints a
//! summary whose last line is `delivered N/M`. Exits non-zero unless every message arrived
//! exactly once.

use pushfleet_loadtest::demo::{run_demo, DemoConfig};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = DemoConfig::from_env()?;
    eprintln!(
        "demo: {} recipients x 3 channels through {}",
        cfg.recipients, cfg.api_url
    );
    // Redraw one line on a terminal; in a log, a line every two seconds.
    let tty = std::io::stderr().is_terminal();
    let mut last_line = Instant::now() - Duration::from_secs(10);
    let report = run_demo(&cfg, |view| {
        let done = view["status"] == "completed";
        if !tty && !done && last_line.elapsed() < Duration::from_secs(2) {
            return;
        }
        last_line = Instant::now();
        let p = &view["progress"]["by_state"];
        eprint!(
            "{}  {:<10} sent {:>6}  pending {:>6}  retrying {:>4}  failed {:>4}{}",
            if tty { "\r" } else { "" },
            view["status"].as_str().unwrap_or("?"),
            p["sent"].as_u64().unwrap_or(0),
            p["pending"].as_u64().unwrap_or(0),
            p["retrying"].as_u64().unwrap_or(0),
            p["failed"].as_u64().unwrap_or(0) + p["dead"].as_u64().unwrap_or(0),
            if tty { "" } else { "\n" },
        );
        let _ = std::io::stderr().flush();
    })
    .await?;
    if tty {
        eprintln!();
    }
    println!("{}", report.render());
    if !report.is_complete() {
        std::process::exit(1);
    }
    Ok(())
}
