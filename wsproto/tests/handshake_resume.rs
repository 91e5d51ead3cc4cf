//! Issue 11: resumable handshakes (defect 2), header injection (defect 4)
//! and handshake time-outs.
//!
//! - Streams that return `WouldBlock` before every byte, or on every other
//!   call, for both roles: the head arriving in pieces is accepted (never a
//!   400), the `101` is written completely, the client writes exactly one
//!   GET with one key.
//! - A real non-blocking `TcpStream` whose request head arrives in two
//!   packets 100 ms apart.
//! - URLs and header fields that could inject a line are refused with
//!   nothing written.
//! - Handshake time-outs are bounded and restore the stream's own
//!   time-outs.

mod common;

use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use sha1::{Digest, Sha1};
use wsproto::ClientHandshake;
use wsproto::HandshakeError;
use wsproto::{
    accept_with, client_handshake, connect_with, ClientRequest, Config, Error, Message, Response,
    WsUrl,
};
use wsproto::{accept_with_deadline, Accept, ServerHandshake};

/// The request of RFC 6455 §1.3.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// The answer to [`RFC_REQUEST`].
const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

fn expected_accept(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Makes a scripted peer's answer from what was written to it.
type Responder = Box<dyn FnMut(&[u8]) -> Vec<u8>>;

/// How a [`Choppy`] stream moves bytes between its `WouldBlock`s.
#[derive(Clone, Copy, Debug)]
enum Block {
    /// One byte per call, so a `WouldBlock` before every byte.
    Always,
    /// Every other call is a `WouldBlock`; the others move up to 7 bytes.
    EveryOther,
}

/// An in-memory non-blocking peer: every other read and write is a
/// `WouldBlock` (until `never_block` is set), reads give at most
/// `max_read` bytes and writes take at most `max_write`. `respond` makes
/// the input from what was written once a whole HTTP head has been
/// written (a scripted client or server).
struct Choppy {
    input: Vec<u8>,
    output: Vec<u8>,
    never_block: bool,
    blocked_last_read: bool,
    blocked_last_write: bool,
    max_read: usize,
    max_write: usize,
    respond: Option<Responder>,
    would_blocks: usize,
}

impl Choppy {
    fn new(input: &[u8], block: Block) -> Choppy {
        let chunk = match block {
            Block::Always => 1,
            Block::EveryOther => 7,
        };
        Choppy {
            input: input.to_vec(),
            output: Vec::new(),
            never_block: false,
            blocked_last_read: false,
            blocked_last_write: false,
            max_read: chunk,
            max_write: chunk,
            respond: None,
            would_blocks: 0,
        }
    }

    /// Whether this call blocks: every other one.
    fn block_now(never: bool, last: &mut bool) -> bool {
        *last = !never && !*last;
        *last
    }
}

impl std::fmt::Debug for Choppy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Choppy")
            .field("output", &String::from_utf8_lossy(&self.output))
            .field("would_blocks", &self.would_blocks)
            .finish_non_exhaustive()
    }
}

impl Read for Choppy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(respond) = self.respond.as_mut() {
            if self.output.windows(4).any(|w| w == b"\r\n\r\n") {
                self.input = respond(&self.output);
                self.respond = None;
            }
        }
        if Choppy::block_now(self.never_block, &mut self.blocked_last_read) || self.input.is_empty()
        {
            self.would_blocks += 1;
            // A peer with nothing to say yet blocks; it never ends the stream.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.max_read).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Ok(n)
    }
}

impl Write for Choppy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if Choppy::block_now(self.never_block, &mut self.blocked_last_write) {
            self.would_blocks += 1;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.max_write);
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Served<'a> = (
    Result<wsproto::WebSocket<&'a mut Choppy>, Error>,
    usize,
    usize,
);

