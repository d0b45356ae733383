use anyhow::{bail, Context};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// A server process started by a test, in its own process group so that a kill reaches
/// every process it forked (Postgres backends, RabbitMQ's Erlang VM behind its wrapper
/// script). Its output goes to `log`. Dropped while running, the group is killed.
pub(crate) struct ServerProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// Set once the child is reaped: from then on its pid and group id may belong to
    /// someone else, so nothing is signalled any more.
    status: Option<ExitStatus>,
}

/// How long a graceful stop may take before the test fails.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl ServerProcess {
    pub(crate) fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let err = out.try_clone().context("duplicate the log file")?;
        let child = std::os::unix::process::CommandExt::process_group(&mut cmd, 0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {name}: {cmd:?}"))?;
        Ok(Self {
            name,
            child,
            log: log.to_owned(),
            status: None,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while running.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Fails (with the end of the log) if the process has exited: a server that dies while
    /// starting should fail its test at once, not at the readiness deadline.
    pub(crate) fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited while starting ({status}); end of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            ),
        }
    }

    /// Sends `signal` to the process (not its group: servers stop their children
    /// themselves) and waits for it to exit.
    pub(crate) async fn stop_with(&mut self, signal: i32) -> anyhow::Result<ExitStatus> {
        if self.exited().is_none() {
            signal_pid(self.pid(), signal);
        }
        self.wait_exit().await
    }

    /// SIGKILL to the whole group: no chance to clean up, as in a crash or an OOM kill.
    pub(crate) async fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        if self.exited().is_none() {
            signal_group(self.pid(), libc::SIGKILL);
        }
        self.wait_exit().await
    }

    /// Waits for a process that ends by itself (e.g. initdb).
    pub(crate) async fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        self.wait_exit().await
    }

    async fn wait_exit(&mut self) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                // Still unreaped, so the group id is still ours.
                signal_group(self.pid(), libc::SIGKILL);
                bail!("{} did not stop within {STOP_TIMEOUT:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// For `Drop`: `signal` to the leader, up to `grace` for it to exit, then SIGKILL to the
    /// group. Blocking, as a destructor cannot await.
    pub(crate) fn terminate_blocking(&mut self, signal: i32, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        signal_pid(self.pid(), signal);
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_blocking();
    }

    fn kill_blocking(&mut self) {
        if self.exited().is_none() {
            signal_group(self.pid(), libc::SIGKILL);
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_blocking();
    }
}

fn signal_pid(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions. Callers only signal a child not
    // yet reaped, whose pid cannot have been reused.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

fn signal_group(pgid: u32, signal: i32) {
    // SAFETY: as above; the group was created for this child (`process_group(0)`), and an
    // unreaped leader keeps its id from being reused.
    unsafe {
        libc::killpg(pgid as libc::pid_t, signal);
    }
}

/// The last few KiB of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        text = String::from_utf8_lossy(&buf).into_owned();
    }
    text
}
