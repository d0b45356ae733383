//! End-to-end tests of the provider simulator over real loopback sockets.

use std::time::Duration;

use anyhow::{ensure, Context as _};
use pushfleet_loadtest::simulator::{self, Channel, SimConfig, SimHandle, SimStats};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

struct Sim {
    handle: SimHandle,
    shutdown: CancellationToken,
}

impl Sim {
    async fn start(cfg: SimConfig) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let handle = simulator::start(cfg, shutdown.clone()).await?;
        Ok(Self { handle, shutdown })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url(), path)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.handle.join()).await?
    }
}

/// A raw SMTP client: one command, one (possibly multi-line) reply.
struct Smtp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Smtp {
    async fn connect(sim: &Sim) -> anyhow::Result<(Self, String)> {
        let (read, writer) = TcpStream::connect(sim.handle.smtp_addr).await?.into_split();
        let mut client = Self {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = client.reply().await?;
        Ok((client, greeting))
    }

    async fn reply(&mut self) -> anyhow::Result<String> {
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

    async fn send(&mut self, data: &str) -> anyhow::Result<String> {
        self.writer.write_all(data.as_bytes()).await?;
        self.reply().await
    }
}

async fn expect(smtp: &mut Smtp, command: &str, code: &str) -> anyhow::Result<String> {
    let reply = smtp.send(&format!("{command}\r\n")).await?;
    ensure!(
        reply.starts_with(code),
        "{command:?} -> {reply:?}, wanted {code}"
    );
    Ok(reply)
}

#[tokio::test]
async fn smtp_two_messages_on_one_connection_with_duplicate() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let (mut smtp, greeting) = Smtp::connect(&sim).await?;
    assert_eq!(greeting, "220 pushfleet-sim ESMTP\r\n");

    expect(&mut smtp, "MAIL FROM:<x@y.z>", "503").await?;
    let ehlo = expect(&mut smtp, "EHLO client.test", "250").await?;
    for ext in ["PIPELINING", "8BITMIME", "SIZE 10485760"] {
        assert!(ehlo.contains(ext), "{ehlo}");
    }
    expect(&mut smtp, "DATA", "503").await?;
    expect(&mut smtp, "FROB", "500").await?;
    expect(&mut smtp, "STARTTLS", "502").await?;
    expect(&mut smtp, "NOOP", "250").await?;

    // Message 1: two recipients, RFC 2047 subject, quoted-printable body, a stuffed dot.
    expect(
        &mut smtp,
        "MAIL FROM:<noreply@pushfleet.test> BODY=8BITMIME",
        "250",
    )
    .await?;
    expect(&mut smtp, "RCPT TO:<ada@example.com>", "250").await?;
    expect(&mut smtp, "rcpt to:<bob@example.com>", "250").await?;
    expect(&mut smtp, "DATA", "354").await?;
    let message = concat!(
        "From: PushFleet <noreply@pushfleet.test>\r\n",
        "To: ada@example.com, bob@example.com\r\n",
        "Subject: =?utf-8?b?R3LDvMOfZQ==?= =?utf-8?q?_f=C3=BCr_dich?=\r\n",
        "Message-ID: <d-1@pushfleet.test>\r\n",
        "List-Unsubscribe: <https://pushfleet.test/u/T1>,\r\n",
        " <mailto:unsub@pushfleet.test>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
        "Hallo Ada, sch=C3=B6n dass du da bist. This is a long line that was wrapp=\r\n",
        "ed by the encoder.\r\n",
        "..leading dot\r\n",
        ".\r\n",
    );
    let accepted = smtp.send(message).await?;
    assert!(accepted.starts_with("250"), "{accepted}");

    // Message 2 on the same connection, same Message-ID: a resend.
    expect(&mut smtp, "MAIL FROM:<noreply@pushfleet.test>", "250").await?;
    expect(&mut smtp, "RCPT TO:<ada@example.com>", "250").await?;
    expect(&mut smtp, "DATA", "354").await?;
    let resend = concat!(
        "Subject: plain\r\n",
        "message-id: <d-1@pushfleet.test>\r\n",
        "\r\n",
        "again\r\n",
        ".\r\n",
    );
    assert!(smtp.send(resend).await?.starts_with("250"));
    expect(&mut smtp, "RSET", "250").await?;
    expect(&mut smtp, "QUIT", "221").await?;

    let rec = &sim.handle.recorder;
    assert!(rec.wait_for_unique(2, WAIT).await);
    let msgs = rec.messages();
    assert_eq!(msgs.len(), 3);
    let first = &msgs[0];
    assert_eq!(first.channel, Channel::Email);
    assert_eq!(first.recipient, "ada@example.com");
    assert_eq!(msgs[1].recipient, "bob@example.com");
    assert_eq!(
        first.idempotency_key.as_deref(),
        Some("<d-1@pushfleet.test>")
    );
    assert_eq!(first.subject.as_deref(), Some("Grüße für dich"));
    assert_eq!(
        first.body,
        "Hallo Ada, schön dass du da bist. This is a long line that was wrapped by the \
         encoder.\n.leading dot"
    );
    assert!(!first.duplicate && !msgs[1].duplicate);
    assert_eq!(
        first.raw["headers"]["List-Unsubscribe"],
        "<https://pushfleet.test/u/T1>, <mailto:unsub@pushfleet.test>"
    );
    assert_eq!(first.raw["html"], Value::Null);
    assert_eq!(first.raw["mail_from"], "noreply@pushfleet.test");

    let again = &msgs[2];
    assert!(again.duplicate);
    assert_eq!(again.body, "again");
    let email = rec.stats().email;
    assert_eq!((email.received, email.unique, email.duplicates), (3, 2, 1));

    sim.stop().await
}

#[tokio::test]
async fn smtp_concurrent_connections() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (mut smtp, _) = Smtp::connect(&sim).await?;
        tasks.push(tokio::spawn(async move {
            expect(&mut smtp, "HELO c", "250").await?;
            expect(&mut smtp, "MAIL FROM:<a@b.c>", "250").await?;
            expect(&mut smtp, &format!("RCPT TO:<u{i}@example.com>"), "250").await?;
            expect(&mut smtp, "DATA", "354").await?;
            let msg = format!("Message-ID: <c-{i}@t>\r\nSubject: s\r\n\r\nbody {i}\r\n.\r\n");
            ensure!(smtp.send(&msg).await?.starts_with("250"));
            expect(&mut smtp, "QUIT", "221").await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    assert!(sim.handle.recorder.wait_for_unique(20, WAIT).await);
    assert_eq!(sim.handle.recorder.stats().email.duplicates, 0);
    sim.stop().await
}

#[tokio::test]
async fn smtp_through_lettre_multipart_alternative() -> anyhow::Result<()> {
    use lettre::message::MultiPart;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sim.handle.smtp_addr.port())
        .build();
    for i in 0..2 {
        let text = format!("Hallo Jürgen,\nIhr Bericht Nr. {i} ist fertig. ✓");
        let html = format!("<p>Hallo Jürgen, Bericht {i} ✓</p>");
        let message = Message::builder()
            .from("PushFleet <noreply@pushfleet.test>".parse()?)
            .to("Jürgen <juergen@example.com>".parse()?)
            .subject(format!("Bericht {i}: Grüße ✓"))
            .message_id(Some(format!("<lettre-{i}@pushfleet.test>")))
            .multipart(MultiPart::alternative_plain_html(text, html))?;
        transport.send(message).await?;
    }
    let rec = &sim.handle.recorder;
    assert!(rec.wait_for_unique(2, WAIT).await);
    let msgs = rec.messages();
    assert_eq!(msgs.len(), 2);
    let m = &msgs[1];
    assert_eq!(m.recipient, "juergen@example.com");
    assert_eq!(m.subject.as_deref(), Some("Bericht 1: Grüße ✓"));
    assert_eq!(
        m.idempotency_key.as_deref(),
        Some("<lettre-1@pushfleet.test>")
    );
    assert_eq!(m.body, "Hallo Jürgen,\nIhr Bericht Nr. 1 ist fertig. ✓");
    assert_eq!(m.raw["html"], "<p>Hallo Jürgen, Bericht 1 ✓</p>");
    sim.stop().await
}

async fn teams_token(client: &reqwest::Client, sim: &Sim) -> anyhow::Result<String> {
    let resp = client
        .post(sim.url("/botframework.com/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app-id"),
            ("client_secret", "app-secret"),
            ("scope", "https://api.botframework.com/.default"),
        ])
        .send()
        .await?;
    ensure!(resp.status() == 200, "token status {}", resp.status());
    let body: Value = resp.json().await?;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access_token")
}

#[tokio::test]
async fn teams_token_conversation_and_activities() -> anyhow::Result<()> {
    let cfg = SimConfig {
        teams_client_id: Some("app-id".into()),
        teams_client_secret: Some("app-secret".into()),
        ..SimConfig::ephemeral()
    };
    let sim = Sim::start(cfg).await?;
    let client = reqwest::Client::new();

    let bad = client
        .post(sim.url("/tenant-1/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app-id"),
            ("client_secret", "wrong"),
            ("scope", "x"),
        ])
        .send()
        .await?;
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.json::<Value>().await?["error"], "invalid_client");
    let token = teams_token(&client, &sim).await?;

    let params = json!({
        "bot": {"id": "28:app-id"},
        "members": [{"id": "29:user-1"}],
        "channelData": {"tenant": {"id": "tenant-1"}},
        "isGroup": false
    });
    let no_auth = client
        .post(sim.url("/v3/conversations"))
        .json(&params)
        .send()
        .await?;
    assert_eq!(no_auth.status(), 401);
    let create = || {
        client
            .post(sim.url("/v3/conversations"))
            .bearer_auth(&token)
            .json(&params)
            .send()
    };
    let first = create().await?;
    assert_eq!(first.status(), 201);
    let conv = first.json::<Value>().await?["id"].clone();
    assert!(conv.as_str().is_some_and(|id| id.starts_with("a:")));
    assert_eq!(create().await?.json::<Value>().await?["id"], conv);
    let conv = conv.as_str().context("conversation id")?.to_owned();

    let activities = sim.url(&format!("/v3/conversations/{conv}/activities"));
    let text = json!({"type": "message", "text": "**Hi** there", "textFormat": "markdown"});
    let forged = client
        .post(&activities)
        .bearer_auth("not-issued")
        .json(&text)
        .send()
        .await?;
    assert_eq!(forged.status(), 401);
    let missing = client.post(&activities).json(&text).send().await?;
    assert_eq!(missing.status(), 401);

    let sent = client
        .post(&activities)
        .bearer_auth(&token)
        .header("Idempotency-Key", "del-1")
        .json(&text)
        .send()
        .await?;
    assert_eq!(sent.status(), 201);
    assert!(sent.json::<Value>().await?["id"].is_string());

    let card = json!({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Card"}]});
    let with_card = json!({"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
    ]});
    let sent = client
        .post(&activities)
        .bearer_auth(&token)
        .header("Idempotency-Key", "del-2")
        .json(&with_card)
        .send()
        .await?;
    assert_eq!(sent.status(), 201);

    let wrong_type = client
        .post(&activities)
        .bearer_auth(&token)
        .json(&json!({"type": "typing"}))
        .send()
        .await?;
    assert_eq!(wrong_type.status(), 400);
    assert_eq!(
        wrong_type.json::<Value>().await?["error"]["code"],
        "BadArgument"
    );
    let garbage = client
        .post(&activities)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(garbage.status(), 400);
    assert_eq!(
        garbage.json::<Value>().await?["error"]["code"],
        "BadArgument"
    );
    // A card Teams cannot render (here: no version) is refused, and not recorded.
    let unversioned = json!({"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive",
         "content": {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "Card"}]}}
    ]});
    let refused = client
        .post(&activities)
        .bearer_auth(&token)
        .header("Idempotency-Key", "del-3")
        .json(&unversioned)
        .send()
        .await?;
    assert_eq!(refused.status(), 400);
    let refused = refused.json::<Value>().await?;
    assert_eq!(refused["error"]["code"], "BadArgument");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("card.version")),
        "{refused}"
    );

    let presence: Value = client
        .get(sim.url("/v1.0/users/user-1/presence"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(presence["availability"], "Available");

    let msgs = sim.handle.recorder.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].channel, Channel::Teams);
    assert_eq!(msgs[0].recipient, conv);
    assert_eq!(msgs[0].body, "**Hi** there");
    assert_eq!(msgs[0].idempotency_key.as_deref(), Some("del-1"));
    assert_eq!(serde_json::from_str::<Value>(&msgs[1].body)?, card);
    assert_eq!(msgs[1].raw["attachments"][0]["content"], card);
    sim.stop().await
}

