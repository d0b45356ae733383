//! A service's real binary started as its own process on a test's environment, so that a
//! test can kill it with SIGKILL (no destructor, no flush: the worst moment) or stop it with
//! SIGTERM, as Kubernetes would.

use crate::fleet::{TEAMS_APP_ID, TRACKING_SECRET, TWILIO_AUTH_TOKEN, UNSUBSCRIBE_SECRET};
use crate::{Service, TestApp};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long a signalled process may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running service binary; killed when dropped.
pub struct ServiceProcess {
    child: Child,
    binary: String,
}

impl ServiceProcess {
    /// Starts `binary` (from `env!("CARGO_BIN_EXE_...")`) for `service` on the app's
    /// environment and simulator, with `extra` variables applied last.
    pub fn spawn(app: &TestApp, service: Service, binary: &str, extra: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .envs(app.env.env_vars())
            .envs(service_env(app, service))
            .env("RUST_LOG", "warn");
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        Self {
            child,
            binary: binary.to_owned(),
        }
    }

    /// SIGKILL, and waits for the exit.
    pub async fn kill_9(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL).await
    }

    /// SIGTERM (a graceful stop), and waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM).await
    }

    async fn signal(&mut self, signal: libc::c_int) -> ExitStatus {
        let pid = self
            .child
            .id()
            .unwrap_or_else(|| panic!("{} is not running", self.binary));
        // SAFETY: `pid` is our own child, not yet reaped (we hold its handle).
        let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(sent, 0, "signal {signal} to {}", self.binary);
        tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit after signal {signal}", self.binary))
            .expect("wait for the process")
    }
}

/// What a service binary needs beyond the common variables to talk to this app's simulator
/// and api, matching the in-process configuration of `TestApp`.
fn service_env(app: &TestApp, service: Service) -> Vec<(&'static str, String)> {
    let sim = app.sim.base_url();
    let sender = |channel: &str| {
        vec![
            ("RATE_LIMIT_PER_SECOND", "0".to_owned()),
            ("RATE_LIMIT_KEY", format!("{channel}:test")),
            (
                "SEND_JOBS_PER_MESSAGE",
                crate::SEND_JOBS_PER_MESSAGE.to_string(),
            ),
            ("RETRY_BASE_MS", "500".to_owned()),
            ("SENDER_MAX_ATTEMPTS", "3".to_owned()),
            ("TRACKING_BASE_URL", app.public_api_url.clone()),
            ("TRACKING_SECRET", TRACKING_SECRET.to_owned()),
        ]
    };
    let mut env = match service {
        Service::Api => panic!("the api runs in the test process"),
        Service::Scheduler | Service::Evaluator => vec![
            ("SCHEDULER_TICK_MS", "50".to_owned()),
            (
                "SEND_JOBS_PER_MESSAGE",
                crate::SEND_JOBS_PER_MESSAGE.to_string(),
            ),
        ],
        Service::EmailSender => {
            let mut env = sender("email");
            env.extend([
                ("SMTP_HOST", "127.0.0.1".to_owned()),
                ("SMTP_PORT", app.sim.smtp_addr.port().to_string()),
                ("SMTP_POOL_SIZE", "4".to_owned()),
                ("UNSUBSCRIBE_BASE_URL", app.api_url.clone()),
                ("UNSUBSCRIBE_SECRET", UNSUBSCRIBE_SECRET.to_owned()),
            ]);
            env
        }
        Service::TeamsSender => {
            let token_url = format!("{sim}/botframework.com/oauth2/v2.0/token");
            let mut env = sender("teams");
            env.extend([
                ("TEAMS_APP_ID", TEAMS_APP_ID.to_owned()),
                ("TEAMS_APP_PASSWORD", "test-secret".to_owned()),
                ("TEAMS_TOKEN_URL", token_url.clone()),
                ("GRAPH_API_BASE", sim.clone()),
                ("GRAPH_TOKEN_URL", token_url),
            ]);
            env
        }
        Service::SmsSender => {
            let mut env = sender("sms");
            env.extend([
                ("TWILIO_API_BASE", sim.clone()),
                ("TWILIO_ACCOUNT_SID", "ACsim".to_owned()),
                ("TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN.to_owned()),
                ("TWILIO_STATUS_CALLBACK", app.twilio_status_url()),
            ]);
            env
        }
    };
    env.push(("PUSHFLEET_ENV", "development".to_owned()));
    env
}

/// One line for `infra/soak.sh`: the repeated provider calls a fault test saw, and the most
/// its crash may cause. Printed by the fault tests (run with `--nocapture`).
pub fn soak_report(duplicates: usize, bound: usize) {
    println!("soak: duplicates={duplicates} bound={bound}");
}