/// Drive a server handshake on `stream` to the end, counting interruptions
/// and callback runs.
fn serve(
    stream: &mut Choppy,
    decide: impl Fn(&wsproto::Request) -> Result<Accept, Response>,
) -> Served<'_> {
    let mut hs = ServerHandshake::new(stream, &Config::default());
    let (mut interrupted, mut calls) = (0, 0);
    loop {
        match hs.handshake_with(|req| {
            calls += 1;
            decide(req)
        }) {
            Ok(ws) => return (Ok(ws), interrupted, calls),
            Err(HandshakeError::Interrupted(more)) => {
                interrupted += 1;
                assert!(interrupted < 100_000, "no progress");
                hs = more;
            }
            Err(HandshakeError::Failure(e)) => return (Err(e), interrupted, calls),
        }
    }
}

// ---- defect 2: server ----

#[test]
fn a_request_head_arriving_byte_by_byte_between_would_blocks_is_accepted() {
    for block in [Block::Always, Block::EveryOther] {
        let mut stream = Choppy::new(RFC_REQUEST.as_bytes(), block);
        // A frame pipelined behind the head must survive too.
        stream
            .input
            .extend_from_slice(&client_frame(true, 0x1, b"hi"));
        let (ws, interrupted, calls) = serve(&mut stream, |req| {
            assert_eq!(req.path(), "/chat");
            Ok(Accept::default())
        });
        let mut ws = ws.unwrap_or_else(|e| panic!("{block:?}: {e:?}"));
        assert_eq!(calls, 1, "the callback runs exactly once");
        assert!(interrupted > RFC_REQUEST.len() / 7, "{interrupted}");
        // The 101 was written whole, in pieces between WouldBlocks.
        assert_eq!(String::from_utf8_lossy(&ws.get_ref().output), RFC_RESPONSE);
        // The pipelined frame was kept for the connection.
        ws.get_mut().never_block = true;
        assert_eq!(ws.read().unwrap(), Message::Text("hi".into()));
    }
}

#[test]
fn a_refusal_is_written_whole_under_would_block_and_then_reported() {
    let mut stream = Choppy::new(RFC_REQUEST.as_bytes(), Block::Always);
    let (result, _, calls) = serve(&mut stream, |_| Err(Response::text(403, "not you")));
    assert_eq!(calls, 1);
    assert!(matches!(result, Err(Error::Rejected(403))), "{result:?}");
    let answer = String::from_utf8(stream.output).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nnot you\n"), "{answer}");

    // A bad request: answered 426 resumably, the callback never runs.
    let bad = RFC_REQUEST.replace("Version: 13", "Version: 8");
    let mut stream = Choppy::new(bad.as_bytes(), Block::Always);
    let (result, _, calls) = serve(&mut stream, |_| Ok(Accept::default()));
    assert_eq!(calls, 0);
    assert!(
        matches!(result, Err(Error::UnsupportedVersion(_))),
        "{result:?}"
    );
    let answer = String::from_utf8(stream.output).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"), "{answer}");
}

#[test]
fn the_blocking_accept_gives_up_with_would_block_and_never_answers_400() {
    // Today's code lost the bytes read and a retry on the same stream
    // answered the rest of the head with 400; the blocking API still gives
    // up on WouldBlock, but writes nothing.
    let mut stream = Choppy::new(RFC_REQUEST.as_bytes(), Block::EveryOther);
    stream.max_read = 40;
    let e = accept_with(&mut stream, &Config::default(), |_| Ok(Accept::default())).unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock),
        "{e:?}"
    );
    assert!(stream.output.is_empty(), "{:?}", stream.output);
}

#[test]
fn a_nonblocking_tcp_request_in_two_packets_100_ms_apart_is_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let (a, b) = RFC_REQUEST.split_at(30);
        s.write_all(a.as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(100));
        s.write_all(b.as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = vec![0; RFC_RESPONSE.len()];
        s.read_exact(&mut answer).unwrap();
        String::from_utf8(answer).unwrap()
    });
    let (stream, _) = listener.accept().unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut hs = ServerHandshake::new(stream, &Config::default());
    let started = Instant::now();
    let mut interrupted = 0;
    let ws = loop {
        match hs.handshake() {
            Ok(ws) => break ws,
            Err(HandshakeError::Interrupted(more)) => {
                interrupted += 1;
                assert!(started.elapsed() < Duration::from_secs(5), "stuck");
                thread::sleep(Duration::from_millis(5));
                hs = more;
            }
            Err(HandshakeError::Failure(e)) => panic!("{e:?}"),
        }
    };
    assert!(
        interrupted >= 5,
        "the second packet came at once? {interrupted}"
    );
    assert_eq!(client.join().unwrap(), RFC_RESPONSE);
    drop(ws);
}

