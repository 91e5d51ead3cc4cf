//! The chat session: connect, then one reader thread and (in interactive
//! mode) one stdin thread feed a channel; the main thread owns the
//! [`WsWriter`], prints what arrives, answers pings, sends on a timer and
//! runs the close handshake (RFC 6455 §7).
//!
//! The connection is split with [`WebSocket::split`](wsproto::WebSocket::split):
//! exactly one thread writes frames, so no lock is needed. The reading half
//! answers nothing by itself, so pings (§5.5.2) and the server's Close
//! (§5.5.1) travel to the writing side through the channel. Every frame the
//! writer sends is masked with a fresh random key (§5.3), as gobwas/ws
//! `MaskFrameInPlace` does: wsproto's client role does that in its writer.

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use wsproto::{
    CloseCode, CloseFrame, Config, Error, MaybeTlsStream, Message, WebSocket, WsReader, WsWriter,
};

use crate::cli::{chat_url, Args};
use crate::error::ChatError;

/// How long to wait for the server's reply after sending a Close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// After a failed write, how long to wait for the reader to say why (a
/// server Close or EOF usually explains it better than "broken pipe").
const VERDICT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest stdin line sent as one message; longer lines are split.
const MAX_LINE: usize = 64 * 1024;
/// Largest message accepted from the server: chat lines are short, and a
/// larger one fails the connection with 1009 (RFC 6455 §7.4.1) instead of
/// filling memory.
const MAX_MESSAGE: usize = 1 << 20;
/// Most of an HTTP refusal's body looked at, and most characters of its
/// first line shown.
const MAX_BODY_SHOWN: usize = 1024;
const MAX_LINE_SHOWN: usize = 200;

/// What the helper threads tell the main thread.
#[derive(Debug)]
enum Event {
    /// A message (or control frame) from the server.
    Received(Message),
    /// Reading from the server failed; the reader thread has stopped.
    ReadFailed(Error),
    /// A line typed on stdin (without its line ending).
    Line(String),
    /// Stdin reached its end.
    StdinEnd,
    /// Reading stdin failed.
    StdinFailed(io::Error),
    /// Ctrl-C or SIGTERM: close normally and leave.
    Interrupted(i32),
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending: on a timer (`next_send`) or as stdin lines arrive (`None`).
    Chatting { next_send: Option<Instant> },
    /// Done sending; printing what still arrives until the deadline.
    Lingering { until: Instant },
    /// Sent a Close (1000); waiting for the server's reply until the deadline.
    Closing { until: Instant },
}

/// Run a whole session; `Ok` means it ended with a normal close.
pub fn run(args: &Args) -> Result<(), ChatError> {
    let user = args.user.as_deref().unwrap_or("");
    let url = chat_url(&args.addr, user)?;
    let ws = connect(
        &url,
        args.token.as_deref(),
        args.deflate,
        args.handshake_timeout,
        args.ca_file.as_deref(),
    )?;
    tracing::info!(url = %url, user = %user, token = args.token.is_some(), "connected");
    let (reader, writer) = ws.split().map_err(ChatError::Connection)?;

    // Bounded: a reader faster than stdout blocks instead of growing memory.
    let (tx, rx) = mpsc::sync_channel(64);
    let reader_tx = tx.clone();
    thread::spawn(move || read_loop(reader, reader_tx));
    watch_signals(tx.clone()).map_err(ChatError::Signals)?;
    if args.reads_stdin() {
        // Blocks on stdin for the life of the process; it ends with it.
        thread::spawn(move || stdin_loop(tx));
    } else {
        drop(tx);
    }

    let now = Instant::now();
    let phase = match (args.count, args.reads_stdin()) {
        (Some(0), _) => Phase::Lingering {
            until: now + args.linger,
        },
        (_, true) => Phase::Chatting { next_send: None },
        (_, false) => Phase::Chatting {
            next_send: Some(now + args.interval),
        },
    };
    let mut session = Session {
        args,
        writer,
        rx,
        out: io::stdout().lock(),
        phase,
        sent: 0,
        finished: false,
    };
    session.main_loop()
}

