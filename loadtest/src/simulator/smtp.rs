//! A plain SMTP server (RFC 5321, no TLS or AUTH): one task per connection, many messages per
//! connection, pipelining-safe because replies are written strictly in command order.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;

/// Replies are buffered and flushed when the client has nothing more in flight, so the
/// replies to pipelined commands (RFC 2920) go back in one write, as a real relay does.
type Writer = BufWriter<OwnedWriteHalf>;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::gate::{Fault, Gate};
use super::limits::{Demand, LimitScope};
use super::mime;
use super::recorder::{Channel, NewMessage};

pub(crate) const MAX_MESSAGE_BYTES: usize = 10_485_760;
/// RFC 5321 says 512 for commands and 1000 for text lines; be generous with text.
const MAX_COMMAND_LINE: usize = 4096;
const MAX_TEXT_LINE: usize = 64 * 1024;
const MAX_RECIPIENTS: usize = 1000;
/// RFC 5321 section 4.5.3.2 suggests five minutes of patience between commands.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) async fn serve(
    listener: TcpListener,
    gate: Gate,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let session = Session::new(gate.clone(), peer);
                tracker.spawn(session.run(stream, shutdown.clone()));
            }
            Err(e) => {
                // Usually fd exhaustion; back off briefly instead of spinning on the error.
                tracing::warn!(error = %e, "smtp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Reads one line (with its line ending) into `out`, discarding the rest of a line longer than
/// `max` so the connection stays in sync.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    out.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if out.len() + take > max {
                too_long = true;
                out.clear();
            } else {
                out.extend_from_slice(&available[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `<addr> PARAMS` after `FROM:` / `TO:`: the address (source route dropped) and the params.
fn parse_path(arg: &str) -> Option<(String, &str)> {
    let arg = arg.trim_start();
    let (addr, params) = if let Some(rest) = arg.strip_prefix('<') {
        let close = rest.find('>')?;
        (&rest[..close], &rest[close + 1..])
    } else {
        // Lenient: some clients omit the brackets.
        arg.split_once(' ').unwrap_or((arg, ""))
    };
    let addr = addr.rsplit_once(':').map_or(addr, |(_, a)| a);
    Some((addr.trim().to_owned(), params.trim()))
}

/// Strips a case-insensitive `prefix` (like `FROM:`) from `arg`.
fn strip_prefix_ci<'a>(arg: &'a str, prefix: &str) -> Option<&'a str> {
    let head = arg.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &arg[prefix.len()..])
}

/// How an SMTP server says each refusal. 421 also closes the connection (RFC 5321 3.8).
fn refusal(fault: Fault) -> &'static str {
    match fault {
        Fault::Outage => "421 4.3.2 Service not available, closing transmission channel\r\n",
        Fault::ServerError => "451 4.3.0 Temporary server error, try again later\r\n",
        Fault::Throttle { .. } | Fault::RateLimited { .. } => {
            "421 4.7.0 Too many messages, try again later\r\n"
        }
        Fault::Permanent => "550 5.1.1 Mailbox unavailable\r\n",
    }
}