// ---- defect 2: client ----

/// A scripted server answering a correct 101 to whatever request was written.
fn answer_101(request: &[u8]) -> Vec<u8> {
    let request = String::from_utf8_lossy(request);
    let key = header_value(&request, "sec-websocket-key").expect("key sent");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        expected_accept(&key)
    )
    .into_bytes()
}

#[test]
fn a_resumed_client_handshake_sends_one_get_with_one_key() {
    for block in [Block::Always, Block::EveryOther] {
        let mut stream = Choppy::new(b"", block);
        stream.respond = Some(Box::new(answer_101));
        let request = ClientRequest::new("ws://example.com/chat").unwrap();
        let mut hs = ClientHandshake::new(stream, &request, &Config::default()).unwrap();
        let key = hs.key().to_owned();
        let mut interrupted = 0;
        let (ws, response) = loop {
            match hs.handshake() {
                Ok(done) => break done,
                Err(HandshakeError::Interrupted(more)) => {
                    assert_eq!(more.key(), key, "the key changed on a retry");
                    interrupted += 1;
                    hs = more;
                }
                Err(HandshakeError::Failure(e)) => panic!("{e:?}"),
            }
        };
        assert_eq!(response.status, 101);
        let written = String::from_utf8(ws.get_ref().output.clone()).unwrap();
        assert_eq!(written.matches("GET ").count(), 1, "{written}");
        assert_eq!(written.matches("Sec-WebSocket-Key").count(), 1);
        assert!(written.starts_with("GET /chat HTTP/1.1\r\n"), "{written}");
        assert!(written.ends_with("\r\n\r\n"));
        assert_eq!(header_value(&written, "sec-websocket-key"), Some(key));
        let chunk = if matches!(block, Block::Always) { 1 } else { 7 };
        assert!(interrupted >= written.len() / chunk, "{interrupted}");
    }
}

