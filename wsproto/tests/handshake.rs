//! The opening handshake (RFC 6455 §4) on both sides, over in-memory
//! streams: the exact `101` answer, every malformed request answered with
//! an HTTP error status on the wire and a precise `Error`, the application
//! callback, the client's request and its checks of the server's answer,
//! and bytes pipelined behind either head.

mod common;

use std::io::{self, Cursor, Read, Write};

use base64::Engine as _;
use common::*;
use sha1::{Digest, Sha1};
use wsproto::{accept_with, Accept};
use wsproto::{client_handshake, ClientRequest, Config, Error, Message, Response};

// ---- server side ----

/// The request of RFC 6455 §1.3.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// The answer to [`RFC_REQUEST`] when no subprotocol is selected.
const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A valid request as (start line, header fields), to be broken one way at a time.
fn good() -> (String, Vec<(String, String)>) {
    let headers = [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    (
        "GET /chat HTTP/1.1".into(),
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

fn encode(start: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut s = format!("{start}\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The valid request with header `name` set to `value` (or removed if `None`).
fn with_header(name: &str, value: Option<&str>) -> Vec<u8> {
    let (start, mut headers) = good();
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        headers.push((name.into(), v.into()));
    }
    encode(&start, &headers)
}

/// The valid request with one more header field.
fn plus_header(name: &str, value: &str) -> Vec<u8> {
    let (start, mut headers) = good();
    headers.push((name.into(), value.into()));
    encode(&start, &headers)
}

/// An HTTP answer as written on the wire.
#[derive(Debug)]
struct HttpAnswer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

fn parse_answer(bytes: &[u8]) -> HttpAnswer {
    let text = String::from_utf8_lossy(bytes);
    let (head, _) = text.split_once("\r\n\r\n").expect("complete HTTP head");
    let head_len = head.len() + 4;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    HttpAnswer {
        status,
        head: head.to_owned(),
        body: bytes[head_len..].to_vec(),
    }
}

/// Run `accept_with` on `request`; expect a refusal. Returns the error and
/// what was written (`None` if nothing was).
fn refuse_with(config: &Config, request: &[u8]) -> (Error, Option<HttpAnswer>) {
    let mut stream = MemStream::new(request.to_vec());
    let mut called = false;
    let result = accept_with(&mut stream, config, |_| {
        called = true;
        Ok(Accept::default())
    });
    let e = result.expect_err("request must be refused");
    assert!(!called, "callback ran for a bad request ({e:?})");
    let answer = (!stream.output.is_empty()).then(|| parse_answer(&stream.output));
    if let Some(a) = &answer {
        // A well-formed refusal: length-delimited body, connection closed.
        assert_eq!(
            header_value(&a.head, "content-length"),
            Some(a.body.len().to_string()),
            "{a:?}"
        );
        assert_eq!(
            header_value(&a.head, "connection").as_deref(),
            Some("close")
        );
        assert!(!a.body.is_empty(), "refusal without an explanation: {a:?}");
        assert_eq!(e.http_status(), Some(a.status));
    }
    (e, answer)
}

/// [`refuse_with`] with default limits, asserting an answer with `status`.
fn refuse(request: &[u8], status: u16) -> (Error, HttpAnswer) {
    let (e, answer) = refuse_with(&Config::default(), request);
    let answer = answer.unwrap_or_else(|| panic!("no HTTP answer for {e:?}"));
    assert_eq!(answer.status, status, "{e:?}: {answer:?}");
    (e, answer)
}

fn accepted(request: &[u8]) -> String {
    let mut stream = MemStream::new(request.to_vec());
    let ws = accept_with(&mut stream, &Config::default(), |_| Ok(Accept::default()));
    assert!(ws.is_ok(), "refused: {:?}", ws.err());
    let answer = parse_answer(&stream.output);
    assert_eq!(answer.status, 101);
    answer.head
}

#[test]
fn the_rfc_example_request_gets_the_exact_101_answer() {
    let mut stream = MemStream::new(RFC_REQUEST.as_bytes().to_vec());
    let ws = wsproto::accept(&mut stream).unwrap();
    drop(ws);
    assert_eq!(String::from_utf8(stream.output).unwrap(), RFC_RESPONSE);
}

#[test]
fn a_method_other_than_get_is_405() {
    let (start, headers) = good();
    let req = encode(&start.replace("GET", "POST"), &headers);
    let (e, a) = refuse(&req, 405);
    assert!(matches!(&e, Error::MethodNotGet(m) if m == "POST"), "{e:?}");
    assert_eq!(header_value(&a.head, "allow").as_deref(), Some("GET"));
}

#[test]
fn http_1_0_is_400() {
    let (start, headers) = good();
    let req = encode(&start.replace("HTTP/1.1", "HTTP/1.0"), &headers);
    let (e, _) = refuse(&req, 400);
    assert!(matches!(e, Error::WrongHttpVersion), "{e:?}");
}

#[test]
fn a_missing_or_empty_host_is_400() {
    for req in [with_header("Host", None), with_header("Host", Some(""))] {
        let (e, _) = refuse(&req, 400);
        assert!(matches!(e, Error::MissingHeader("Host")), "{e:?}");
    }
}

#[test]
fn a_missing_or_wrong_upgrade_is_400() {
    let (e, _) = refuse(&with_header("Upgrade", None), 400);
    assert!(matches!(e, Error::MissingHeader("Upgrade")), "{e:?}");
    let (e, _) = refuse(&with_header("Upgrade", Some("h2c")), 400);
    assert!(
        matches!(&e, Error::InvalidHeader { name: "Upgrade", value } if value == "h2c"),
        "{e:?}"
    );
    // The token is case-insensitive (RFC 6455 §4.2.1 item 3).
    accepted(&with_header("Upgrade", Some("WebSocket")));
}

#[test]
fn connection_must_carry_the_upgrade_token() {
    let (e, _) = refuse(&with_header("Connection", None), 400);
    assert!(matches!(e, Error::MissingHeader("Connection")), "{e:?}");
    for bad in ["keep-alive", "upgraded", "close"] {
        let (e, _) = refuse(&with_header("Connection", Some(bad)), 400);
        assert!(
            matches!(&e, Error::InvalidHeader { name: "Connection", value } if value == bad),
            "{bad}: {e:?}"
        );
    }
    for ok in ["keep-alive, Upgrade", "UPGRADE", "upgrade,keep-alive"] {
        accepted(&with_header("Connection", Some(ok)));
    }
}

/// RFC 7230 §3.2.2: several fields with the same list-valued name mean the
/// same as one field with the values joined by commas, so a `Connection`
/// token may arrive in a second field.
#[test]
fn connection_split_over_two_fields_is_accepted() {
    accepted(&plus_header("Connection", "keep-alive"));
    let (start, mut headers) = good();
    headers.retain(|(n, _)| n != "Connection");
    headers.push(("Connection".into(), "keep-alive".into()));
    headers.push(("Connection".into(), "Upgrade".into()));
    accepted(&encode(&start, &headers));
}

#[test]
fn version_8_is_426_with_the_supported_version() {
    let (e, a) = refuse(&with_header("Sec-WebSocket-Version", Some("8")), 426);
    assert!(
        matches!(&e, Error::UnsupportedVersion(v) if v == "8"),
        "{e:?}"
    );
    // RFC 6455 §4.4: tell the client which version we speak.
    assert_eq!(
        header_value(&a.head, "sec-websocket-version").as_deref(),
        Some("13")
    );
    let (e, _) = refuse(&with_header("Sec-WebSocket-Version", None), 400);
    assert!(
        matches!(e, Error::MissingHeader("Sec-WebSocket-Version")),
        "{e:?}"
    );
}

#[test]
fn the_key_must_be_base64_of_exactly_16_bytes() {
    let (e, _) = refuse(&with_header("Sec-WebSocket-Key", None), 400);
    assert!(
        matches!(e, Error::MissingHeader("Sec-WebSocket-Key")),
        "{e:?}"
    );
    for bad in [
        "not base64 at all!!",
        "MDEyMzQ1Njc4OWFiY2Rl",     // 15 bytes
        "MDEyMzQ1Njc4OWFiY2RlZmc=", // 17 bytes
    ] {
        let (e, _) = refuse(&with_header("Sec-WebSocket-Key", Some(bad)), 400);
        assert!(
            matches!(&e, Error::InvalidHeader { name: "Sec-WebSocket-Key", value } if value == bad),
            "{bad}: {e:?}"
        );
    }
    // 16 bytes is fine, and the accept value is computed from it.
    let head = accepted(&with_header(
        "Sec-WebSocket-Key",
        Some("MDEyMzQ1Njc4OWFiY2RlZg=="),
    ));
    assert_eq!(
        header_value(&head, "sec-websocket-accept"),
        Some(expected_accept("MDEyMzQ1Njc4OWFiY2RlZg=="))
    );
}

#[test]
fn a_duplicate_host_or_key_is_400() {
    let (e, _) = refuse(&plus_header("Host", "evil.example"), 400);
    assert!(
        matches!(e, Error::InvalidHeader { name: "Host", .. }),
        "{e:?}"
    );
    let (e, _) = refuse(
        &plus_header("Sec-WebSocket-Key", "MDEyMzQ1Njc4OWFiY2RlZg=="),
        400,
    );
    assert!(
        matches!(
            e,
            Error::InvalidHeader {
                name: "Sec-WebSocket-Key",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_head_over_8_kib_is_431() {
    let (e, _) = refuse(&plus_header("X-Big", &"a".repeat(9000)), 431);
    assert!(matches!(e, Error::HeadTooLarge(8192)), "{e:?}");
    // Also when the blank line never comes.
    let mut endless = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    endless.resize(20_000, b'a');
    let (e, _) = refuse(&endless, 431);
    assert!(matches!(e, Error::HeadTooLarge(8192)), "{e:?}");
}

#[test]
fn more_than_100_headers_is_431_and_100_are_fine() {
    let (start, base) = good();
    let mut headers = base.clone();
    for i in 0..(100 - base.len()) {
        headers.push((format!("X-H{i}"), "v".into()));
    }
    assert_eq!(headers.len(), 100);
    accepted(&encode(&start, &headers));
    headers.push(("X-One-Too-Many".into(), "v".into()));
    let (e, _) = refuse(&encode(&start, &headers), 431);
    assert!(matches!(e, Error::TooManyHeaders(100)), "{e:?}");
}

#[test]
fn garbage_is_400() {
    // A TLS ClientHello at a plain-text port, then the peer hangs up.
    let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x9a\x8b".to_vec();
    let (e, _) = refuse(&tls, 400);
    assert!(matches!(e, Error::MalformedHttp(_)), "{e:?}");
    // Garbage that does end with a blank line.
    let (e, _) = refuse(b"\x00\x01\x02 nonsense \xff\r\n\r\n", 400);
    assert!(matches!(e, Error::MalformedHttp(_)), "{e:?}");
}

#[test]
fn end_of_stream_before_the_end_of_the_head_is_an_error() {
    let (e, a) = refuse_with(
        &Config::default(),
        b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n",
    );
    assert!(matches!(e, Error::MalformedHttp(_)), "{e:?}");
    assert_eq!(a.map(|a| a.status), Some(400));
    // Nothing at all: the peer left; nobody to answer.
    let (e, a) = refuse_with(&Config::default(), b"");
    assert!(matches!(e, Error::UnexpectedEof), "{e:?}");
    assert!(a.is_none(), "{a:?}");
}

#[test]
fn smaller_configured_limits_refuse_smaller_heads() {
    let small_head = Config {
        max_head_size: 128,
        ..Config::default()
    };
    assert!(RFC_REQUEST.len() > 128);
    let (e, a) = refuse_with(&small_head, RFC_REQUEST.as_bytes());
    assert!(matches!(e, Error::HeadTooLarge(128)), "{e:?}");
    assert_eq!(a.map(|a| a.status), Some(431));
    let few_headers = Config {
        max_headers: 4,
        ..Config::default()
    };
    let (e, a) = refuse_with(&few_headers, RFC_REQUEST.as_bytes());
    assert!(matches!(e, Error::TooManyHeaders(4)), "{e:?}");
    assert_eq!(a.map(|a| a.status), Some(431));
}

#[test]
fn the_callback_sees_the_request_and_can_refuse_with_a_body() {
    let (_, mut headers) = good();
    headers.push(("Origin".into(), "http://example.com".into()));
    headers.push(("Sec-WebSocket-Protocol".into(), "chat, superchat".into()));
    let req = encode("GET /room/7?user=ann%20b&x=1 HTTP/1.1", &headers);
    let mut stream = MemStream::new(req);
    let mut seen = None;
    let result = accept_with(&mut stream, &Config::default(), |r| {
        seen = Some((
            r.method().to_owned(),
            r.path().to_owned(),
            r.query().map(str::to_owned),
            r.query_param("user"),
            r.header("origin").map(str::to_owned),
            r.protocols()
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        ));
        Err(Response::text(400, "no rooms today"))
    });
    assert!(matches!(result, Err(Error::Rejected(400))), "{result:?}");
    assert_eq!(
        seen,
        Some((
            "GET".into(),
            "/room/7".into(),
            Some("user=ann%20b&x=1".into()),
            Some("ann b".into()),
            Some("http://example.com".into()),
            vec!["chat".into(), "superchat".into()],
        ))
    );
    let a = parse_answer(&stream.output);
    assert_eq!(a.status, 400);
    assert_eq!(a.body, b"no rooms today\n");
    assert_eq!(
        header_value(&a.head, "content-length").as_deref(),
        Some("15")
    );
}

#[test]
fn the_callback_can_select_a_subprotocol_and_add_headers() {
    let mut stream = MemStream::new(RFC_REQUEST.as_bytes().to_vec());
    let ws = accept_with(&mut stream, &Config::default(), |r| {
        assert!(r.protocols().contains(&"superchat"));
        Ok(Accept {
            protocol: Some("superchat".into()),
            headers: vec![("Set-Cookie".into(), "id=42".into())],
        })
    });
    assert!(ws.is_ok(), "{:?}", ws.err());
    let a = parse_answer(&stream.output);
    assert_eq!(a.status, 101);
    assert!(a.body.is_empty());
    assert_eq!(
        header_value(&a.head, "sec-websocket-protocol").as_deref(),
        Some("superchat")
    );
    assert_eq!(
        header_value(&a.head, "set-cookie").as_deref(),
        Some("id=42")
    );
    assert_eq!(
        header_value(&a.head, "sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
}

#[test]
fn frames_pipelined_behind_the_request_are_not_lost() {
    let mut input = RFC_REQUEST.as_bytes().to_vec();
    input.extend(client_frame(true, TEXT, b"early bird"));
    input.extend(client_frame(true, PING, b"p"));
    input.extend(client_frame(true, BINARY, &[1, 2, 3]));
    let mut ws = wsproto::accept(MemStream::new(input)).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("early bird"));
    assert_eq!(ws.read().unwrap(), Message::Ping(b"p".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::binary(vec![1, 2, 3]));
    let mut expected = RFC_RESPONSE.as_bytes().to_vec();
    expected.extend(server_frame(true, PONG, b"p"));
    assert_eq!(ws.get_ref().output, expected);
}

// ---- client side ----

/// base64(SHA-1(key ++ GUID)), computed here independently (RFC 6455 §4.2.2).
fn expected_accept(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A scripted server: records what the client writes, and on the first
/// read answers with `respond(request head)`.
struct Scripted<F: FnMut(&str) -> Vec<u8>> {
    written: Vec<u8>,
    respond: Option<F>,
    reply: Cursor<Vec<u8>>,
}

impl<F: FnMut(&str) -> Vec<u8>> Scripted<F> {
    fn new(respond: F) -> Self {
        Scripted {
            written: Vec::new(),
            respond: Some(respond),
            reply: Cursor::new(Vec::new()),
        }
    }
}

impl<F: FnMut(&str) -> Vec<u8>> Read for Scripted<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(mut respond) = self.respond.take() {
            let request = String::from_utf8(self.written.clone()).expect("ASCII request");
            assert!(
                request.ends_with("\r\n\r\n"),
                "read before the whole request"
            );
            self.reply = Cursor::new(respond(&request));
        }
        self.reply.read(buf)
    }
}

impl<F: FnMut(&str) -> Vec<u8>> Write for Scripted<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A correct 101 for `request`, with `extra` header lines (each ending in CRLF).
fn switching(request: &str, extra: &str) -> Vec<u8> {
    let key = header_value(request, "sec-websocket-key").expect("key sent");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        expected_accept(&key)
    )
    .into_bytes()
}

fn handshake_with<F: FnMut(&str) -> Vec<u8>>(
    request: &ClientRequest,
    respond: F,
) -> wsproto::Result<(wsproto::WebSocket<Scripted<F>>, Response)> {
    client_handshake(Scripted::new(respond), request, &Config::default())
}

fn plain(url: &str) -> ClientRequest {
    ClientRequest::new(url).unwrap()
}

#[test]
fn the_client_request_has_every_required_field_and_a_fresh_key() {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (ws, response) = handshake_with(&plain("ws://127.0.0.1:9001/chat?x=1"), |req| {
            switching(req, "")
        })
        .unwrap();
        assert_eq!(response.status, 101);
        let req = String::from_utf8(ws.get_ref().written.clone()).unwrap();
        assert!(req.starts_with("GET /chat?x=1 HTTP/1.1\r\n"), "{req}");
        assert_eq!(
            header_value(&req, "host").as_deref(),
            Some("127.0.0.1:9001")
        );
        assert!(header_value(&req, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
        assert!(header_value(&req, "connection").is_some_and(|v| v
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))));
        assert_eq!(
            header_value(&req, "sec-websocket-version").as_deref(),
            Some("13")
        );
        let key = header_value(&req, "sec-websocket-key").unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&key)
            .expect("key is base64");
        assert_eq!(raw.len(), 16);
        assert_eq!(header_value(&req, "sec-websocket-protocol"), None);
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "two handshakes reused a key");
}

#[test]
fn an_offered_subprotocol_may_be_selected() {
    let mut request = plain("ws://h/");
    request.protocols = vec!["chat".into(), "superchat".into()];
    request.headers = vec![("Origin".into(), "http://h".into())];
    let (ws, response) = handshake_with(&request, |req| {
        assert_eq!(
            header_value(req, "sec-websocket-protocol").as_deref(),
            Some("chat, superchat")
        );
        assert_eq!(header_value(req, "origin").as_deref(), Some("http://h"));
        switching(req, "Sec-WebSocket-Protocol: superchat\r\n")
    })
    .unwrap();
    assert_eq!(response.header("sec-websocket-protocol"), Some("superchat"));
    drop(ws);
}

#[test]
fn a_non_101_answer_is_http_status_with_its_body() {
    let result = handshake_with(&plain("ws://h/"), |_| {
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbiddenTRAILING".to_vec()
    });
    match result {
        Err(Error::HttpStatus { status, body }) => {
            assert_eq!(status, 403);
            assert_eq!(body, b"forbidden");
        }
        other => panic!("expected HttpStatus, got {:?}", other.err()),
    }
    let result = handshake_with(&plain("ws://h/"), |_| {
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()
    });
    assert!(
        matches!(result, Err(Error::HttpStatus { status: 200, ref body }) if body.is_empty()),
        "{:?}",
        result.err()
    );
}

#[test]
fn a_wrong_or_missing_accept_is_refused() {
    let result = handshake_with(&plain("ws://h/"), |_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
            .to_vec()
    });
    assert!(
        matches!(result, Err(Error::WrongAccept)),
        "{:?}",
        result.err()
    );
    let result = handshake_with(&plain("ws://h/"), |_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            .to_vec()
    });
    assert!(
        matches!(result, Err(Error::MissingHeader("Sec-WebSocket-Accept"))),
        "{:?}",
        result.err()
    );
}

#[test]
fn a_missing_upgrade_or_connection_is_refused() {
    let strip = |name: &'static str| {
        move |req: &str| {
            let full = String::from_utf8(switching(req, "")).unwrap();
            full.split("\r\n")
                .filter(|l| !l.to_ascii_lowercase().starts_with(name))
                .collect::<Vec<_>>()
                .join("\r\n")
                .into_bytes()
        }
    };
    let result = handshake_with(&plain("ws://h/"), strip("upgrade:"));
    assert!(
        matches!(result, Err(Error::MissingHeader("Upgrade"))),
        "{:?}",
        result.err()
    );
    let result = handshake_with(&plain("ws://h/"), strip("connection:"));
    assert!(
        matches!(result, Err(Error::MissingHeader("Connection"))),
        "{:?}",
        result.err()
    );
    let result = handshake_with(&plain("ws://h/"), |req| {
        String::from_utf8(switching(req, ""))
            .unwrap()
            .replace("Upgrade: websocket", "Upgrade: h2c")
            .into_bytes()
    });
    assert!(
        matches!(
            result,
            Err(Error::InvalidHeader {
                name: "Upgrade",
                ..
            })
        ),
        "{:?}",
        result.err()
    );
}

/// An extension the client never offers (whatever its deflate setting).
#[test]
fn an_unoffered_subprotocol_or_extension_is_refused() {
    let result = handshake_with(&plain("ws://h/"), |req| {
        switching(req, "Sec-WebSocket-Protocol: chat\r\n")
    });
    assert!(
        matches!(&result, Err(Error::UnexpectedProtocol(p)) if p == "chat"),
        "{:?}",
        result.err()
    );
    let mut request = plain("ws://h/");
    request.protocols = vec!["a".into()];
    let result = handshake_with(&request, |req| {
        switching(req, "Sec-WebSocket-Protocol: b\r\n")
    });
    assert!(
        matches!(&result, Err(Error::UnexpectedProtocol(p)) if p == "b"),
        "{:?}",
        result.err()
    );
    let result = handshake_with(&plain("ws://h/"), |req| {
        switching(req, "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n")
    });
    assert!(
        matches!(&result, Err(Error::UnexpectedExtension(x)) if x == "x-webkit-deflate-frame"),
        "{:?}",
        result.err()
    );
}

#[test]
fn frames_right_behind_the_101_head_are_not_lost() {
    let (mut ws, _) = handshake_with(&plain("ws://h/"), |req| {
        let mut out = switching(req, "");
        out.extend(server_frame(true, TEXT, b"welcome"));
        out.extend(server_frame(true, PING, b"p"));
        out
    })
    .unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("welcome"));
    assert_eq!(ws.read().unwrap(), Message::Ping(b"p".to_vec()));
    // What followed the request on the wire is the masked pong.
    let written = &ws.get_ref().written;
    let head_end = written.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let frames = parse_frames(&written[head_end..]);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].masked);
    assert_eq!(frames[0].payload, b"p");
}

#[test]
fn a_truncated_101_head_is_an_error() {
    let result = handshake_with(&plain("ws://h/"), |_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n".to_vec()
    });
    assert!(
        matches!(result, Err(Error::MalformedHttp(_))),
        "{:?}",
        result.err()
    );
}

/// `wss://` needs the `tls` feature (tests/tls.rs covers it with the
/// feature); other schemes are never supported.
#[test]
fn schemes_other_than_ws_and_wss_are_unsupported() {
    #[cfg(feature = "tls")]
    {
        let url = wsproto::WsUrl::parse("wss://example.com/").unwrap();
        assert!(url.tls && url.port == 443, "{url:?}");
    }
    let cases: &[(&str, &str)] = if cfg!(feature = "tls") {
        &[
            ("http://example.com/", "http"),
            ("https://example.com/", "https"),
        ]
    } else {
        &[
            ("wss://example.com/", "wss"),
            ("http://example.com/", "http"),
        ]
    };
    for &(url, scheme) in cases {
        let result = wsproto::connect(url);
        assert!(
            matches!(&result, Err(Error::UnsupportedScheme(s)) if s == scheme),
            "{url}: {:?}",
            result.err()
        );
    }
}