struct Session {
    gate: Gate,
    peer: SocketAddr,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

enum Flow {
    Continue,
    Quit,
}

impl Session {
    fn new(gate: Gate, peer: SocketAddr) -> Self {
        Self {
            gate,
            peer,
            helo: None,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    async fn run(mut self, stream: TcpStream, shutdown: CancellationToken) {
        let peer = self.peer;
        tracing::debug!(%peer, "smtp connection");
        match self.converse(stream, shutdown).await {
            Ok(()) => tracing::debug!(%peer, "smtp connection closed"),
            Err(e) => tracing::debug!(%peer, error = %e, "smtp connection ended"),
        }
    }

    async fn converse(&mut self, stream: TcpStream, shutdown: CancellationToken) -> io::Result<()> {
        let (read, write) = stream.into_split();
        let mut write = BufWriter::new(write);
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();
        if let Err(fault) = self.gate.check_outage(Channel::Email) {
            reply(&mut write, refusal(fault)).await?;
            return write.flush().await;
        }
        reply(&mut write, "220 pushfleet-sim ESMTP\r\n").await?;
        loop {
            if reader.buffer().is_empty() {
                write.flush().await?;
            }
            let read = tokio::select! {
                () = shutdown.cancelled() => {
                    reply(&mut write, "421 4.3.2 Service shutting down\r\n").await?;
                    return write.flush().await;
                }
                read = tokio::time::timeout(
                    IDLE_TIMEOUT,
                    read_line(&mut reader, &mut line, MAX_COMMAND_LINE),
                ) => read,
            };
            let Ok(read) = read else {
                reply(&mut write, "421 4.4.2 Idle timeout\r\n").await?;
                return write.flush().await;
            };
            match read? {
                Line::Eof => return Ok(()),
                Line::TooLong => reply(&mut write, "500 5.5.2 Line too long\r\n").await?,
                Line::Complete => {
                    let command = String::from_utf8_lossy(trim_line_end(&line)).into_owned();
                    let flow = self.command(&command, &mut reader, &mut write).await?;
                    if let Flow::Quit = flow {
                        return write.flush().await;
                    }
                }
            }
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    async fn command<R: AsyncBufRead + Unpin>(
        &mut self,
        line: &str,
        reader: &mut R,
        write: &mut Writer,
    ) -> io::Result<Flow> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        let response: String = match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => "501 5.5.4 Domain name required\r\n".into(),
            "EHLO" => {
                self.helo = Some(arg.to_owned());
                self.reset_transaction();
                format!(
                    "250-pushfleet-sim greets {arg}\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
                     250 SIZE {MAX_MESSAGE_BYTES}\r\n"
                )
            }
            "HELO" => {
                self.helo = Some(arg.to_owned());
                self.reset_transaction();
                "250 pushfleet-sim\r\n".into()
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => {
                if self.mail_from.is_none() || self.rcpt_to.is_empty() {
                    "503 5.5.1 Bad sequence of commands\r\n".into()
                } else {
                    reply(write, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                    // The client waits for 354 before it sends the message.
                    write.flush().await?;
                    self.data(reader).await?
                }
            }
            "RSET" => {
                self.reset_transaction();
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "QUIT" => {
                reply(write, "221 2.0.0 Bye\r\n").await?;
                return Ok(Flow::Quit);
            }
            "VRFY" | "EXPN" | "HELP" | "TURN" | "ETRN" | "BDAT" | "STARTTLS" | "AUTH" => {
                "502 5.5.1 Command not implemented\r\n".into()
            }
            _ => "500 5.5.2 Command unrecognized\r\n".into(),
        };
        reply(write, &response).await?;
        // 421 means the server closes the channel.
        if response.starts_with("421") {
            return Ok(Flow::Quit);
        }
        Ok(Flow::Continue)
    }

    fn mail(&mut self, arg: &str) -> String {
        if self.helo.is_none() || self.mail_from.is_some() {
            return "503 5.5.1 Bad sequence of commands\r\n".into();
        }
        let Some((from, params)) = strip_prefix_ci(arg, "FROM:").and_then(parse_path) else {
            return "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into();
        };
        let declared_size = params
            .split_ascii_whitespace()
            .find_map(|p| strip_prefix_ci(p, "SIZE=").and_then(|n| n.parse::<usize>().ok()));
        if declared_size.is_some_and(|n| n > MAX_MESSAGE_BYTES) {
            return "552 5.3.4 Message size exceeds fixed limit\r\n".into();
        }
        if let Err(fault) = self.gate.check_outage(Channel::Email) {
            return refusal(fault).into();
        }
        self.mail_from = Some(from);
        "250 2.1.0 OK\r\n".into()
    }

    fn rcpt(&mut self, arg: &str) -> String {
        if self.mail_from.is_none() {
            return "503 5.5.1 Bad sequence of commands\r\n".into();
        }
        let Some((to, _)) = strip_prefix_ci(arg, "TO:").and_then(parse_path) else {
            return "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into();
        };
        if to.is_empty() {
            return "501 5.1.3 Empty recipient address\r\n".into();
        }
        if self.rcpt_to.len() >= MAX_RECIPIENTS {
            return "452 4.5.3 Too many recipients\r\n".into();
        }
        // Like a real relay, an unknown mailbox is refused per recipient, at RCPT.
        if let Err(fault) = self.gate.check_recipients(Channel::Email, &[&to]) {
            return refusal(fault).into();
        }
        self.rcpt_to.push(to);
        "250 2.1.5 OK\r\n".into()
    }

    /// Reads the message up to `CRLF.CRLF`, undoing dot-stuffing, then records it.
    async fn data<R: AsyncBufRead + Unpin>(&mut self, reader: &mut R) -> io::Result<String> {
        let mut content = Vec::new();
        let mut line = Vec::new();
        let mut too_big = false;
        let mut too_long = false;
        loop {
            match read_line(reader, &mut line, MAX_TEXT_LINE).await? {
                Line::Eof => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during DATA",
                    ))
                }
                Line::TooLong => too_long = true,
                Line::Complete => {
                    if trim_line_end(&line) == b"." {
                        break;
                    }
                    let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
                    if content.len() + unstuffed.len() > MAX_MESSAGE_BYTES {
                        too_big = true;
                    } else if !too_big {
                        content.extend_from_slice(unstuffed);
                    }
                }
            }
        }
        let transaction = (self.mail_from.take(), std::mem::take(&mut self.rcpt_to));
        if too_big {
            return Ok("552 5.3.4 Message size exceeds fixed limit\r\n".into());
        }
        if too_long {
            return Ok("500 5.5.2 Line too long\r\n".into());
        }
        // The CRLF before the final dot ends the last line; it is not part of the content.
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(&content);
        let (mail_from, rcpt_to) = transaction;
        let mail_from = mail_from.unwrap_or_default();
        // Delay before answering, like a relay that is slow to say 250 (or to refuse).
        self.gate.latency(Channel::Email).apply().await;
        let weight = u32::try_from(rcpt_to.len()).unwrap_or(u32::MAX);
        let account = Demand::new(
            LimitScope::EmailAccount,
            format!("smtp:{mail_from}"),
            weight,
        );
        // Recipients were checked one by one at RCPT.
        if let Err(fault) = self.gate.judge(Channel::Email, &[], &[account]) {
            return Ok(refusal(fault).into());
        }
        let queue_id = self.record(content, mail_from, rcpt_to);
        Ok(format!("250 2.0.0 OK queued as {queue_id}\r\n"))
    }

    fn record(&self, content: &[u8], mail_from: String, rcpt_to: Vec<String>) -> String {
        let mail = mime::parse(content);
        let headers: serde_json::Map<String, serde_json::Value> =
            mail.headers
                .iter()
                .rev()
                .fold(Default::default(), |mut map, (name, value)| {
                    // Folding in reverse leaves the first occurrence of a repeated header.
                    map.insert(name.clone(), json!(value));
                    map
                });
        let raw = json!({
            "headers": headers,
            "html": mail.html,
            "mail_from": mail_from,
            "rcpt_to": rcpt_to,
            "helo": self.helo,
        });
        let body = mail.text.unwrap_or_default();
        let recipients = rcpt_to
            .iter()
            .map(|to| NewMessage {
                recipient: to.clone(),
                subject: mail.subject.clone(),
                body: body.clone(),
                raw: raw.clone(),
            })
            .collect();
        let duplicate =
            self.gate
                .recorder
                .record(Channel::Email, mail.message_id.as_deref(), recipients);
        let queue_id = uuid::Uuid::new_v4().simple().to_string();
        tracing::debug!(
            peer = %self.peer,
            %queue_id,
            recipients = rcpt_to.len(),
            message_id = mail.message_id.as_deref().unwrap_or(""),
            duplicate,
            "smtp message recorded"
        );
        queue_id
    }
}

async fn reply(write: &mut Writer, response: &str) -> io::Result<()> {
    write.write_all(response.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("<a@b.c> SIZE=10 BODY=8BITMIME"),
            Some(("a@b.c".to_owned(), "SIZE=10 BODY=8BITMIME"))
        );
        assert_eq!(parse_path("<>"), Some((String::new(), "")));
        assert_eq!(
            parse_path("<@relay.example:user@host.example>"),
            Some(("user@host.example".to_owned(), ""))
        );
        assert_eq!(parse_path("<unclosed"), None);
        assert_eq!(strip_prefix_ci("from:<x>", "FROM:"), Some("<x>"));
        assert_eq!(strip_prefix_ci("TO", "FROM:"), None);
    }
}