#[test]
fn a_refusal_body_is_read_resumably() {
    let mut stream = Choppy::new(b"", Block::Always);
    stream.respond = Some(Box::new(|_| {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\n\r\nfull, bye".to_vec()
    }));
    let request = ClientRequest::new("ws://h/").unwrap();
    let mut hs = ClientHandshake::new(stream, &request, &Config::default()).unwrap();
    let e = loop {
        match hs.handshake() {
            Ok(_) => panic!("accepted a 503"),
            Err(HandshakeError::Interrupted(more)) => hs = more,
            Err(HandshakeError::Failure(e)) => break e,
        }
    };
    match e {
        Error::HttpStatus { status, body } => {
            assert_eq!(status, 503);
            assert_eq!(body, b"full, bye");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn the_blocking_client_handshake_gives_up_with_would_block() {
    let mut stream = Choppy::new(b"", Block::EveryOther);
    stream.max_write = usize::MAX;
    let request = ClientRequest::new("ws://h/").unwrap();
    let e = client_handshake(&mut stream, &request, &Config::default()).unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock),
        "{e:?}"
    );
}

// ---- defect 4: injection ----

#[test]
fn urls_that_could_inject_or_are_not_urls_are_refused() {
    for bad in [
        "ws://h/a HTTP/1.1\r\nX-Injected: yes\r\n",
        "ws://h/a\nb",
        "ws://h/a\rb",
        "ws://h/a\0b",
        "ws://h/a\tb",
        "ws://h/a b",
        "ws://h /a",
        "ws://h/a<b>",
        "ws://h/a\"b",
        "ws://h/a{b}",
        "ws://h/%zz",
        "ws://h/%4",
        "ws://user:pw@h/",
        "ws://h:+80/",
        "ws://h:0/",
        "ws://h:/",
        "ws://h:65536/",
        "ws://[::1/",
        "ws://[nope]:80/",
        "ws://[::1]x/",
        "ws://hé.example/",
        "ws://h!/",
        "ws:///path",
    ] {
        match WsUrl::parse(bad) {
            Err(Error::InvalidUrl { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(ClientRequest::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn non_ascii_paths_are_percent_encoded_and_escapes_kept() {
    let u = WsUrl::parse("ws://h/caf\u{e9}?user=\u{5f20}\u{4e09}&x=%41").unwrap();
    assert_eq!(u.resource, "/caf%C3%A9?user=%E5%BC%A0%E4%B8%89&x=%41");
    let u = WsUrl::parse("WS://Example.COM:8080").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.resource.as_str()),
        ("Example.COM", 8080, "/")
    );
    assert_eq!(u.host_header, "Example.COM:8080");
}

#[test]
fn ipv6_literals_work() {
    let u = WsUrl::parse("ws://[::1]:9001/x?y").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.resource.as_str()),
        ("::1", 9001, "/x?y")
    );
    assert_eq!(u.host_header, "[::1]:9001");
    let u = WsUrl::parse("ws://[2001:db8::7]/").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("2001:db8::7", 80));
    assert_eq!(u.host_header, "[2001:db8::7]");

    // The Host header on the wire.
    let mut stream = MemStream::new(Vec::new());
    let request = ClientRequest::new("ws://[::1]:9001/x").unwrap();
    let _ = client_handshake(&mut stream, &request, &Config::default());
    let written = String::from_utf8(stream.output).unwrap();
    assert!(written.starts_with("GET /x HTTP/1.1\r\n"), "{written}");
    assert_eq!(
        header_value(&written, "host").as_deref(),
        Some("[::1]:9001")
    );

    // A real connection over IPv6 loopback, where the machine has one.
    let Ok(listener) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) else {
        eprintln!("no IPv6 loopback here; skipping the connection");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut host = None;
        let ws = accept_with(stream, &Config::default(), |req| {
            host = req.header("host").map(str::to_owned);
            Ok(Accept::default())
        });
        (ws.is_ok(), host)
    });
    let request = ClientRequest::new(&format!("ws://[::1]:{port}/"))
        .unwrap()
        .with_connect_timeout(Duration::from_secs(5))
        .with_handshake_timeout(Duration::from_secs(5));
    let (ws, response) = connect_with(&request, &Config::default()).unwrap();
    assert_eq!(response.status, 101);
    assert_eq!(
        server.join().unwrap(),
        (true, Some(format!("[::1]:{port}")))
    );
    drop(ws);
}

/// `client_handshake` with `request` over a stream that records writes:
/// the error, and whether anything was written.
fn refused_before_writing(request: &ClientRequest) -> Error {
    let mut stream = MemStream::new(Vec::new());
    let e = client_handshake(&mut stream, request, &Config::default()).unwrap_err();
    assert!(
        stream.output.is_empty(),
        "{e:?} but wrote {:?}",
        String::from_utf8_lossy(&stream.output)
    );
    e
}

