//! Our own pool of SMTP connections to the relay, built on lettre's connection.
//!
//! Why not lettre's pool: it opens a new connection whenever its parked ones are all busy,
//! and closes it again at return once `max_size` are parked, so with more jobs in flight
//! than connections (256 against 16 by default) most messages paid a TCP connect, EHLO and
//! QUIT; and it sends NOOP before every message to test the connection. Here:
//!
//! - at most `SMTP_POOL_SIZE` connections exist; a send waits for a free one;
//! - a connection idle for less than [`CHECK_AFTER_IDLE`] is used as is; an older one is
//!   tested with NOOP first, and one idle for longer than [`MAX_IDLE`] is closed (relays
//!   drop idle sessions after a few minutes);
//! - with a relay that announces PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one
//!   write: two round trips per message instead of four; and the message with its final
//!   dot goes out in one write (see `send_message`);
//! - a connection that saw any error, or a timeout, is closed rather than reused: its
//!   replies may be out of step with its commands;
//! - a reused connection the relay has ended (421, or closed) before the message went out
//!   is replaced once, so a relay's idle limit or cap on messages per session fails no
//!   message and spends no attempt.

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A parked connection idle for longer than this is tested with NOOP before use.
pub const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);
/// A parked connection idle for longer than this is closed instead of used.
pub const MAX_IDLE: Duration = Duration::from_secs(60);
/// How long the NOOP test and the QUIT of a retired connection may take.
const HOUSEKEEPING_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to open a connection.
pub struct SmtpConnector {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub credentials: Option<Credentials>,
    pub hello: ClientId,
    /// Bounds the TCP connect (the whole send is bounded by the caller).
    pub connect_timeout: Duration,
}

struct Pooled {
    conn: AsyncSmtpConnection,
    /// The relay announced PIPELINING.
    pipelining: bool,
    idle_since: Instant,
}

/// Why a send did not get the relay's acceptance.
#[derive(Debug)]
pub enum SendFailure {
    /// The relay (or the connection to it) said no; lettre's error tells which.
    Smtp(SmtpError),
    /// No answer within the timeout (connecting included).
    TimedOut,
}

pub struct SmtpPool {
    connector: SmtpConnector,
    idle: Mutex<Vec<Pooled>>,
    slots: Semaphore,
}

impl SmtpPool {
    pub fn new(connector: SmtpConnector, max_size: u32) -> Self {
        Self {
            connector,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(max_size.max(1) as usize),
        }
    }