#[tokio::test]
async fn teams_replies_to_an_activity_are_recorded_with_the_activity_they_answer(
) -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let client = reqwest::Client::new();
    let token = teams_token(&client, &sim).await?;
    let reply = |activity_id: &str, body: Value| {
        client
            .post(sim.url(&format!(
                "/v3/conversations/a:conv-1/activities/{activity_id}"
            )))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let text = json!({"type": "message", "text": "You joined News."});
    assert_eq!(reply("1:press", text.clone()).await?.status(), 201);
    let explicit = json!({"type": "message", "text": "Bye.", "replyToId": "1:other"});
    assert_eq!(reply("1:other", explicit).await?.status(), 201);
    let no_auth = client
        .post(sim.url("/v3/conversations/a:conv-1/activities/1:press"))
        .json(&text)
        .send()
        .await?;
    assert_eq!(no_auth.status(), 401);

    let msgs = sim.handle.recorder.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].recipient, "a:conv-1");
    assert_eq!(msgs[0].body, "You joined News.");
    assert_eq!(msgs[0].raw["replyToId"], "1:press");
    assert_eq!(msgs[1].raw["replyToId"], "1:other");
    sim.stop().await
}

fn twilio_url(sim: &Sim, sid: &str) -> String {
    sim.url(&format!("/2010-04-01/Accounts/{sid}/Messages.json"))
}

