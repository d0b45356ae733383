//! Command-line flags of `pushfleet-loadgen`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use pushfleet_domain::Channel;

use super::bench::BenchConfig;

pub const USAGE: &str = "\
pushfleet-loadgen: the fleet end to end against RabbitMQ's own ceiling.

Starts the provider simulator and the services from --bin-dir (N replicas of each sender),
in a fresh database on the Postgres server of DATABASE_URL; AMQP_URL and REDIS_URL as for
the services. Writes loadtest.md and loadtest-rate.svg to --out and prints the markdown.

  --recipients N         full-rate run (100000)
  --channels LIST        email,teams,sms (all three)
  --paced-rate R         deliveries/s offered by the paced latency run, 0 = none (2500)
  --paced-seconds S      length of the paced run's window (30)
  --scale-recipients N   recipients of each scaling run, 0 = none (20000)
  --replicas LIST        replicas per sender of the scaling runs (1,2,4)
  --ceiling-messages N   messages of the RabbitMQ ceiling, 0 = none (the full-rate run's
                         deliveries, at most 300000, over SEND_JOBS_PER_MESSAGE: the same jobs)
  --database NAME        benchmark database, dropped and created (pushfleet_bench)
  --namespace NS         queue and Redis namespace (pfbench)
  --bin-dir DIR          service binaries (the directory of this binary)
  --out DIR              output directory (target/bench)
  --api-port P           (8180)  --admin-port P (9200, and up)
  --sim-port P           (18180) --smtp-port P (12625)
  --sms-callbacks        have the simulator post Twilio status callbacks to the api
  --env KEY=VALUE        extra service environment (repeatable)
";

/// Parses the flags (without the program name).
pub fn parse(args: &[String]) -> anyhow::Result<BenchConfig> {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut cfg = BenchConfig {
        server_database_url: var(
            "DATABASE_URL",
            "postgres://pushfleet:pushfleet@127.0.0.1:55432/pushfleet",
        ),
        database: "pushfleet_bench".into(),
        amqp_url: var("AMQP_URL", "amqp://guest:guest@127.0.0.1:55672/%2f"),
        redis_url: var("REDIS_URL", "redis://127.0.0.1:56379/"),
        namespace: "pfbench".into(),
        bin_dir,
        out_dir: PathBuf::from("target/bench"),
        recipients: 100_000,
        channels: Channel::ALL.to_vec(),
        scale_recipients: 20_000,
        replicas: vec![1, 2, 4],
        paced_rate: 2_500.0,
        paced_seconds: 30,
        ceiling_messages: usize::MAX,
        api_port: 8180,
        admin_port_base: 9200,
        sim_http_port: 18180,
        sim_smtp_port: 12625,
        sms_callbacks: false,
        env: BenchConfig::default_env(),
        command: std::iter::once("pushfleet-loadgen".to_owned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--sms-callbacks" {
            cfg.sms_callbacks = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            bail!("{USAGE}");
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let num = |v: &str| -> anyhow::Result<usize> {
            v.replace('_', "")
                .parse()
                .with_context(|| format!("{flag} {v}: not a number"))
        };
        match flag.as_str() {
            "--recipients" => cfg.recipients = num(value)?,
            "--channels" => {
                cfg.channels = value
                    .split(',')
                    .map(|c| c.trim().parse::<Channel>())
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--channels {value}"))?
            }
            "--paced-rate" => cfg.paced_rate = num(value)? as f64,
            "--paced-seconds" => cfg.paced_seconds = num(value)? as u64,
            "--scale-recipients" => cfg.scale_recipients = num(value)?,
            "--replicas" => {
                cfg.replicas = value
                    .split(',')
                    .map(|r| num(r.trim()))
                    .collect::<Result<_, _>>()?
            }
            "--ceiling-messages" => cfg.ceiling_messages = num(value)?,
            "--database" => cfg.database = value.clone(),
            "--namespace" => cfg.namespace = value.clone(),
            "--bin-dir" => cfg.bin_dir = PathBuf::from(value),
            "--out" => cfg.out_dir = PathBuf::from(value),
            "--api-port" => cfg.api_port = num(value)? as u16,
            "--admin-port" => cfg.admin_port_base = num(value)? as u16,
            "--sim-port" => cfg.sim_http_port = num(value)? as u16,
            "--smtp-port" => cfg.sim_smtp_port = num(value)? as u16,
            "--env" => {
                let (k, v) = value
                    .split_once('=')
                    .with_context(|| format!("--env {value}: expected KEY=VALUE"))?;
                cfg.env.retain(|(key, _)| key != k);
                cfg.env.push((k.to_owned(), v.to_owned()));
            }
            other => bail!("unknown flag {other}\n\n{USAGE}"),
        }
    }
    if cfg.channels.is_empty() || cfg.recipients == 0 {
        bail!("--recipients and --channels must not be empty");
    }
    if cfg.replicas.contains(&0) {
        bail!("--replicas: at least one replica per run");
    }
    if cfg.ceiling_messages == usize::MAX {
        let jobs = (cfg.recipients * cfg.channels.len()).min(300_000);
        cfg.ceiling_messages = jobs.div_ceil(cfg.jobs_per_message()?);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_are_the_standard_benchmark() {
        let cfg = parse(&[]).expect("defaults");
        assert_eq!(cfg.recipients, 100_000);
        assert_eq!(cfg.channels.len(), 3);
        assert_eq!(cfg.replicas, vec![1, 2, 4]);
        // 300,000 deliveries in messages of 50 jobs.
        assert_eq!(cfg.ceiling_messages, 6_000);
        assert_eq!(cfg.jobs_per_message().ok(), Some(50));
        let one = parse(&args("--env SEND_JOBS_PER_MESSAGE=1")).expect("flags");
        assert_eq!(one.ceiling_messages, 300_000);
        assert!(parse(&args("--env SEND_JOBS_PER_MESSAGE=many")).is_err());
    }

    #[test]
    fn flags_override_and_env_replaces() {
        let cfg = parse(&args(
            "--recipients 2_000 --channels sms,email --replicas 1,3 --env RATE_LIMIT_BURST=5 --sms-callbacks",
        ))
        .expect("flags");
        assert_eq!(cfg.recipients, 2_000);
        assert_eq!(cfg.channels, vec![Channel::Sms, Channel::Email]);
        assert_eq!(cfg.replicas, vec![1, 3]);
        assert_eq!(cfg.ceiling_messages, 80);
        assert!(cfg.sms_callbacks);
        let burst: Vec<_> = cfg
            .env
            .iter()
            .filter(|(k, _)| k == "RATE_LIMIT_BURST")
            .collect();
        assert_eq!(
            burst,
            vec![&("RATE_LIMIT_BURST".to_owned(), "5".to_owned())]
        );
        assert!(parse(&args("--recipients")).is_err());
        assert!(parse(&args("--bogus 1")).is_err());
        assert!(parse(&args("--channels fax")).is_err());
    }
}
