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
//!    reported once per change, so a handler must drain it), or until a
//!    read came back short of its buffer (the socket was drained then: see
//!    `Socket`), and echoed with `write`, which queues them;
//! 3. `flush` writes out what it can; `WRITABLE` interest is registered only
//!    while `has_pending_output()` says something is still queued.
//!
//! The opening handshake is wsproto's resumable `ServerHandshake`: a call
//! that meets `WouldBlock` hands the handshake back with what it read and
//! what it still has to write, and is resumed at the next readiness event
//! (`wants_read` says which one to wait for). A bad request is answered
//! (400, 426, ...) by the handshake itself.
//!
//! The WebSocket layer answers pings and echoes a Close itself (`read`
//! queues the answer); once the peer's Close was read and the echo is on
//! the wire, the server closes the TCP connection first (RFC 6455 §7.1.1).

use std::collections::HashMap;
use std::io::{self, ErrorKind, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use wsproto::{Config, Error, HandshakeError, Message, ServerHandshake, WebSocket};

const LISTENER: Token = Token(0);
/// A client that has not finished its handshake after this long is
/// dropped (slowloris); checked at each wake-up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next(), args.next()) {
        (Some(flag), Some(addr)) if flag == "--listen" => addr,
        (Some(addr), None) if addr != "--listen" => addr,
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

enum State {
    /// The opening handshake, resumable.
    Handshake(Box<ServerHandshake<Socket>>),
    Open(Box<Open>),
}

struct Open {
    ws: WebSocket<Socket>,
    /// An echo refused with `WriteBufferFull`, to retry before reading more.
    stalled: Option<Message>,
    /// The conversation is over on our side: close the TCP connection
    /// once the output (the Close echo, say) is on the wire.
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

/// A connection's socket that remembers whether its last read came back
/// short of the buffer: the kernel had no more bytes then, so anything
/// that arrives later is a new edge and a new readiness event, and reading
/// again now would only be told `WouldBlock`. [`read_until_blocked`]
/// skips that system call (one of the three an echo costs otherwise).
struct Socket {
    tcp: TcpStream,
    drained: bool,
}

impl Socket {
    fn new(tcp: TcpStream) -> Socket {
        Socket {
            tcp,
            drained: false,
        }
    }

    fn note(&mut self, result: io::Result<usize>, asked: usize) -> io::Result<usize> {
        // An end of stream (0) is not "drained": the reader must see it.
        self.drained = matches!(result, Ok(n) if n > 0 && n < asked);
        result
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.tcp.read(buf);
        self.note(result, buf.len())
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let asked = bufs.iter().map(|b| b.len()).sum();
        let result = self.tcp.read_vectored(bufs);
        self.note(result, asked)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

fn run(addr: &str) -> io::Result<()> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    // permessage-deflate on, every message compressed (as the Autobahn
    // server does, so the 12.*/13.* cases exercise the compressor).
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
    // Set when `accept` failed (out of descriptors): retried at each
    // wake-up, since the edge-triggered listener reports no new edge for
    // connections already waiting.
    let mut accept_backlog = false;
    loop {
        let timeout = (accept_backlog || !conns.is_empty()).then_some(Duration::from_millis(
            if accept_backlog { 10 } else { 1000 },
        ));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if accept_backlog {
            accept_backlog =
                !accept_all(&poll, &mut listener, &mut conns, &mut next_token, &config);
        }
        for event in events.iter() {
            let token = event.token();
            if token == LISTENER {
                accept_backlog =
                    !accept_all(&poll, &mut listener, &mut conns, &mut next_token, &config);
                continue;
            }
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            match drive(conn) {
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
        let now = Instant::now();
        conns.retain(|_, c| {
            !matches!(c.state, Some(State::Handshake(_))) || now - c.since < HANDSHAKE_TIMEOUT
        });
    }
}

/// Accept every waiting connection; false if `accept` failed and should
/// be retried.
fn accept_all(
    poll: &Poll,
    listener: &mut TcpListener,
    conns: &mut HashMap<Token, Conn>,
    next_token: &mut usize,
    config: &Config,
) -> bool {
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
                let hs = ServerHandshake::new(Socket::new(tcp), config);
                conns.insert(
                    token,
                    Conn {
                        state: Some(State::Handshake(Box::new(hs))),
                        interest: Interest::READABLE,
                        since: Instant::now(),
                    },
                );
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors, typically.
                eprintln!("mio_server: accept: {e}");
                return false;
            }
        }
    }
}

/// Wait for what the connection needs: the handshake reads the request
/// or writes the answer; an open connection always reads, and registers
/// `WRITABLE` only while output is pending.
fn update_interest(poll: &Poll, token: Token, conn: &mut Conn) -> io::Result<()> {
    let wanted = match &conn.state {
        None => return Ok(()),
        Some(State::Handshake(hs)) if hs.wants_read() => Interest::READABLE,
        Some(State::Handshake(_)) => Interest::WRITABLE,
        Some(State::Open(open)) if open.ws.has_pending_output() => {
            Interest::READABLE | Interest::WRITABLE
        }
        Some(State::Open(_)) => Interest::READABLE,
    };
    if wanted != conn.interest {
        let tcp = match &mut conn.state {
            None => return Ok(()),
            Some(State::Handshake(hs)) => &mut hs.get_mut().tcp,
            Some(State::Open(open)) => &mut open.ws.get_mut().tcp,
        };
        poll.registry().reregister(tcp, token, wanted)?;
        conn.interest = wanted;
    }
    Ok(())
}

fn is_would_block(e: &Error) -> bool {
    matches!(e, Error::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// Make all the progress possible on one connection.
fn drive(conn: &mut Conn) -> Next {
    let Some(state) = conn.state.take() else {
        return Next::Drop;
    };
    let mut open = match state {
        State::Handshake(hs) => match hs.handshake() {
            // Frames the client pipelined behind its request may already
            // be buffered: `echo` reads them now (edge-triggered).
            Ok(ws) => Box::new(Open {
                ws,
                stalled: None,
                closing: false,
            }),
            Err(HandshakeError::Interrupted(hs)) => {
                conn.state = Some(State::Handshake(Box::new(hs)));
                return Next::Keep;
            }
            Err(HandshakeError::Failure(_)) => return Next::Drop,
        },
        State::Open(open) => open,
    };
    let next = echo(&mut open);
    conn.state = Some(State::Open(open));
    next
}

/// Retry a stalled echo, read and echo until `WouldBlock`, flush.
fn echo(open: &mut Open) -> Next {
    loop {
        if let Some(m) = open.stalled.take() {
            match open.ws.write_ref(m.as_ref()) {
                Ok(()) => {}
                Err(Error::WriteBufferFull) => {
                    // Not queued: flush, and retry the same message as
                    // soon as the socket took some of the queue.
                    open.stalled = Some(m);
                    match open.ws.flush() {
                        Ok(()) => continue,
                        Err(e) if is_would_block(&e) => return Next::Keep,
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
    // This readiness event may bring bytes: read at least once.
    open.ws.get_mut().drained = false;
    loop {
        if open.ws.get_ref().drained && !open.ws.has_buffered_input() {
            // The socket had no more at the last read (see `Socket`).
            return Reading::Drained;
        }
        match open.ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                match open.ws.write_ref(m.as_ref()) {
                    // The echo is queued (copied or masked into the
                    // queue, or written): the next message is read into
                    // this buffer, with no allocation.
                    Ok(()) => open.ws.recycle(m.into_data()),
                    Err(Error::WriteBufferFull) => {
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
            Err(e) if is_would_block(&e) => return Reading::Drained,
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
            let _ = open.ws.get_ref().tcp.shutdown(Shutdown::Write);
            Next::Drop
        }
        Ok(()) => Next::Keep,
        Err(e) if is_would_block(&e) => Next::Keep,
        Err(_) => Next::Drop,
    }
}