/// On the first SIGINT or SIGTERM, tell the main loop (which closes with
/// 1000 and exits 0); a second one ends the process at once with 130.
fn watch_signals(tx: SyncSender<Event>) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals.forever();
            if let Some(signal) = signals.next() {
                tracing::debug!(signal, "interrupted; closing with 1000");
                if tx.send(Event::Interrupted(signal)).is_err() {
                    return;
                }
            }
            if signals.next().is_some() {
                eprintln!("chatcli: interrupted again; leaving without waiting");
                std::process::exit(130);
            }
        })?;
    Ok(())
}

/// Resolve, connect with a time-out, and do the opening handshake
/// (each within `timeout`), with `token` as a Bearer header if given,
/// offering permessage-deflate if `deflate`; over TLS for `wss://`,
/// trusting `ca_file` if given, else the WebPKI roots.
fn connect(
    url: &str,
    token: Option<&str>,
    deflate: bool,
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<WebSocket<MaybeTlsStream>, ChatError> {
    let bad_addr = |source| ChatError::BadAddr {
        addr: url.to_owned(),
        source,
    };
    let mut request = wsproto::ClientRequest::new(url).map_err(bad_addr)?;
    if let Some(token) = token {
        request = request
            .with_header("Authorization", &format!("Bearer {}", token.trim()))
            .map_err(|_| ChatError::BadToken)?;
    }
    let host = request.url.host.as_str();
    let port = request.url.port;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|source| ChatError::Resolve {
            host: host.to_owned(),
            source,
        })?;
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address for this host");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                last_error = e;
            }
        }
    }
    let stream = stream.ok_or_else(|| ChatError::Connect {
        addr: request.url.host_header.clone(),
        source: last_error,
    })?;
    let io_error = |e: io::Error| ChatError::Handshake {
        url: url.to_owned(),
        source: Error::Io(e),
    };
    stream.set_nodelay(true).map_err(io_error)?;
    let config = Config {
        max_frame_size: MAX_MESSAGE,
        max_message_size: MAX_MESSAGE,
        deflate: deflate.then(wsproto::DeflateConfig::default),
        ..Config::default()
    };
    // A server that accepts TCP but never answers must not hang us: the
    // deadline covers the whole handshake and gives HandshakeTimedOut.
    let deadline = Instant::now() + timeout;
    let stream = if request.url.tls {
        let tls = match ca_file {
            Some(path) => {
                wsproto::tls::client_config_with_ca_file(path).map_err(ChatError::CaFile)?
            }
            None => wsproto::tls::default_client_config(),
        };
        let tls =
            wsproto::tls::TlsStream::connect(stream, &request.url.host, tls).map_err(io_error)?;
        MaybeTlsStream::Tls(Box::new(tls))
    } else {
        MaybeTlsStream::Plain(stream)
    };
    let (ws, response) = wsproto::ClientHandshake::new(stream, &request, &config)
        .and_then(|h| h.handshake_with_deadline(deadline))
        .map_err(|e| match e {
            Error::HttpStatus { status, body } => ChatError::Refused {
                status,
                reason: reason_phrase(status),
                body: shown_body(&body),
            },
            Error::HandshakeTimedOut => ChatError::HandshakeTimedOut {
                url: url.to_owned(),
                timeout,
            },
            Error::UnexpectedEof | Error::ConnectionClosed => ChatError::ClosedDuringHandshake {
                url: url.to_owned(),
            },
            Error::Certificate(problem) => ChatError::Certificate {
                url: url.to_owned(),
                hint: match (&problem, ca_file) {
                    (wsproto::CertificateProblem::UnknownIssuer, None) => {
                        " (give the CA that signed it with --ca-file)"
                    }
                    _ => "",
                },
                problem,
            },
            source => ChatError::Handshake {
                url: url.to_owned(),
                source,
            },
        })?;
    tracing::debug!(
        status = response.status,
        extensions = response.header("sec-websocket-extensions").unwrap_or(""),
        "upgraded"
    );
    ws.get_ref().set_read_timeout(None).map_err(io_error)?;
    Ok(ws)
}

