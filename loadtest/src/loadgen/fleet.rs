//! Starts the provider simulator and the services as child processes (as `infra/fleet.sh`
//! does), with N replicas of each sender, so the load test knows every pid; stops them with
//! SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use pushfleet_domain::Channel;

/// Where a fleet listens and what it talks to.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// Directory holding `provider-sim` and the `pushfleet-*` binaries.
    pub bin_dir: PathBuf,
    /// Where each process's stdout/stderr goes (`<name>.log`).
    pub log_dir: PathBuf,
    pub database_url: String,
    pub amqp_url: String,
    pub redis_url: String,
    pub namespace: String,
    pub api_port: u16,
    /// Admin ports are `admin_port_base + k`.
    pub admin_port_base: u16,
    pub sim_http_port: u16,
    pub sim_smtp_port: u16,
    pub channels: Vec<Channel>,
    /// Replicas of each sender.
    pub replicas: usize,
    /// Extra environment for every service (quotas, tuning).
    pub env: Vec<(String, String)>,
    /// Point the SMS sender's status callbacks at the api (Twilio's real behaviour: two
    /// callbacks per message).
    pub sms_callbacks: bool,
}

impl FleetSpec {
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn sim_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sim_http_port)
    }
}

/// name, role, binary, extra environment.
type ServiceEntry = (String, String, String, Vec<(String, String)>);

/// One running process of the fleet.
pub struct FleetProcess {
    /// `api`, `evaluator`, `email-sender#2`, ...
    pub name: String,
    /// The role, shared by replicas: `email-sender`.
    pub role: String,
    pub pid: u32,
    child: Child,
    ready_url: String,
}

pub struct Fleet {
    pub processes: Vec<FleetProcess>,
    /// An admin key for this fleet's api, made at start.
    pub api_key: String,
}

