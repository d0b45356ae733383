use super::free_port::free_port;
use super::scratch_dir::ScratchDir;
use super::server_process::{log_tail, ServerProcess};
use anyhow::{bail, Context};
use sqlx::{Connection, PgConnection};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL cluster of one test's own (initdb takes 2-3 s), on a free loopback port,
/// with the data in a scratch dir so that a restart keeps every row. Like infra/up.sh it
/// runs as the `postgres` OS user when the test runs as root (postgres refuses root), and
/// its superuser is `pushfleet`/`pushfleet` over TCP. fsync is off: the data must survive a
/// server restart or kill, not a machine crash.
pub struct PrivatePostgres {
    process: Option<ServerProcess>,
    port: u16,
    bin: PathBuf,
    /// Set when running as root.
    run_as: Option<(u32, u32)>,
    dir: ScratchDir,
}

impl PrivatePostgres {
    /// A new cluster, started, accepting connections.
    pub async fn spawn() -> anyhow::Result<Self> {
        let dir = ScratchDir::new("pg")?;
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            let ids = os_user_ids("postgres")?;
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                .context("give the scratch dir to the postgres user")?;
            Some(ids)
        } else {
            None
        };
        let mut pg = Self {
            process: None,
            port: free_port()?,
            bin: bin_dir()?,
            run_as,
            dir,
        };
        pg.initdb().await?;
        pg.start().await?;
        Ok(pg)
    }

    /// A superuser URL for database `name`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://pushfleet:pushfleet@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        // A cwd the postgres user can read (not /root).
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        let pwfile = self.dir.path().join("pwfile");
        std::fs::write(&pwfile, "pushfleet\n").context("write the password file")?;
        let log = self.dir.path().join("initdb.log");
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(self.data())
            .args([
                "--username=pushfleet",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        let mut process = ServerProcess::spawn("initdb", cmd, &log)?;
        let status = process.wait().await?;
        if !status.success() {
            bail!("initdb failed ({status}):\n{}", log_tail(&log));
        }
        Ok(())
    }

    /// Starts the server (again, after `stop` or `kill`) on the same port and data.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("postgres on port {} is already running", self.port);
        }
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data())
            .arg("-k")
            .arg(self.dir.path());
        for setting in [
            format!("port={}", self.port),
            "listen_addresses=127.0.0.1".to_owned(),
            "max_connections=200".to_owned(),
            "shared_buffers=32MB".to_owned(),
            "fsync=off".to_owned(),
            "synchronous_commit=off".to_owned(),
            "full_page_writes=off".to_owned(),
        ] {
            cmd.arg("-c").arg(setting);
        }
        let mut process =
            ServerProcess::spawn("postgres", cmd, &self.dir.path().join("postgres.log"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url("postgres");
        loop {
            match PgConnection::connect(&url).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    break;
                }
                Err(e) => {
                    process.ensure_running()?;
                    if Instant::now() > deadline {
                        bail!(
                            "postgres on port {} does not accept connections: {e}",
                            self.port
                        );
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.process = Some(process);
        Ok(())
    }

    /// A fast shutdown (SIGINT): sessions are disconnected, nothing committed is lost.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let mut process = self.process.take().context("postgres is not running")?;
        process.stop_with(libc::SIGINT).await?;
        Ok(())
    }

    /// SIGKILL of the postmaster and every backend; the next start recovers from the WAL.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let mut process = self.process.take().context("postgres is not running")?;
        process.kill().await?;
        Ok(())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // An immediate shutdown (SIGQUIT) still removes the shared memory segment, which a
        // SIGKILL would leak.
        if let Some(process) = &mut self.process {
            process.terminate_blocking(libc::SIGQUIT, Duration::from_secs(5));
        }
    }
}

/// Newest /usr/lib/postgresql/<version>/bin with initdb, like infra/lib.sh's pf_pg_bindir.
fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PF_PG_BINDIR") {
        return Ok(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (no /usr/lib/postgresql); run infra/up.sh")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no /usr/lib/postgresql/*/bin/initdb")
}

/// (uid, gid) of an OS user, from /etc/passwd.
fn os_user_ids(name: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("read /etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .with_context(|| format!("no OS user {name} (is the postgresql package installed?)"))
}