/// The first line of the refusal body, bounded and escaped (it comes from
/// the server, and goes to a terminal).
fn shown_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_BODY_SHOWN)]);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => "(no explanation in the body)".to_owned(),
        Some(line) => {
            let mut shown: String = line.chars().take(MAX_LINE_SHOWN).collect();
            if shown.len() < line.len() {
                shown.push('…');
            }
            chatcommon::escape_for_terminal(&shown)
        }
    }
}

/// The standard reason phrase of an HTTP status (RFC 9110 §15), for the
/// status line shown to the user.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The reader thread: forward everything, stop after a Close or an error.
fn read_loop(mut reader: WsReader<MaybeTlsStream>, tx: SyncSender<Event>) {
    loop {
        match reader.read() {
            Ok(message) => {
                let last = matches!(message, Message::Close(_));
                if tx.send(Event::Received(message)).is_err() || last {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Event::ReadFailed(e));
                return;
            }
        }
    }
}

/// The stdin thread: one event per line (bounded length), then the end.
fn stdin_loop(tx: SyncSender<Event>) {
    let mut input = io::stdin().lock();
    loop {
        let mut buf = Vec::new();
        let event = match input
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => Event::StdinEnd,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                Event::Line(String::from_utf8_lossy(&buf).into_owned())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Event::StdinFailed(e),
        };
        let last = !matches!(event, Event::Line(_));
        if tx.send(event).is_err() || last {
            return;
        }
    }
}

struct Session<'a> {
    args: &'a Args,
    writer: WsWriter<MaybeTlsStream>,
    rx: Receiver<Event>,
    out: io::StdoutLock<'static>,
    phase: Phase,
    sent: u64,
    /// Set when a failed write turned out to follow a normal close.
    finished: bool,
}

