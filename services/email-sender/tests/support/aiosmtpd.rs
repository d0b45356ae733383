//! Debian's aiosmtpd as a child process: a real SMTP server that is not ours. Its default
//! handler prints every message it accepts to stdout, which is read back here.

use super::mail::Mail;
use super::tls_cert::TlsCert;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const MESSAGE_BEGIN: &str = "---------- MESSAGE FOLLOWS ----------";
const MESSAGE_END: &str = "------------ END MESSAGE ------------";
/// What aiosmtpd logs (with `-d`) once its socket is bound; the AUTH script says the same.
const READY: &str = "Server is listening on";

/// A tiny server for the AUTH test: the aiosmtpd CLI has no authenticator option. STARTTLS is
/// required, and AUTH is only offered after it (`auth_require_tls`). Arguments: cert, key,
/// user, password.
const AUTH_SERVER: &str = r#"
import asyncio, ssl, sys
from aiosmtpd.handlers import Debugging
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

cert, key, user, password = sys.argv[1:5]
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    # handled=False: let aiosmtpd answer 535 itself (by default it would stay silent).
    return AuthResult(success=ok, handled=False)

def factory():
    return SMTP(Debugging(sys.stdout), tls_context=tls, require_starttls=True,
                auth_required=True, auth_require_tls=True, authenticator=authenticator)

async def main():
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"Server is listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// A running aiosmtpd, killed on drop.
pub struct Aiosmtpd {
    _child: Child,
    pub port: u16,
    messages: watch::Receiver<Vec<String>>,
}

impl Aiosmtpd {
    /// Plain SMTP.
    pub async fn plain() -> Aiosmtpd {
        Self::cli(&[]).await
    }

    /// STARTTLS offered and required: the server refuses mail before the upgrade, so every
    /// message it prints came over TLS.
    pub async fn starttls(cert: &TlsCert) -> Aiosmtpd {
        Self::cli(&[
            "--tlscert".into(),
            cert.cert.display().to_string(),
            "--tlskey".into(),
            cert.key.display().to_string(),
        ])
        .await
    }

    /// Implicit TLS (SMTPS): TLS from the first byte.
    pub async fn implicit_tls(cert: &TlsCert) -> Aiosmtpd {
        Self::cli(&[
            "--smtpscert".into(),
            cert.cert.display().to_string(),
            "--smtpskey".into(),
            cert.key.display().to_string(),
        ])
        .await
    }

    /// STARTTLS required, then AUTH required with these credentials.
    pub async fn with_auth(cert: &TlsCert, user: &str, password: &str) -> Aiosmtpd {
        let mut cmd = Command::new(python().await);
        cmd.args(["-u", "-c", AUTH_SERVER])
            .arg(&cert.cert)
            .arg(&cert.key)
            .args([user, password]);
        Self::start(cmd)
            .await
            .unwrap_or_else(|stderr| panic!("the aiosmtpd AUTH server did not start:\n{stderr}"))
    }

    /// `python3 -m aiosmtpd` on a free port. The port is found by binding and releasing it,
    /// so another process may take it in between: then aiosmtpd exits and we try another.
    async fn cli(extra: &[String]) -> Aiosmtpd {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(python().await);
            // -u: unbuffered stdout, so each message is readable as soon as it is accepted.
            // -n: do not setuid to nobody. -d: log "Server is listening" when bound.
            cmd.args(["-u", "-m", "aiosmtpd", "-n", "-d", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(extra);
            match Self::start(cmd).await {
                Ok(server) => return server,
                Err(stderr) => last = stderr,
            }
        }
        panic!("aiosmtpd did not start:\n{last}");
    }

    /// Starts the process and waits for its "listening" line; on failure, its stderr.
    async fn start(mut cmd: Command) -> Result<Aiosmtpd, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start python3: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;

        let (tx, messages) = watch::channel(Vec::new());
        tokio::spawn(collect_messages(BufReader::new(stdout), tx));

        let mut stderr = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = stderr.next_line().await {
                if let Some(port) = line
                    .split_once(READY)
                    .and_then(|(_, addr)| addr.trim().rsplit_once(':'))
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                {
                    return Some(port);
                }
                seen.push(line);
            }
            None
        })
        .await;
        match ready {
            Ok(Some(port)) => {
                // Keep draining stderr (connection logs), or a full pipe would stall it.
                tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
                Ok(Aiosmtpd {
                    _child: child,
                    port,
                    messages,
                })
            }
            Ok(None) => Err(seen.join("\n")),
            Err(_) => Err(format!(
                "no \"{READY}\" line within {START_TIMEOUT:?}:\n{}",
                seen.join("\n")
            )),
        }
    }

    /// Waits until at least `n` messages have been printed, and returns all of them parsed.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let mut rx = self.messages.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|m| m.len() >= n)).await;
        let messages = self.messages.borrow().clone();
        assert!(
            matches!(waited, Ok(Ok(_))),
            "aiosmtpd received {} of {n} messages within {timeout:?}",
            messages.len()
        );
        messages.iter().map(|raw| Mail::parse(raw)).collect()
    }

    /// How many messages have been printed so far.
    pub fn message_count(&self) -> usize {
        self.messages.borrow().len()
    }
}

/// Splits aiosmtpd's stdout into messages, published as they complete.
async fn collect_messages(
    stdout: BufReader<tokio::process::ChildStdout>,
    tx: watch::Sender<Vec<String>>,
) {
    let mut lines = stdout.lines();
    let mut current: Option<Vec<String>> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        match line.as_str() {
            MESSAGE_BEGIN => current = Some(Vec::new()),
            MESSAGE_END => {
                if let Some(done) = current.take() {
                    tx.send_modify(|m| m.push(done.join("\n")));
                }
            }
            _ => {
                if let Some(msg) = current.as_mut() {
                    msg.push(line);
                }
            }
        }
    }
}

/// An interpreter that can import aiosmtpd. Debian's package installs it for the system
/// python (/usr/bin/python3), which a pyenv or venv `python3` on PATH may shadow. Installing
/// anything is left to infra/up.sh: a missing package fails the test, saying so.
async fn python() -> &'static str {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if ok {
            return candidate;
        }
    }
    panic!(
        "no python3 can import aiosmtpd (tried /usr/bin/python3 and python3 on PATH): \
         these tests need Debian's python3-aiosmtpd, which infra/up.sh installs"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}
