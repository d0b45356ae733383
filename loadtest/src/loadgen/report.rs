//! The benchmark's markdown (ready for `docs/benchmarks.md`) and its plot.

use std::fmt::Write as _;

use super::campaign_run::RunResult;
use super::ceiling::CeilingResult;
use super::plot::{deliveries_per_second_svg, Series};

pub struct Report {
    /// The command that produced the figures.
    pub command: String,
    /// From [`machine_summary`].
    pub machine: String,
    /// How the fleet and the simulator were set up, one bullet each.
    pub settings: Vec<String>,
    pub ceiling: Option<CeilingResult>,
    pub main: RunResult,
    pub paced: Option<RunResult>,
    pub scaling: Vec<RunResult>,
    /// File name of the plot, linked from the markdown.
    pub plot_file: Option<String>,
}

/// CPUs, CPU model and memory of this machine.
pub fn machine_summary() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cpus} CPUs ({model}), {mem_gib:.1} GiB RAM")
}

/// 12345.6 -> "12,346"
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn channels(r: &RunResult) -> String {
    r.channels
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn audit_line(r: &RunResult) -> String {
    let a = &r.analysis.audit;
    format!(
        "expected {}, delivered {}, failed {}, duplicates {}, missing {}{}",
        thousands(a.expected as f64),
        thousands(a.delivered as f64),
        thousands(a.failed as f64),
        a.duplicates,
        a.missing,
        if a.unrecorded > 0 {
            format!(", received but not recorded {}", a.unrecorded)
        } else {
            String::new()
        }
    )
}

impl Report {
    /// Every run's audit is clean: nothing missing, nothing twice.
    pub fn is_clean(&self) -> bool {
        std::iter::once(&self.main)
            .chain(&self.paced)
            .chain(&self.scaling)
            .all(|r| r.analysis.audit.is_clean())
    }

    /// Deliveries per second over time: the full-rate run, and the paced run if any.
    pub fn plot_svg(&self) -> String {
        let main_label = format!(
            "full rate, {} deliveries",
            thousands(self.main.deliveries() as f64)
        );
        let paced_label = self
            .paced
            .as_ref()
            .map(|p| format!("paced, {} deliveries", thousands(p.deliveries() as f64)));
        let mut series = vec![Series {
            label: &main_label,
            points: &self.main.analysis.per_second,
        }];
        if let (Some(p), Some(label)) = (&self.paced, &paced_label) {
            series.push(Series {
                label,
                points: &p.analysis.per_second,
            });
        }
        deliveries_per_second_svg(
            "pushfleet: deliveries per second (simulator receipts)",
            &series,
        )
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.main;
        let _ = writeln!(md, "## Load test\n");
        let _ = writeln!(
            md,
            "Produced by `{}` on {} UTC.\n",
            self.command,
            chrono::Utc::now().format("%Y-%m-%d %H:%M")
        );
        let _ = writeln!(
            md,
            "Machine: {}; Postgres, RabbitMQ, Redis, the six services and the provider \
             simulator all on it.\n",
            self.machine
        );
        for s in &self.settings {
            let _ = writeln!(md, "- {s}");
        }
        let _ = writeln!(
            md,
            "- Due time: a delivery's `due_at` when it has one (a spread campaign), else the \
             delivery row's `created_at`, the start of the evaluation transaction that wrote it \
             (the row becomes publishable when that transaction commits). Receipt: the moment \
             the simulator accepted the provider call. Both clocks are this machine's.\n\
             - Sustained rate: deliveries between the 5th and the 95th percentile of receipt \
             times, divided by that time (ramp-up and tail excluded).\n"
        );

        let _ = writeln!(
            md,
            "### Full rate: {} recipients x {} ({} deliveries), {} replica(s) per sender\n",
            thousands(m.recipients as f64),
            channels(m),
            thousands(m.deliveries() as f64),
            m.replicas
        );
        let _ = writeln!(md, "| figure | value |\n|---|---|");
        let _ = writeln!(
            md,
            "| wall time, campaign created to completed | {:.1} s |",
            m.wall_seconds
        );
        let _ = writeln!(
            md,
            "| deliveries/s, sustained | {} |",
            thousands(m.analysis.sustained_per_s)
        );
        let _ = writeln!(
            md,
            "| deliveries/s, whole run (deliveries / wall time) | {} |",
            thousands(m.deliveries() as f64 / m.wall_seconds.max(1e-9))
        );
        if let Some(c) = &self.ceiling {
            let _ = writeln!(
                md,
                "| RabbitMQ ceiling: {} messages of {} bytes ({} send job(s) each) over {} \
                 queue(s), persistent, confirms, manual acks | {} msg/s = {} jobs/s |",
                thousands(c.messages as f64),
                c.payload_bytes,
                c.jobs_per_message,
                c.queues,
                thousands(c.per_second),
                thousands(c.jobs_per_second())
            );
            let _ = writeln!(
                md,
                "| fleet / ceiling (deliveries/s / jobs/s) | {:.2} |",
                m.analysis.sustained_per_s / c.jobs_per_second().max(1e-9)
            );
        }
        let l = &m.analysis.latency;
        let _ = writeln!(
            md,
            "| due to receipt, p50 / p95 / p99 / max | {:.0} / {:.0} / {:.0} / {:.0} ms |",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
        let _ = writeln!(md, "| audit | {} |", audit_line(m));
        let _ = writeln!(
            md,
            "| load average (1 min) at start | {:.2} |\n",
            m.load_average
        );

        let _ = writeln!(
            md,
            "| process | CPU s | CPU % of wall time | peak RSS (MiB) |\n|---|---|---|---|"
        );
        for p in &m.processes {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.0} % | {:.1} |",
                p.name,
                p.cpu_seconds,
                100.0 * p.cpu_seconds / m.wall_seconds.max(1e-9),
                p.peak_rss_mib
            );
        }
        md.push('\n');
        if !m.servers.is_empty() {
            let servers: Vec<String> = m
                .servers
                .iter()
                .map(|(name, cpu)| format!("{name} {cpu:.1} s"))
                .collect();
            let _ = writeln!(
                md,
                "Servers' CPU over the same time (all their processes, including any other \
                 use of them): {}.\n",
                servers.join(", ")
            );
        }
        if let Some(file) = &self.plot_file {
            let _ = writeln!(md, "![deliveries per second over time]({file})\n");
        }

        if let Some(p) = &self.paced {
            let window = p
                .spread
                .map(|w| (w.to - w.from).num_milliseconds() as f64 / 1000.0)
                .unwrap_or(0.0);
            let rate = p.deliveries() as f64 / window.max(1e-9);
            let l = &p.analysis.latency;
            let _ = writeln!(
                md,
                "### Paced: {} deliveries due uniformly over {:.0} s ({} deliveries/s offered)\n",
                thousands(p.deliveries() as f64),
                window,
                thousands(rate)
            );
            let _ = writeln!(
                md,
                "A campaign with a send window of working hours from now to {window:.0} s \
                 later (UTC): the evaluator gives each delivery a due time drawn uniformly over \
                 it, the scheduler publishes each one when due.\n"
            );
            let _ = writeln!(md, "| figure | value |\n|---|---|");
            let _ = writeln!(
                md,
                "| due to receipt, p50 / p95 / p99 / max | {:.0} / {:.0} / {:.0} / {:.0} ms |",
                l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
            let _ = writeln!(
                md,
                "| deliveries/s, sustained | {} |",
                thousands(p.analysis.sustained_per_s)
            );
            let _ = writeln!(md, "| audit | {} |", audit_line(p));
            let _ = writeln!(
                md,
                "| load average (1 min) at start | {:.2} |\n",
                p.load_average
            );
        }

        if !self.scaling.is_empty() {
            let s0 = &self.scaling[0];
            let _ = writeln!(
                md,
                "### Scaling: {} recipients x {} ({} deliveries), N replicas of each sender\n",
                thousands(s0.recipients as f64),
                channels(s0),
                thousands(s0.deliveries() as f64)
            );
            let _ = writeln!(
                md,
                "| replicas per sender | wall time (s) | deliveries/s sustained | fleet / ceiling \
                 | p99 due to receipt (ms) | CPU s: evaluator / senders (all replicas) | peak \
                 RSS MiB: evaluator / largest sender | audit |\n|---|---|---|---|---|---|---|---|"
            );
            for r in &self.scaling {
                let roles = r.by_role();
                let (ev_cpu, ev_rss) = roles.get("evaluator").copied().unwrap_or_default();
                let (mut s_cpu, mut s_rss) = (0.0, 0.0f64);
                for (role, (cpu, rss)) in &roles {
                    if role.ends_with("-sender") {
                        s_cpu += cpu;
                        s_rss = s_rss.max(*rss);
                    }
                }
                let ratio = self.ceiling.as_ref().map_or("-".to_owned(), |c| {
                    format!(
                        "{:.2}",
                        r.analysis.sustained_per_s / c.jobs_per_second().max(1e-9)
                    )
                });
                let _ = writeln!(
                    md,
                    "| {} | {:.1} | {} | {} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {} |",
                    r.replicas,
                    r.wall_seconds,
                    thousands(r.analysis.sustained_per_s),
                    ratio,
                    r.analysis.latency.p99_ms,
                    ev_cpu,
                    s_cpu,
                    ev_rss,
                    s_rss,
                    audit_line(r)
                );
            }
            md.push('\n');
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-4200.0), "-4,200");
    }
}