impl Session<'_> {
    fn main_loop(&mut self) -> Result<(), ChatError> {
        loop {
            let event = match self.deadline() {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(wait) {
                        Ok(event) => Some(event),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return Err(ChatError::Lost),
                    }
                }
                None => Some(self.rx.recv().map_err(|_| ChatError::Lost)?),
            };
            let done = match event {
                Some(event) => self.handle(event)?,
                None => self.on_timer()?,
            };
            if done || self.finished {
                return Ok(());
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Chatting { next_send } => next_send,
            Phase::Lingering { until } | Phase::Closing { until } => Some(until),
        }
    }

    /// A deadline passed. Returns whether the session is over.
    fn on_timer(&mut self) -> Result<bool, ChatError> {
        let now = Instant::now();
        match self.phase {
            Phase::Chatting {
                next_send: Some(at),
            } => {
                self.send_text(self.args.message.clone())?;
                if let Phase::Chatting { .. } = self.phase {
                    // Keep the rhythm, but never burst to catch up.
                    let next = (at + self.args.interval).max(now);
                    self.phase = Phase::Chatting {
                        next_send: Some(next),
                    };
                }
                Ok(false)
            }
            Phase::Chatting { next_send: None } => Ok(false),
            Phase::Lingering { .. } => {
                tracing::debug!("closing with 1000");
                self.send(Message::close(CloseCode::Normal, ""))?;
                self.phase = Phase::Closing {
                    until: now + CLOSE_TIMEOUT,
                };
                Ok(false)
            }
            Phase::Closing { .. } => {
                tracing::warn!(
                    timeout = ?CLOSE_TIMEOUT,
                    "the server did not answer the Close; leaving anyway"
                );
                Ok(true)
            }
        }
    }

    /// Send one chat message, then start lingering if that was the last.
    fn send_text(&mut self, text: String) -> Result<(), ChatError> {
        self.send(Message::Text(text))?;
        self.sent += 1;
        tracing::debug!(sent = self.sent, "sent");
        if self.args.count.is_some_and(|n| self.sent >= n) {
            self.start_lingering();
        }
        Ok(())
    }

    fn start_lingering(&mut self) {
        if let Phase::Chatting { .. } = self.phase {
            self.phase = Phase::Lingering {
                until: Instant::now() + self.args.linger,
            };
        }
    }

    /// Handle one event. Returns whether the session is over.
    fn handle(&mut self, event: Event) -> Result<bool, ChatError> {
        match event {
            Event::Received(Message::Text(text)) => self.print(&text).map(|()| false),
            Event::Received(Message::Binary(data)) => {
                self.print(&String::from_utf8_lossy(&data)).map(|()| false)
            }
            // wsproto's reader answers pings itself (RFC 6455 §5.5.2).
            Event::Received(Message::Ping(_) | Message::Pong(_)) => Ok(false),
            Event::Received(Message::Close(frame)) => self.on_close(frame),
            Event::ReadFailed(e) => self.on_read_error(e),
            Event::Line(line) => {
                if matches!(self.phase, Phase::Chatting { .. }) && !line.is_empty() {
                    self.send_text(line)?;
                }
                Ok(false)
            }
            Event::StdinEnd => {
                tracing::debug!("end of stdin");
                self.start_lingering();
                Ok(false)
            }
            Event::StdinFailed(e) => Err(ChatError::Stdin(e)),
            Event::Interrupted(signal) => {
                if let Phase::Closing { .. } = self.phase {
                    return Ok(false);
                }
                tracing::info!(signal, "interrupted; closing with 1000");
                self.send(Message::close(CloseCode::Normal, ""))?;
                self.phase = Phase::Closing {
                    until: Instant::now() + CLOSE_TIMEOUT,
                };
                Ok(false)
            }
        }
    }

    /// The server's Close: the reply to ours, or the server ending the
    /// session, which wsproto's reader has echoed (RFC 6455 §5.5.1).
    fn on_close(&mut self, frame: Option<CloseFrame>) -> Result<bool, ChatError> {
        let (code, reason) = match &frame {
            Some(f) => (u16::from(f.code), f.reason.clone()),
            None => (1005, String::new()),
        };
        if let Phase::Closing { .. } = self.phase {
            tracing::info!(sent = self.sent, code, "closed normally");
            return Ok(true);
        }
        match code {
            1000 | 1001 | 1005 => {
                tracing::info!(code, reason = %reason, "the server closed the connection");
                Ok(true)
            }
            _ => Err(ChatError::Kicked { code, reason }),
        }
    }

    fn on_read_error(&mut self, e: Error) -> Result<bool, ChatError> {
        if let Some(code) = e.close_code() {
            // wsproto's reader has failed the connection with this code
            // (RFC 6455 §7.1.7).
            return Err(ChatError::Protocol {
                code: u16::from(code),
                source: e,
            });
        }
        if let Phase::Closing { .. } = self.phase {
            tracing::warn!(error = %e, "the connection ended before the server answered our Close");
            return Ok(true);
        }
        match e {
            Error::UnexpectedEof | Error::ConnectionClosed => Err(ChatError::Lost),
            other => Err(ChatError::Connection(other)),
        }
    }

    /// Send a frame. If the write fails, the reader usually knows why (the
    /// server closed or kicked us just before), so give it a moment to say.
    fn send(&mut self, message: Message) -> Result<(), ChatError> {
        let Err(error) = self.writer.send(message) else {
            return Ok(());
        };
        tracing::debug!(error = %error, "write failed; asking the reader why");
        let until = Instant::now() + VERDICT_TIMEOUT;
        while let Ok(event) = self
            .rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            let over = match event {
                Event::Received(Message::Close(frame)) => self.on_close(frame)?,
                Event::ReadFailed(e) => self.on_read_error(e)?,
                Event::Received(Message::Text(t)) => {
                    self.print(&t)?;
                    false
                }
                _ => false,
            };
            if over {
                self.finished = true;
                return Ok(());
            }
        }
        Err(ChatError::Connection(error))
    }

    /// Print one received message as a line, flushed at once so that a
    /// pipe sees it as it arrives. Control characters are escaped: a
    /// message cannot print a second line (that would look like another
    /// message, from another sender) nor reach the terminal as an escape
    /// sequence.
    fn print(&mut self, text: &str) -> Result<(), ChatError> {
        let text = chatcommon::escape_for_terminal(text);
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(ChatError::Stdout)
    }
}