    /// Sends one message on a pooled connection. `timeout` bounds the conversation with
    /// the relay (connecting included), not the wait for a free connection.
    pub async fn send(
        &self,
        envelope: &Envelope,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Response, SendFailure> {
        // The semaphore is never closed, so acquire only fails if it were.
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(SendFailure::TimedOut);
        };
        let attempt = async {
            let (pooled, reused) = match self.take_idle().await {
                Some(p) => (p, true),
                None => (self.connect().await?, false),
            };
            match self.transact(pooled, envelope, body).await {
                Ok(response) => Ok(response),
                // A relay may end a session whenever it likes (an idle limit, a restart, a cap
                // on messages per connection). A reused connection found gone before the
                // message went out is replaced, once: the relay cannot have taken it.
                Err(failed) if reused && !failed.message_sent && failed.session_gone() => {
                    tracing::debug!(error = %failed.error, "pooled SMTP connection gone; trying a fresh one");
                    let fresh = self.connect().await?;
                    self.transact(fresh, envelope, body)
                        .await
                        .map_err(|f| f.error)
                }
                Err(failed) => Err(failed.error),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result.map_err(SendFailure::Smtp),
            // The connection was dropped with the future: nothing half-read goes back.
            Err(_) => Err(SendFailure::TimedOut),
        }
    }

    /// One mail transaction on `pooled`, which goes back to the pool only if it succeeded.
    async fn transact(
        &self,
        mut pooled: Pooled,
        envelope: &Envelope,
        body: &[u8],
    ) -> Result<Response, Failed> {
        match send_message(&mut pooled.conn, envelope, body, pooled.pipelining).await {
            Ok(response) => {
                pooled.idle_since = Instant::now();
                self.park(pooled);
                Ok(response)
            }
            Err(failed) => {
                // A pipelined error may leave replies unread: the connection is not reused.
                retire(pooled.conn);
                Err(failed)
            }
        }
    }

    /// The most recently used parked connection still worth using.
    async fn take_idle(&self) -> Option<Pooled> {
        loop {
            let mut pooled = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            let idle = pooled.idle_since.elapsed();
            if idle > MAX_IDLE {
                retire(pooled.conn);
                continue;
            }
            if idle > CHECK_AFTER_IDLE {
                let alive =
                    tokio::time::timeout(HOUSEKEEPING_TIMEOUT, pooled.conn.test_connected()).await;
                if alive != Ok(true) {
                    retire(pooled.conn);
                    continue;
                }
            }
            return Some(pooled);
        }
    }

    fn park(&self, pooled: Pooled) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pooled);
    }

    /// Connects, secures (implicit TLS or STARTTLS, as configured), learns whether the
    /// relay pipelines, then authenticates.
    #[tracing::instrument(skip_all, fields(host = %self.connector.host, port = self.connector.port))]
    async fn connect(&self) -> Result<Pooled, SmtpError> {
        let c = &self.connector;
        let implicit = match &c.tls {
            Tls::Wrapper(params) => Some(params.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (c.host.as_str(), c.port),
            Some(c.connect_timeout),
            &c.hello,
            implicit,
            None,
        )
        .await?;
        match &c.tls {
            Tls::Required(params) => conn.starttls(params.clone(), &c.hello).await?,
            Tls::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &c.hello).await?
            }
            _ => {}
        }
        // lettre keeps only the extensions it knows, and PIPELINING is not one of them:
        // ask again (EHLO may be repeated; it resets nothing but the mail transaction) and
        // read the keywords ourselves. Before AUTH, which a repeated EHLO might undo.
        let ehlo = conn.command(Ehlo::new(c.hello.clone())).await?;
        let pipelining = announces_pipelining(&ehlo);
        if let Some(credentials) = &c.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        tracing::debug!(pipelining, "SMTP connection opened");
        Ok(Pooled {
            conn,
            pipelining,
            idle_since: Instant::now(),
        })
    }
}

/// Closes a connection in the background: QUIT waits for a reply, which a relay that has
/// gone silent never sends, and no send should wait on that.
fn retire(mut conn: AsyncSmtpConnection) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(HOUSEKEEPING_TIMEOUT, conn.abort()).await;
    });
}

/// The EHLO reply's keywords include PIPELINING.
fn announces_pipelining(ehlo: &Response) -> bool {
    ehlo.message().any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|kw| kw.eq_ignore_ascii_case("PIPELINING"))
    })
}

/// A transaction that failed, and how far it got.
struct Failed {
    error: SmtpError,
    /// The message itself was written (or may have been): the relay may have it.
    message_sent: bool,
}

impl Failed {
    fn envelope(error: SmtpError) -> Self {
        Self {
            error,
            message_sent: false,
        }
    }

    fn message(error: SmtpError) -> Self {
        Self {
            error,
            message_sent: true,
        }
    }

    /// The session ended under us (421, or the connection closed or broken), as opposed
    /// to a reply about this message.
    fn session_gone(&self) -> bool {
        match self.error.status() {
            Some(code) => u16::from(code) == 421,
            None => !self.error.is_client(),
        }
    }
}

/// One mail transaction. With PIPELINING (RFC 2920), MAIL, every RCPT and DATA go out in
/// one write and their replies are read in order; without it, one command at a time. Either
/// way the message and its terminating dot go out in one write: lettre writes them apart,
/// and on a connection without TCP_NODELAY (lettre sets none) the small second write waits
/// for the relay's delayed ACK, 40 ms on Linux, which capped each connection at 25
/// messages/s. The MAIL options are lettre's own (`AsyncSmtpConnection::send`).
async fn send_message(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
    pipelining: bool,
) -> Result<Response, Failed> {
    let mut options = Vec::new();
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            // lettre's own send gives the error it gives for this.
            return conn.send(envelope, body).await.map_err(Failed::message);
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return conn.send(envelope, body).await.map_err(Failed::message);
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(envelope.from().cloned(), options).to_string();
    let rcpts = envelope
        .to()
        .iter()
        .map(|to| Rcpt::new(to.clone(), vec![]).to_string());
    if pipelining {
        let commands: String = std::iter::once(mail)
            .chain(rcpts)
            .chain(std::iter::once(Data.to_string()))
            .collect();
        // `command` writes them all and reads the first reply; then one per RCPT, and DATA's.
        conn.command(commands).await.map_err(Failed::envelope)?;
        for _ in envelope.to() {
            conn.read_response().await.map_err(Failed::envelope)?;
        }
        conn.read_response().await.map_err(Failed::envelope)?;
    } else {
        conn.command(mail).await.map_err(Failed::envelope)?;
        for rcpt in rcpts {
            conn.command(rcpt).await.map_err(Failed::envelope)?;
        }
        conn.command(Data).await.map_err(Failed::envelope)?;
    }
    let sent = match String::from_utf8(with_transparency(body)) {
        Ok(framed) => conn.command(framed).await,
        // Never from lettre's builder (its bodies are ASCII or UTF-8), but still correct.
        Err(_) => conn.message(body).await,
    };
    sent.map_err(Failed::message)
}

