//! Helpers shared by the simulator's integration tests: a started simulator with a client, and
//! one-call senders for each provider.

// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use anyhow::{ensure, Context as _};
use pushfleet_loadtest::simulator::{self, SimConfig, SimHandle};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);
pub const APP_ID: &str = "app-id";

pub struct Sim {
    pub handle: SimHandle,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Sim {
    pub async fn start(cfg: SimConfig) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let handle = simulator::start(cfg, shutdown.clone()).await?;
        Ok(Self {
            handle,
            client: reqwest::Client::new(),
            shutdown,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url(), path)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.handle.join()).await?
    }

    pub async fn token(&self, client_id: &str, scope: &str) -> anyhow::Result<String> {
        let resp = self
            .client
            .post(self.url("/botframework.com/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", "secret"),
                ("scope", scope),
            ])
            .send()
            .await?;
        ensure!(resp.status() == 200, "token status {}", resp.status());
        let body: Value = resp.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token")
    }

    pub async fn bot_token(&self) -> anyhow::Result<String> {
        self.token(APP_ID, "https://api.botframework.com/.default")
            .await
    }

    pub async fn activity(
        &self,
        token: &str,
        conversation: &str,
        key: &str,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .post(self.url(&format!("/v3/conversations/{conversation}/activities")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "type": "message", "text": format!("hello {key}") }))
            .send()
            .await?)
    }

    pub async fn sms(
        &self,
        from: &str,
        to: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let mut form = vec![("To", to), ("From", from), ("Body", body)];
        form.extend_from_slice(extra);
        Ok(self
            .client
            .post(self.url("/2010-04-01/Accounts/ACsim/Messages.json"))
            .basic_auth("ACsim", Some("sim-token"))
            .form(&form)
            .send()
            .await?)
    }

    pub async fn sendgrid(&self, to: &[&str]) -> anyhow::Result<reqwest::Response> {
        let to: Vec<Value> = to.iter().map(|a| json!({ "email": a })).collect();
        Ok(self
            .client
            .post(self.url("/v3/mail/send"))
            .bearer_auth("SG.test-key")
            .json(&json!({
                "personalizations": [{ "to": to }],
                "from": { "email": "noreply@pushfleet.test" },
                "subject": "Hi",
                "content": [{ "type": "text/plain", "value": "Hello" }],
            }))
            .send()
            .await?)
    }

    pub async fn put_knobs(&self, patch: Value) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .client
            .put(self.url("/_sim/knobs"))
            .json(&patch)
            .send()
            .await?)
    }
}

/// Twilio's error code from an error body.
pub async fn twilio_code(resp: reqwest::Response) -> anyhow::Result<i64> {
    let body: Value = resp.json().await?;
    body["code"].as_i64().context("no code in Twilio error")
}

/// The `Retry-After` header, if any.
pub fn retry_after(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A raw SMTP client: one command, one (possibly multi-line) reply.
pub struct Smtp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Smtp {
    /// Connects and returns the greeting.
    pub async fn connect(sim: &Sim) -> anyhow::Result<(Self, String)> {
        let (read, writer) = TcpStream::connect(sim.handle.smtp_addr).await?.into_split();
        let mut client = Self {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = client.reply().await?;
        Ok((client, greeting))
    }

    pub async fn reply(&mut self) -> anyhow::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            ensure!(self.reader.read_line(&mut line).await? > 0, "server closed");
            all.push_str(&line);
            // The last line of a reply has a space after the code.
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(all);
            }
        }
    }

    pub async fn send(&mut self, data: &str) -> anyhow::Result<String> {
        self.writer.write_all(data.as_bytes()).await?;
        self.reply().await
    }

    pub async fn expect(&mut self, command: &str, code: &str) -> anyhow::Result<String> {
        let reply = self.send(&format!("{command}\r\n")).await?;
        ensure!(
            reply.starts_with(code),
            "{command:?} -> {reply:?}, wanted {code}"
        );
        Ok(reply)
    }

    /// True once the server has closed the connection.
    pub async fn closed(&mut self) -> anyhow::Result<bool> {
        let mut line = String::new();
        Ok(self.reader.read_line(&mut line).await? == 0)
    }

    /// One message from `from` to `rcpts` up to the end of DATA; returns the final reply.
    pub async fn mail(&mut self, from: &str, rcpts: &[&str], id: &str) -> anyhow::Result<String> {
        self.expect(&format!("MAIL FROM:<{from}>"), "250").await?;
        for rcpt in rcpts {
            self.expect(&format!("RCPT TO:<{rcpt}>"), "250").await?;
        }
        self.expect("DATA", "354").await?;
        self.send(&format!(
            "Message-ID: <{id}@pushfleet.test>\r\nSubject: s\r\n\r\nbody {id}\r\n.\r\n"
        ))
        .await
    }
}
