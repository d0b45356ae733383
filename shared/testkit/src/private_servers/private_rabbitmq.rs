use super::free_port::free_port;
use super::scratch_dir::ScratchDir;
use super::server_process::ServerProcess;
use anyhow::{bail, Context};
use lapin::{Connection, ConnectionProperties};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

/// A boot takes about 10 s alone, more on a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A RabbitMQ node of one test's own, started like infra/up.sh does (the real
/// `rabbitmq-server` script, everything set through the environment), with a unique node
/// name, free AMQP and distribution ports, and its Mnesia dir in a scratch dir: durable
/// queues and persistent messages survive `stop` + `start`, and `kill` + `start`.
pub struct PrivateRabbitMq {
    process: Option<ServerProcess>,
    port: u16,
    dist_port: u16,
    node: String,
    bin: PathBuf,
    dir: ScratchDir,
}

impl PrivateRabbitMq {
    /// Boots a node and waits until it accepts AMQP connections.
    pub async fn spawn() -> anyhow::Result<Self> {
        let dir = ScratchDir::new("rmq")?;
        let port = free_port()?;
        let mut dist_port = free_port()?;
        while dist_port == port {
            dist_port = free_port()?;
        }
        write_config(dir.path())?;
        let mut rabbit = Self {
            process: None,
            port,
            dist_port,
            node: format!("pftest-{port}@localhost"),
            bin: bin_dir()?,
            dir,
        };
        rabbit.start().await?;
        Ok(rabbit)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Boots the node (again, after `stop` or `kill`) on the same ports and data.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("rabbitmq {} is already running", self.node);
        }
        let base = self.dir.path();
        let mut cmd = Command::new(self.bin.join("rabbitmq-server"));
        cmd.current_dir(base)
            // The Erlang cookie lives in $HOME.
            .env("HOME", base)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_USE_LONGNAME", "false")
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", base.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", base.join("log"))
            .env("RABBITMQ_PID_FILE", base.join("rabbitmq.pid"))
            .env("RABBITMQ_CONFIG_FILE", base.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                base.join("advanced.config"),
            )
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                base.join("enabled_plugins"),
            )
            .env("RABBITMQ_CONF_ENV_FILE", base.join("rabbitmq-env.conf"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            // The script's own wrapper turns SIGTERM into a clean stop of the node.
            .env_remove("RABBITMQ_ALLOW_INPUT");
        let mut process = ServerProcess::spawn("rabbitmq-server", cmd, &base.join("startup.log"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url();
        loop {
            // The AMQP listener opens last in the boot, so a handshake means ready. Bounded:
            // a handshake with a node still booting can stall.
            let attempt = Connection::connect(&url, ConnectionProperties::default());
            match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(conn)) => {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        conn.close(200, "ready".into()),
                    )
                    .await;
                    break;
                }
                failed => {
                    process.ensure_running()?;
                    if Instant::now() > deadline {
                        let why = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "the handshake stalled".to_owned(),
                        };
                        bail!("rabbitmq {} did not accept AMQP: {why}", self.node);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.process = Some(process);
        Ok(())
    }

    /// A clean stop (SIGTERM to the script, which stops the node): clients are disconnected,
    /// persistent messages in durable queues are kept.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let mut process = self.process.take().context("rabbitmq is not running")?;
        process.stop_with(libc::SIGTERM).await?;
        Ok(())
    }

    /// SIGKILL of the Erlang VM and its script, as in a crash.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let mut process = self.process.take().context("rabbitmq is not running")?;
        process.kill().await?;
        Ok(())
    }
}

fn write_config(base: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(base.join("mnesia")).context("create the mnesia dir")?;
    std::fs::create_dir_all(base.join("log")).context("create the log dir")?;
    let files = [
        (
            "rabbitmq.conf",
            "loopback_users.guest = true\nlog.console = false\nlog.file.level = warning\n\
             disk_free_limit.absolute = 50MB\n",
        ),
        ("enabled_plugins", "[].\n"),
        // Empty, so that /etc/rabbitmq/rabbitmq-env.conf cannot override the environment.
        ("rabbitmq-env.conf", ""),
    ];
    for (name, text) in files {
        std::fs::write(base.join(name), text).with_context(|| format!("write {name}"))?;
    }
    Ok(())
}

/// The real (non-Debian-wrapper) scripts, like infra/lib.sh's pf_rabbit_bindir.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let bin = PathBuf::from("/usr/lib/rabbitmq/bin");
    if bin.join("rabbitmq-server").exists() {
        return Ok(bin);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/rabbitmq/lib")
        .context("RabbitMQ is not installed; run infra/up.sh")?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("sbin"))
        .filter(|d| d.join("rabbitmq-server").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .context("no rabbitmq-server script under /usr/lib/rabbitmq")
}
