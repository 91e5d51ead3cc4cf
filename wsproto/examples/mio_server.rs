//! A non-blocking echo server: one thread, many connections, driven by
//! `mio` (edge-triggered epoll/kqueue). Text and binary messages are echoed
//! back, permessage-deflate is accepted (every message compressed, as the
//! Autobahn server does), and every path handles `WouldBlock`: the opening
//! handshake, `read`, `write` and `flush`.
//!
//! ```text
//! cargo run --release -p wsproto --example mio_server -- 127.0.0.1:9001
//! cargo run --release -p wsproto --example mio_server -- --listen 127.0.0.1:0
//! ```
//!
//! Prints `listening ADDR` on stdout once bound (the form the benchmark
//! scripts wait for).
//!
//! How each connection is driven, on every readiness event:
//! 1. a message refused with `WriteBufferFull` earlier is retried first (a
//!    refused message was not queued; while it waits, nothing more is read:
//!    that is the back-pressure on a client that sends faster than it reads);
//! 2. messages are read until `WouldBlock` (edge-triggered: readiness is
//!    reported once per change, so a handler must drain it) and echoed with
//!    `write`, which queues them;
//! 3. `flush` writes out what it can; `WRITABLE` interest is registered only
//!    while `has_pending_output()` says something is still queued.
//!
//! The WebSocket layer answers pings and echoes a Close itself (`read`
//! queues the answer); once the peer's Close was read and the echo is on
//! the wire, the server closes the TCP connection first (RFC 6455 §7.1.1).

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use wsproto::handshake::server::{error_response, upgrade, Accept, Request};
use wsproto::{Config, Error, Message, WebSocket};

const LISTENER: Token = Token(0);
/// A client that has not finished its request head after this long is
/// dropped (slowloris); checked at each wake-up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next(), args.next()) {
        (Some(flag), Some(addr)) if flag == "--listen" => addr,
        (Some(addr), None) => addr,
        (None, _) => "127.0.0.1:9001".into(),
        _ => {
            eprintln!("usage: mio_server [ADDR | --listen ADDR]");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&addr) {
        eprintln!("mio_server: {e}");
        std::process::exit(1);
    }
}

/// The socket under a connection, with room for the bytes of the HTTP
/// answer (101, or an error) that must precede everything else.
///
/// This is the head-buffering shim of the handshake: `upgrade` writes the
/// 101 answer into `head` (captured, since a non-blocking socket might not
/// take it all), and every later write sends what is left of `head` first,
/// so the answer and the frames after it leave in order whatever
/// `WouldBlock` interrupts.
struct Sock {
    tcp: TcpStream,
    head: Vec<u8>,
    head_sent: usize,
    capture: bool,
}

impl Sock {
    fn new(tcp: TcpStream) -> Sock {
        Sock {
            tcp,
            head: Vec::new(),
            head_sent: 0,
            capture: false,
        }
    }

    fn head_pending(&self) -> bool {
        self.head_sent < self.head.len()
    }

    /// Send what is left of the HTTP answer; `WouldBlock` if it cannot all go.
    fn send_head(&mut self) -> io::Result<()> {
        while self.head_pending() {
            match self.tcp.write(&self.head[self.head_sent..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.head_sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.head.is_empty() {
            self.head = Vec::new();
            self.head_sent = 0;
        }
        Ok(())
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.tcp.read_vectored(bufs)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.capture {
            self.head.extend_from_slice(buf);
            return Ok(buf.len());
        }
        self.send_head()?;
        self.tcp.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if self.capture {
            return bufs.iter().map(|b| self.write(b)).sum();
        }
        self.send_head()?;
        self.tcp.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.capture {
            self.send_head()?;
        }
        self.tcp.flush()
    }
}

enum State {
    /// Reading the request head: the bytes so far.
    Handshake {
        sock: Sock,
        buf: Vec<u8>,
    },
    /// Sending an HTTP error answer, then closing.
    Refusing(Sock),
    Open(Box<Open>),
}

struct Open {
    ws: WebSocket<Sock>,
    /// An echo refused with `WriteBufferFull`, to retry before reading more.
    stalled: Option<Message>,
    /// The close handshake is done on our side: close the TCP connection
    /// once the output is on the wire.
    closing: bool,
}

struct Conn {
    /// `None` only while `drive` has moved it out.
    state: Option<State>,
    interest: Interest,
    since: Instant,
}

/// What to do with a connection after driving it.
enum Next {
    Keep,
    Drop,
}

fn run(addr: &str) -> io::Result<()> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let config = Config {
        deflate: Some(wsproto::DeflateConfig {
            min_compress_size: 0,
            ..wsproto::DeflateConfig::default()
        }),
        ..Config::default()
    };
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening {}", listener.local_addr()?);
    io::stdout().flush()?;

    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next_token = 1usize;
    let mut events = Events::with_capacity(1024);
    loop {
        let timeout = (!conns.is_empty()).then_some(Duration::from_secs(1));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&poll, &mut listener, &mut conns, &mut next_token);
                continue;
            }
            let token = event.token();
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            match drive(conn, &config) {
                Next::Keep => {
                    if let Err(e) = update_interest(&poll, token, conn) {
                        eprintln!("mio_server: reregister: {e}");
                        conns.remove(&token);
                    }
                }
                Next::Drop => {
                    conns.remove(&token);
                }
            }
        }
        // Drop handshakes that take too long.
        let now = Instant::now();
        conns.retain(|_, c| {
            !matches!(c.state, Some(State::Handshake { .. })) || now - c.since < HANDSHAKE_TIMEOUT
        });
    }
}