#[tokio::test]
async fn twilio_send_validation_and_auth() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let client = reqwest::Client::new();
    let long_body = "a".repeat(161);
    let send = |sid: &'static str, token: &'static str, form: Vec<(&'static str, String)>| {
        client
            .post(twilio_url(&sim, sid))
            .basic_auth(sid, Some(token))
            .header("Idempotency-Key", "sms-1")
            .form(&form)
            .send()
    };
    let valid = || {
        vec![
            ("To", "+4915112345678".to_owned()),
            ("From", "+15005550006".to_owned()),
            ("Body", long_body.clone()),
            ("StatusCallback", "http://127.0.0.1:1/cb".to_owned()),
        ]
    };

    let ok = send("ACsim", "sim-token", valid()).await?;
    assert_eq!(ok.status(), 201);
    let body: Value = ok.json().await?;
    let sid = body["sid"].as_str().context("sid")?;
    assert!(sid.len() == 34 && sid.starts_with("SM"), "{sid}");
    assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(body["status"], "queued");
    assert_eq!(body["num_segments"], "2");
    assert_eq!(body["to"], "+4915112345678");
    assert_eq!(body["from"], "+15005550006");
    assert_eq!(body["account_sid"], "ACsim");
    assert!(body["date_created"].is_string());

    let resend = send("ACsim", "sim-token", valid()).await?;
    assert_eq!(resend.status(), 201, "a duplicate is still a success");

    let mut bad_to = valid();
    bad_to[0].1 = "015112345678".to_owned();
    let resp = send("ACsim", "sim-token", bad_to).await?;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await?;
    assert_eq!(err["code"], 21211);
    assert_eq!(err["status"], 400);
    assert_eq!(err["more_info"], "https://www.twilio.com/docs/errors/21211");

    let no_body = valid().into_iter().filter(|(k, _)| *k != "Body").collect();
    let resp = send("ACsim", "sim-token", no_body).await?;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await?["code"], 21602);

    for (sid, token) in [("ACsim", "wrong"), ("ACother", "sim-token")] {
        let resp = send(sid, token, valid()).await?;
        assert_eq!(resp.status(), 401);
        let err: Value = resp.json().await?;
        assert_eq!(err["code"], 20003);
        assert_eq!(err["message"], "Authenticate");
    }
    let unauthenticated = client
        .post(twilio_url(&sim, "ACsim"))
        .form(&valid())
        .send()
        .await?;
    assert_eq!(unauthenticated.status(), 401);

    let msgs = sim.handle.recorder.messages_for(Channel::Sms);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].recipient, "+4915112345678");
    assert_eq!(msgs[0].body, long_body);
    assert_eq!(msgs[0].raw["StatusCallback"], "http://127.0.0.1:1/cb");
    assert!(!msgs[0].duplicate && msgs[1].duplicate);
    sim.stop().await
}