#[test]
fn client_header_fields_that_could_inject_are_refused_with_nothing_written() {
    let base = ClientRequest::new("ws://h/").unwrap();
    for name in ["X-Bad:", "X Bad", "X-Bad\r\nX-Injected", "", "X\0"] {
        let mut request = base.clone();
        request.headers.push((name.into(), "v".into()));
        let e = refused_before_writing(&request);
        assert!(
            matches!(&e, Error::InvalidHeaderName { name: n } if n == name),
            "{e:?}"
        );
        assert!(base.clone().with_header(name, "v").is_err());
    }
    for value in ["a\r\nX-Injected: yes", "a\rb", "a\nb", "a\0b", "a\x1bb"] {
        let mut request = base.clone();
        request.headers.push(("Origin".into(), value.into()));
        let e = refused_before_writing(&request);
        assert!(
            matches!(&e, Error::InvalidHeaderValue { name, value: v, .. } if name == "Origin" && v == value),
            "{e:?}"
        );
        assert!(e.to_string().contains("Origin"), "{e}");
        assert!(base.clone().with_header("Origin", value).is_err());
    }
    // Tabs, non-ASCII and spaces inside a value are fine.
    let request = base.clone().with_header("X-Note", "a\tb c é").unwrap();
    let mut stream = MemStream::new(Vec::new());
    let _ = client_handshake(&mut stream, &request, &Config::default());
    assert!(String::from_utf8(stream.output)
        .unwrap()
        .contains("X-Note: a\tb c é\r\n"));

    // Subprotocols must be tokens.
    let mut request = base.clone();
    request.protocols.push("chat\r\nX-Injected: 1".into());
    let e = refused_before_writing(&request);
    assert!(matches!(e, Error::InvalidHeaderValue { .. }), "{e:?}");

    // URL fields set by hand are checked too.
    let mut request = base.clone();
    request.url.resource = "/a HTTP/1.1\r\nX-Injected: yes\r\n".into();
    assert!(matches!(
        refused_before_writing(&request),
        Error::InvalidUrl { .. }
    ));
    let mut request = base;
    request.url.host_header = "h\r\nX-Injected: yes".into();
    assert!(matches!(
        refused_before_writing(&request),
        Error::InvalidUrl { .. }
    ));
}

#[test]
fn server_header_fields_that_could_inject_are_refused_with_nothing_written() {
    // From the Accept.
    let mut stream = MemStream::new(RFC_REQUEST.as_bytes().to_vec());
    let e = accept_with(&mut stream, &Config::default(), |_| {
        Ok(Accept {
            protocol: None,
            headers: vec![("Set-Cookie".into(), "a=1\r\nX-Injected: yes".into())],
        })
    })
    .unwrap_err();
    assert!(matches!(e, Error::InvalidHeaderValue { .. }), "{e:?}");
    assert!(stream.output.is_empty());

    let mut stream = MemStream::new(RFC_REQUEST.as_bytes().to_vec());
    let e = accept_with(&mut stream, &Config::default(), |_| {
        Ok(Accept {
            protocol: Some("chat\r\nX: 1".into()),
            headers: Vec::new(),
        })
    })
    .unwrap_err();
    assert!(matches!(e, Error::InvalidHeaderValue { .. }), "{e:?}");
    assert!(stream.output.is_empty());

    // From a refusal.
    let mut stream = MemStream::new(RFC_REQUEST.as_bytes().to_vec());
    let e = accept_with(&mut stream, &Config::default(), |_| {
        Err(Response::text(403, "no").with_header("X Bad", "v"))
    })
    .unwrap_err();
    assert!(matches!(e, Error::InvalidHeaderName { .. }), "{e:?}");
    assert!(stream.output.is_empty());

    // Response::write_to directly.
    let mut out = Vec::new();
    let e = Response::new(302)
        .with_header("Location", "/x\r\nSet-Cookie: evil=1")
        .write_to(&mut out)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidHeaderValue { .. }), "{e:?}");
    assert!(out.is_empty());
}

// ---- time-outs ----

/// A listener that accepts connections and never says a word; the
/// connections stay open until the listener thread ends.
fn silent_server() -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(3));
        drop(stream);
    });
    (addr, handle)
}

#[test]
fn connect_with_a_handshake_timeout_gives_up_on_a_silent_server() {
    let (addr, _server) = silent_server();
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .with_connect_timeout(Duration::from_secs(2))
        .with_handshake_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = connect_with(&request, &Config::default()).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, Error::HandshakeTimedOut), "{e:?}");
    assert_eq!(
        e.to_string(),
        "timed out waiting for the WebSocket handshake"
    );
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn connect_with_time_outs_connects_and_leaves_no_time_out_on_the_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = wsproto::accept(stream).unwrap();
        ws.read().unwrap()
    });
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .with_connect_timeout(Duration::from_secs(2))
        .with_handshake_timeout(Duration::from_secs(2));
    let (mut ws, _) = connect_with(&request, &Config::default()).unwrap();
    assert_eq!(ws.get_ref().read_timeout().unwrap(), None);
    assert_eq!(ws.get_ref().write_timeout().unwrap(), None);
    ws.send(Message::Text("hello".into())).unwrap();
    assert_eq!(server.join().unwrap(), Message::Text("hello".into()));
}