fn accept_all(
    poll: &Poll,
    listener: &mut TcpListener,
    conns: &mut HashMap<Token, Conn>,
    next_token: &mut usize,
) {
    loop {
        match listener.accept() {
            Ok((mut tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                let token = Token(*next_token);
                *next_token += 1;
                if let Err(e) = poll
                    .registry()
                    .register(&mut tcp, token, Interest::READABLE)
                {
                    eprintln!("mio_server: register: {e}");
                    continue;
                }
                conns.insert(
                    token,
                    Conn {
                        state: Some(State::Handshake {
                            sock: Sock::new(tcp),
                            buf: Vec::new(),
                        }),
                        interest: Interest::READABLE,
                        since: Instant::now(),
                    },
                );
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors, typically: try again at the next event.
                eprintln!("mio_server: accept: {e}");
                return;
            }
        }
    }
}

/// Register `WRITABLE` only while output is waiting.
fn update_interest(poll: &Poll, token: Token, conn: &mut Conn) -> io::Result<()> {
    let pending = match &conn.state {
        None => false,
        Some(State::Handshake { sock, .. }) => sock.head_pending(),
        Some(State::Refusing(_)) => true,
        Some(State::Open(open)) => open.ws.has_pending_output() || open.ws.get_ref().head_pending(),
    };
    let wanted = if pending {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    if wanted != conn.interest {
        let tcp = match &mut conn.state {
            None => return Ok(()),
            Some(State::Handshake { sock, .. } | State::Refusing(sock)) => &mut sock.tcp,
            Some(State::Open(open)) => &mut open.ws.get_mut().tcp,
        };
        poll.registry().reregister(tcp, token, wanted)?;
        conn.interest = wanted;
    }
    Ok(())
}

fn is_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn is_ws_would_block(e: &Error) -> bool {
    matches!(e, Error::Io(io) if is_would_block(io))
}

fn is_buffer_full(e: &Error) -> bool {
    matches!(e, Error::WriteBufferFull)
}

/// Make all the progress possible on one connection.
fn drive(conn: &mut Conn, config: &Config) -> Next {
    loop {
        // A handshake turns into another state: loop until one waits.
        let Some(state) = conn.state.take() else {
            return Next::Drop;
        };
        match state {
            State::Handshake { sock, buf } => match handshake(sock, buf, config) {
                Ok(HandshakeStep::Waiting(sock, buf)) => {
                    conn.state = Some(State::Handshake { sock, buf });
                    return Next::Keep;
                }
                Ok(HandshakeStep::Upgraded(ws)) => {
                    conn.state = Some(State::Open(Box::new(Open {
                        ws,
                        stalled: None,
                        closing: false,
                    })));
                }
                Ok(HandshakeStep::Refused(sock)) => conn.state = Some(State::Refusing(sock)),
                Err(()) => return Next::Drop,
            },
            State::Refusing(mut sock) => {
                return match sock.send_head() {
                    Ok(()) => {
                        let _ = sock.tcp.shutdown(std::net::Shutdown::Write);
                        Next::Drop
                    }
                    Err(e) if is_would_block(&e) => {
                        conn.state = Some(State::Refusing(sock));
                        Next::Keep
                    }
                    Err(_) => Next::Drop,
                };
            }
            State::Open(mut open) => {
                let next = echo(&mut open);
                conn.state = Some(State::Open(open));
                return next;
            }
        }
    }
}

enum HandshakeStep {
    Waiting(Sock, Vec<u8>),
    Upgraded(WebSocket<Sock>),
    Refused(Sock),
}

/// Read what is there of the request head; once it is whole, answer it.
fn handshake(mut sock: Sock, mut buf: Vec<u8>, config: &Config) -> Result<HandshakeStep, ()> {
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > config.max_head_size {
            return Ok(refuse(sock, &Error::HeadTooLarge(config.max_head_size)));
        }
        match sock.tcp.read(&mut chunk) {
            Ok(0) => return Err(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_would_block(&e) => return Ok(HandshakeStep::Waiting(sock, buf)),
            Err(_) => return Err(()),
        }
    };
    if end > config.max_head_size {
        return Ok(refuse(sock, &Error::HeadTooLarge(config.max_head_size)));
    }
    let leftover = buf.split_off(end);
    let request = match Request::parse(&buf, config.max_headers) {
        Ok(r) => r,
        Err(e) => return Ok(refuse(sock, &e)),
    };
    if let Err(e) = request.check_upgrade() {
        return Ok(refuse(sock, &e));
    }
    // `upgrade` writes the 101 answer into the captured head; it goes out
    // with the first flush, before any frame.
    sock.capture = true;
    match upgrade(sock, &request, Accept::default(), config, leftover) {
        Ok(mut ws) => {
            ws.get_mut().capture = false;
            // Frames the client pipelined behind its request are already
            // buffered: the caller reads them now (edge-triggered).
            Ok(HandshakeStep::Upgraded(ws))
        }
        Err(_) => Err(()),
    }
}

fn refuse(mut sock: Sock, error: &Error) -> HandshakeStep {
    sock.capture = true;
    let _ = error_response(error).write_to(&mut sock);
    sock.capture = false;
    HandshakeStep::Refused(sock)
}

/// Retry a stalled echo, read and echo until `WouldBlock`, flush.
fn echo(open: &mut Open) -> Next {
    loop {
        if let Some(m) = open.stalled.take() {
            match open.ws.write_ref(m.as_ref()) {
                Ok(()) => {}
                Err(e) if is_buffer_full(&e) => {
                    // Not queued: flush, and retry the same message as
                    // soon as the socket took some of the queue.
                    open.stalled = Some(m);
                    match open.ws.flush() {
                        Ok(()) => continue,
                        Err(e) if is_ws_would_block(&e) => return Next::Keep,
                        Err(_) => return Next::Drop,
                    }
                }
                Err(_) => return Next::Drop,
            }
        }
        if !open.closing && read_until_blocked(open) == Reading::Stalled {
            continue;
        }
        return flush(open);
    }
}

#[derive(PartialEq, Eq)]
enum Reading {
    /// The socket has nothing more for now (or the conversation is over).
    Drained,
    /// An echo was refused with `WriteBufferFull`: stop reading.
    Stalled,
}

/// Read and echo messages until the socket would block.
fn read_until_blocked(open: &mut Open) -> Reading {
    loop {
        match open.ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                match open.ws.write_ref(m.as_ref()) {
                    Ok(()) => {}
                    Err(e) if is_buffer_full(&e) => {
                        open.stalled = Some(m);
                        return Reading::Stalled;
                    }
                    Err(_) => {
                        open.closing = true;
                        return Reading::Drained;
                    }
                }
            }
            // `read` answered the ping itself, or queued the Close echo.
            Ok(Message::Close(_)) => {
                open.closing = true;
                return Reading::Drained;
            }
            Ok(_) => {}
            Err(e) if is_ws_would_block(&e) => return Reading::Drained,
            Err(Error::Io(e)) if e.kind() == ErrorKind::Interrupted => {}
            // The close handshake is over, or the connection failed (`read`
            // queued a Close with the right code): send what is queued,
            // then close.
            Err(_) => {
                open.closing = true;
                return Reading::Drained;
            }
        }
    }
}

fn flush(open: &mut Open) -> Next {
    match open.ws.flush() {
        Ok(()) if open.closing => {
            let _ = open.ws.get_ref().tcp.shutdown(std::net::Shutdown::Write);
            Next::Drop
        }
        Ok(()) => Next::Keep,
        Err(e) if is_ws_would_block(&e) => Next::Keep,
        Err(_) => Next::Drop,
    }
}
