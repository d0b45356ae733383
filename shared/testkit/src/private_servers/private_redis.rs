use super::free_port::free_port;
use super::scratch_dir::ScratchDir;
use super::server_process::ServerProcess;
use anyhow::{bail, Context};
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A `redis-server` of one test's own, on a free loopback port. Nothing is persisted (the
/// fleet keeps only rate-limit state there, which is allowed to vanish).
pub struct PrivateRedis {
    process: Option<ServerProcess>,
    port: u16,
    dir: ScratchDir,
}

impl PrivateRedis {
    /// Starts the server and waits until it answers PING.
    pub async fn spawn() -> anyhow::Result<Self> {
        let mut redis = Self {
            process: None,
            port: free_port()?,
            dir: ScratchDir::new("redis")?,
        };
        redis.start().await?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts it again on the same port after `stop` or `kill`.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("redis on port {} is already running", self.port);
        }
        let mut cmd = Command::new("redis-server");
        cmd.current_dir(self.dir.path()).args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]);
        let mut process =
            ServerProcess::spawn("redis-server", cmd, &self.dir.path().join("redis.log"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.pong().await {
            process.ensure_running()?;
            if Instant::now() > deadline {
                bail!("redis on port {} did not answer PING", self.port);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.process = Some(process);
        Ok(())
    }

    /// SIGTERM: a clean shutdown.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let mut process = self.process.take().context("redis is not running")?;
        process.stop_with(libc::SIGTERM).await?;
        Ok(())
    }

    /// SIGKILL.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let mut process = self.process.take().context("redis is not running")?;
        process.kill().await?;
        Ok(())
    }

    async fn pong(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut answer = [0u8; 7];
        conn.write_all(b"PING\r\n").await.is_ok()
            && conn.read_exact(&mut answer).await.is_ok()
            && &answer == b"+PONG\r\n"
    }
}