/// A connected TCP pair: (client side, server side).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn the_accept_deadline_restores_the_original_time_outs() {
    let original = (Some(Duration::from_secs(7)), Some(Duration::from_secs(9)));

    // Failure: the client never sends a request.
    let (_client, server) = tcp_pair();
    server.set_read_timeout(original.0).unwrap();
    server.set_write_timeout(original.1).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(200);
    let e = accept_with_deadline(&server, &Config::default(), deadline, |_| {
        Ok(Accept::default())
    })
    .unwrap_err();
    assert!(matches!(e, Error::HandshakeTimedOut), "{e:?}");
    assert_eq!(e.http_status(), Some(408));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        (
            server.read_timeout().unwrap(),
            server.write_timeout().unwrap()
        ),
        original
    );

    // Failure: a bad request (answered 400 before the deadline).
    let (mut client, server) = tcp_pair();
    server.set_read_timeout(original.0).unwrap();
    server.set_write_timeout(original.1).unwrap();
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let e = accept_with_deadline(
        &server,
        &Config::default(),
        Instant::now() + Duration::from_secs(5),
        |_| Ok(Accept::default()),
    )
    .unwrap_err();
    assert!(matches!(e, Error::MissingHeader("Host")), "{e:?}");
    assert_eq!(
        (
            server.read_timeout().unwrap(),
            server.write_timeout().unwrap()
        ),
        original
    );

    // Success: the request in two pieces.
    let (mut client, server) = tcp_pair();
    server.set_read_timeout(original.0).unwrap();
    server.set_write_timeout(original.1).unwrap();
    let writer = thread::spawn(move || {
        let (a, b) = RFC_REQUEST.split_at(20);
        client.write_all(a.as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(50));
        client.write_all(b.as_bytes()).unwrap();
        let mut answer = vec![0; RFC_RESPONSE.len()];
        client.read_exact(&mut answer).unwrap();
        answer
    });
    let ws = accept_with_deadline(
        &server,
        &Config::default(),
        Instant::now() + Duration::from_secs(5),
        |_| Ok(Accept::default()),
    )
    .unwrap();
    assert_eq!(writer.join().unwrap(), RFC_RESPONSE.as_bytes());
    drop(ws);
    assert_eq!(
        (
            server.read_timeout().unwrap(),
            server.write_timeout().unwrap()
        ),
        original
    );
}

#[test]
fn the_client_deadline_restores_the_original_time_outs() {
    let (client, _server) = tcp_pair();
    let original = (Some(Duration::from_secs(3)), None);
    client.set_read_timeout(original.0).unwrap();
    let request = ClientRequest::new("ws://h/").unwrap();
    let hs = ClientHandshake::new(&client, &request, &Config::default()).unwrap();
    let e = hs
        .handshake_with_deadline(Instant::now() + Duration::from_millis(150))
        .unwrap_err();
    assert!(matches!(e, Error::HandshakeTimedOut), "{e:?}");
    assert_eq!(
        (
            client.read_timeout().unwrap(),
            client.write_timeout().unwrap()
        ),
        original
    );
}

#[test]
fn a_deadline_already_past_times_out_and_restores_nothing_changed() {
    let (_client, server) = tcp_pair();
    let e = accept_with_deadline(&server, &Config::default(), Instant::now(), |_| {
        Ok(Accept::default())
    })
    .unwrap_err();
    assert!(matches!(e, Error::HandshakeTimedOut), "{e:?}");
    assert_eq!(server.read_timeout().unwrap(), None);
    assert_eq!(server.write_timeout().unwrap(), None);
}