impl Fleet {
    /// Applies the schema (`pushfleet-api migrate`), starts the simulator, then the services,
    /// and waits until each answers its health or readiness check.
    pub async fn start(spec: &FleetSpec) -> anyhow::Result<Fleet> {
        std::fs::create_dir_all(&spec.log_dir)
            .with_context(|| format!("creating {}", spec.log_dir.display()))?;
        migrate(spec).await?;
        let api_key = crate::api_key::create_admin_key(
            &binary(&spec.bin_dir, "pushfleet-api")?,
            &spec.database_url,
            "loadgen",
        )
        .await?;

        let mut fleet = Fleet {
            processes: Vec::new(),
            api_key,
        };
        let sim_env = vec![
            (
                "SIM_HTTP_ADDR".to_owned(),
                format!("127.0.0.1:{}", spec.sim_http_port),
            ),
            (
                "SIM_SMTP_ADDR".to_owned(),
                format!("127.0.0.1:{}", spec.sim_smtp_port),
            ),
            ("SIM_RATE_LIMITS".to_owned(), "off".to_owned()),
            ("SIM_RECORD_CONTENT".to_owned(), "off".to_owned()),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        let sim_ready = format!("{}/healthz", spec.sim_url());
        fleet
            .spawn(
                spec,
                "provider-sim",
                "provider-sim",
                "provider-sim",
                sim_env,
                sim_ready,
            )
            .await?;

        let mut admin = spec.admin_port_base;
        let mut services: Vec<ServiceEntry> = vec![
            (
                "api".into(),
                "api".into(),
                "pushfleet-api".into(),
                vec![
                    ("API_ADDR".into(), format!("127.0.0.1:{}", spec.api_port)),
                    // The status callbacks come to the admin listener here (API_PUBLIC_URL).
                    ("PUBLIC_ADDR".into(), "127.0.0.1:0".into()),
                    ("API_PUBLIC_URL".into(), spec.api_url()),
                ],
            ),
            (
                "scheduler".into(),
                "scheduler".into(),
                "pushfleet-scheduler".into(),
                vec![],
            ),
            (
                "evaluator".into(),
                "evaluator".into(),
                "pushfleet-evaluator".into(),
                vec![],
            ),
        ];
        let sim = spec.sim_url();
        for channel in &spec.channels {
            let role = format!("{channel}-sender");
            let extra: Vec<(String, String)> = match channel {
                Channel::Email => vec![
                    ("SMTP_HOST".into(), "127.0.0.1".into()),
                    ("SMTP_PORT".into(), spec.sim_smtp_port.to_string()),
                ],
                Channel::Teams => vec![
                    (
                        "TEAMS_TOKEN_URL".into(),
                        format!("{sim}/botframework.com/oauth2/v2.0/token"),
                    ),
                    ("GRAPH_API_BASE".into(), sim.clone()),
                ],
                Channel::Sms => {
                    let mut v = vec![("TWILIO_API_BASE".into(), sim.clone())];
                    if spec.sms_callbacks {
                        v.push((
                            "TWILIO_STATUS_CALLBACK".into(),
                            format!("{}/v1/webhooks/twilio/status", spec.api_url()),
                        ));
                    }
                    v
                }
            };
            for i in 1..=spec.replicas {
                services.push((
                    format!("{role}#{i}"),
                    role.clone(),
                    format!("pushfleet-{role}"),
                    extra.clone(),
                ));
            }
        }
        for (name, role, bin, extra) in services {
            let mut env = vec![
                ("DATABASE_URL".to_owned(), spec.database_url.clone()),
                ("AMQP_URL".to_owned(), spec.amqp_url.clone()),
                ("REDIS_URL".to_owned(), spec.redis_url.clone()),
                ("PUSHFLEET_NAMESPACE".to_owned(), spec.namespace.clone()),
                ("ADMIN_ADDR".to_owned(), format!("127.0.0.1:{admin}")),
                ("RUST_LOG".to_owned(), "warn".to_owned()),
            ];
            env.extend(spec.env.iter().cloned());
            env.extend(extra);
            let ready = format!("http://127.0.0.1:{admin}/readyz");
            admin += 1;
            fleet.spawn(spec, &name, &role, &bin, env, ready).await?;
        }
        fleet.wait_ready(Duration::from_secs(60)).await?;
        Ok(fleet)
    }

    async fn spawn(
        &mut self,
        spec: &FleetSpec,
        name: &str,
        role: &str,
        bin: &str,
        env: Vec<(String, String)>,
        ready_url: String,
    ) -> anyhow::Result<()> {
        let path = binary(&spec.bin_dir, bin)?;
        let log_name = format!("{}.log", name.replace('#', "-"));
        let log = std::fs::File::create(spec.log_dir.join(&log_name))
            .with_context(|| format!("creating {log_name}"))?;
        let child = Command::new(&path)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let pid = child.id().context("child exited at once")?;
        self.processes.push(FleetProcess {
            name: name.to_owned(),
            role: role.to_owned(),
            pid,
            child,
            ready_url,
        });
        Ok(())
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + timeout;
        for p in &mut self.processes {
            loop {
                if let Some(status) = p.child.try_wait()? {
                    bail!("{} exited during start ({status}); see its log", p.name);
                }
                let ok =
                    matches!(http.get(&p.ready_url).send().await, Ok(r) if r.status().is_success());
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{} not ready at {} after {timeout:?}", p.name, p.ready_url);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// `(name, role, pid)` of every process.
    pub fn pids(&self) -> Vec<(String, String, u32)> {
        self.processes
            .iter()
            .map(|p| (p.name.clone(), p.role.clone(), p.pid))
            .collect()
    }

    /// SIGTERM in reverse start order (senders drain before the api and the simulator), then
    /// SIGKILL for any process still running after 30 s.
    pub async fn stop(mut self) {
        while let Some(mut p) = self.processes.pop() {
            // The pid is our own child's, still unreaped, so it cannot have been reused.
            let pid = i32::try_from(p.pid).unwrap_or(0);
            // SAFETY: kill(2) with a valid signal number; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            match tokio::time::timeout(Duration::from_secs(30), p.child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(name = %p.name, "still running 30 s after SIGTERM; killing");
                    let _ = p.child.kill().await;
                }
            }
        }
    }
}

fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build the fleet first (cargo build --release --bins)",
            path.display()
        );
    }
    Ok(path)
}

/// `pushfleet-api migrate` against the benchmark database.
async fn migrate(spec: &FleetSpec) -> anyhow::Result<()> {
    let path = binary(&spec.bin_dir, "pushfleet-api")?;
    let out = Command::new(&path)
        .arg("migrate")
        .env("DATABASE_URL", &spec.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .context("running pushfleet-api migrate")?;
    if !out.status.success() {
        bail!(
            "pushfleet-api migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