#[tokio::test]
async fn sendgrid_send_and_validation() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let client = reqwest::Client::new();
    let mail = json!({
        "personalizations": [{"to": [{"email": "ada@example.com"}, {"email": "bob@example.com"}]}],
        "from": {"email": "noreply@pushfleet.test", "name": "PushFleet"},
        "subject": "Your report",
        "content": [
            {"type": "text/plain", "value": "Report ready"},
            {"type": "text/html", "value": "<p>Report ready</p>"}
        ],
        "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    });
    let resp = client
        .post(sim.url("/v3/mail/send"))
        .bearer_auth("SG.key")
        .header("Idempotency-Key", "mail-1")
        .json(&mail)
        .send()
        .await?;
    assert_eq!(resp.status(), 202);
    assert!(resp
        .headers()
        .get("x-message-id")
        .is_some_and(|v| !v.is_empty()));
    assert!(resp.bytes().await?.is_empty());

    let unauth = client
        .post(sim.url("/v3/mail/send"))
        .json(&mail)
        .send()
        .await?;
    assert_eq!(unauth.status(), 401);

    let mut broken = mail.clone();
    broken["personalizations"][0]["to"] = json!([]);
    broken["from"] = json!({});
    let resp = client
        .post(sim.url("/v3/mail/send"))
        .bearer_auth("SG.key")
        .json(&broken)
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    let errs: Value = resp.json().await?;
    let fields: Vec<&str> = errs["errors"]
        .as_array()
        .context("errors array")?
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["personalizations.0.to", "from.email"]);

    let garbage = client
        .post(sim.url("/v3/mail/send"))
        .bearer_auth("SG.key")
        .header("content-type", "application/json")
        .body("[1,2")
        .send()
        .await?;
    assert_eq!(garbage.status(), 400);
    assert!(garbage.json::<Value>().await?["errors"][0]["message"].is_string());

    let msgs = sim.handle.recorder.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].recipient, "bob@example.com");
    assert_eq!(msgs[1].subject.as_deref(), Some("Your report"));
    assert_eq!(msgs[1].body, "Report ready");
    assert_eq!(msgs[1].idempotency_key.as_deref(), Some("mail-1"));
    assert_eq!(
        msgs[1].raw["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    sim.stop().await
}

#[tokio::test]
async fn control_plane_stats_messages_reset() -> anyhow::Result<()> {
    let sim = Sim::start(SimConfig::ephemeral()).await?;
    let client = reqwest::Client::new();
    let health = client.get(sim.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200);

    for key in ["k1", "k1", "k2"] {
        let resp = client
            .post(twilio_url(&sim, "ACsim"))
            .basic_auth("ACsim", Some("sim-token"))
            .header("Idempotency-Key", key)
            .form(&[
                ("To", "+4915112345678"),
                ("MessagingServiceSid", "MGsim"),
                ("Body", "Hi ✓"),
            ])
            .send()
            .await?;
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.json::<Value>().await?["num_segments"], "1");
    }
    let stats: SimStats = client
        .get(sim.url("/_sim/stats"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        (stats.sms.received, stats.sms.unique, stats.sms.duplicates),
        (3, 2, 1)
    );
    assert_eq!(stats.total.unique, 2);
    assert_eq!(stats.email.received, 0);
    assert_eq!(stats, sim.handle.recorder.stats());

    let all: Value = client
        .get(sim.url("/_sim/messages"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    assert_eq!(all[0]["channel"], "sms");
    let emails: Value = client
        .get(sim.url("/_sim/messages?channel=email"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(emails, json!([]));
    let bad_filter = client
        .get(sim.url("/_sim/messages?channel=fax"))
        .send()
        .await?;
    assert_eq!(bad_filter.status(), 400);
    assert!(bad_filter.json::<Value>().await?["error"].is_string());

    let reset = client.post(sim.url("/_sim/reset")).send().await?;
    assert!(reset.status().is_success());
    assert_eq!(sim.handle.recorder.unique_count(), 0);
    assert!(
        !sim.handle
            .recorder
            .wait_for_unique(1, Duration::from_millis(20))
            .await
    );

    let unknown = client.get(sim.url("/nope")).send().await?;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await?["path"], "/nope");
    sim.stop().await
}

#[tokio::test]
async fn latency_knob_delays_provider_calls() -> anyhow::Result<()> {
    let cfg = SimConfig {
        latency: simulator::Latency::new(150, 0),
        ..SimConfig::ephemeral()
    };
    let sim = Sim::start(cfg).await?;
    let client = reqwest::Client::new();
    let token = teams_token(&client, &sim).await?;
    let started = std::time::Instant::now();
    let resp = client
        .get(sim.url("/v1.0/users/u/presence"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.stop().await
}