/// The message as it goes after DATA (RFC 5321 4.5.2): a dot that starts a line is doubled,
/// and `CRLF . CRLF` ends it, exactly as lettre frames it.
fn with_transparency(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut line_start = true;
    let mut after_cr = false;
    for &b in body {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = after_cr && b == b'\n';
        after_cr = b == b'\r';
    }
    out.extend_from_slice(b"\r\n.\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    fn ehlo(lines: &[&str]) -> Response {
        Response::new(
            Code::new(
                Severity::PositiveCompletion,
                Category::MailSystem,
                Detail::Zero,
            ),
            lines.iter().map(|l| (*l).to_owned()).collect(),
        )
    }

    #[test]
    fn dots_that_start_a_line_are_doubled_and_the_message_ends_with_a_dot_line() {
        assert_eq!(
            with_transparency(b".top\r\nmid.dle\r\n.\r\n..two\r\nend"),
            b"..top\r\nmid.dle\r\n..\r\n...two\r\nend\r\n.\r\n".to_vec()
        );
        // Only CRLF ends a line.
        assert_eq!(with_transparency(b"a\n.b"), b"a\n.b\r\n.\r\n".to_vec());
    }

    #[test]
    fn pipelining_is_read_from_the_ehlo_keywords() {
        assert!(announces_pipelining(&ehlo(&[
            "relay greets you",
            "PIPELINING",
            "8BITMIME"
        ])));
        assert!(announces_pipelining(&ehlo(&["relay", "pipelining"])));
        assert!(!announces_pipelining(&ehlo(&[
            "relay",
            "8BITMIME",
            "SIZE 1000"
        ])));
        assert!(!announces_pipelining(&ehlo(&["PIPELININGX"])));
    }

    /// What a scripted relay saw.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        messages: AtomicUsize,
        /// MAIL commands that arrived with more commands right behind them.
        pipelined: AtomicUsize,
        /// Commands that arrived before the reply to the previous one, from a client told
        /// the relay does not pipeline.
        out_of_turn: AtomicUsize,
    }

    /// A relay on loopback that speaks just enough SMTP, refuses `bad@` recipients at RCPT,
    /// and counts what it saw. It answers each command as soon as it is read.
    async fn scripted_relay(pipelining: bool) -> (u16, Arc<Seen>) {
        capped_relay(pipelining, None).await
    }

    /// How a relay ends a session after so many messages.
    #[derive(Clone, Copy)]
    enum Cap {
        /// 421 to the next MAIL, then close (RFC 5321 4.2.2).
        Reply421(usize),
        /// Close right after the reply to the last message's data.
        Close(usize),
    }

    async fn capped_relay(pipelining: bool, cap: Option<Cap>) -> (u16, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Seen::default());
        let counts = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let seen = counts.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    let mut line = String::new();
                    let mut recipients = 0;
                    let mut accepted = 0;
                    let _ = write.write_all(b"220 scripted\r\n").await;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let more_behind = !reader.buffer().is_empty();
                        if more_behind && !pipelining {
                            seen.out_of_turn.fetch_add(1, Ordering::SeqCst);
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let answer: &[u8] = match verb.as_str() {
                            "EHLO" if pipelining => {
                                b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                            }
                            "EHLO" => b"250-scripted\r\n250 8BITMIME\r\n",
                            "MAIL" if matches!(cap, Some(Cap::Reply421(n)) if accepted >= n) => {
                                let _ = write.write_all(b"421 4.7.0 too many messages\r\n").await;
                                return;
                            }
                            "MAIL" => {
                                if more_behind {
                                    seen.pipelined.fetch_add(1, Ordering::SeqCst);
                                }
                                recipients = 0;
                                b"250 ok\r\n"
                            }
                            "RCPT" if line.contains("<bad@") => b"550 5.1.1 no such user\r\n",
                            "RCPT" => {
                                recipients += 1;
                                b"250 ok\r\n"
                            }
                            "DATA" if recipients == 0 => b"554 5.5.1 no valid recipients\r\n",
                            "DATA" => {
                                let _ = write.write_all(b"354 go on\r\n").await;
                                loop {
                                    line.clear();
                                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                                        return;
                                    }
                                    if line == ".\r\n" {
                                        break;
                                    }
                                }
                                seen.messages.fetch_add(1, Ordering::SeqCst);
                                accepted += 1;
                                if matches!(cap, Some(Cap::Close(n)) if accepted >= n) {
                                    let _ = write.write_all(b"250 queued\r\n").await;
                                    return;
                                }
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        };
                        if write.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    fn pool(port: u16, size: u32) -> SmtpPool {
        SmtpPool::new(
            SmtpConnector {
                host: "127.0.0.1".into(),
                port,
                tls: Tls::None,
                credentials: None,
                hello: ClientId::Domain("sender.test".into()),
                connect_timeout: Duration::from_secs(5),
            },
            size,
        )
    }

    fn envelope(to: &str) -> Envelope {
        Envelope::new(
            Some("from@sender.test".parse().expect("address")),
            vec![to.parse().expect("address")],
        )
        .expect("envelope")
    }

    const BODY: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";
    const TIMEOUT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn many_sends_share_at_most_pool_size_connections_and_pipeline() {
        let (port, seen) = scripted_relay(true).await;
        let pool = Arc::new(pool(port, 4));
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..60 {
            let pool = pool.clone();
            sends.spawn(async move {
                pool.send(&envelope(&format!("r{i}@example.org")), BODY, TIMEOUT)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            });
        }
        while let Some(sent) = sends.join_next().await {
            sent.expect("task").expect("sent");
        }
        assert_eq!(seen.messages.load(Ordering::SeqCst), 60);
        let connections = seen.connections.load(Ordering::SeqCst);
        assert!((1..=4).contains(&connections), "{connections} connections");
        assert_eq!(seen.pipelined.load(Ordering::SeqCst), 60);
    }

    #[tokio::test]
    async fn a_relay_without_pipelining_gets_one_command_at_a_time() {
        let (port, seen) = scripted_relay(false).await;
        let pool = pool(port, 2);
        for i in 0..5 {
            pool.send(&envelope(&format!("r{i}@example.org")), BODY, TIMEOUT)
                .await
                .expect("sent");
        }
        assert_eq!(seen.messages.load(Ordering::SeqCst), 5);
        assert_eq!(seen.out_of_turn.load(Ordering::SeqCst), 0);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_recipient_fails_alone_and_the_next_message_goes_through() {
        let (port, seen) = scripted_relay(true).await;
        let pool = pool(port, 1);
        let refused = pool
            .send(&envelope("bad@example.org"), BODY, TIMEOUT)
            .await
            .expect_err("refused at RCPT");
        match refused {
            SendFailure::Smtp(e) => {
                assert!(e.is_permanent(), "{e}");
                assert_eq!(e.status().map(u16::from), Some(550));
            }
            SendFailure::TimedOut => panic!("timed out instead of refused"),
        }
        pool.send(&envelope("good@example.org"), BODY, TIMEOUT)
            .await
            .expect("the next message is sent");
        assert_eq!(seen.messages.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_session_the_relay_ended_is_replaced_and_no_message_fails() {
        for cap in [Cap::Reply421(2), Cap::Close(2)] {
            for pipelining in [true, false] {
                let (port, seen) = capped_relay(pipelining, Some(cap)).await;
                let pool = pool(port, 1);
                for i in 0..6 {
                    pool.send(&envelope(&format!("r{i}@example.org")), BODY, TIMEOUT)
                        .await
                        .unwrap_or_else(|e| panic!("message {i}, pipelining {pipelining}: {e:?}"));
                }
                assert_eq!(seen.messages.load(Ordering::SeqCst), 6);
                assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
            }
        }
    }
}
