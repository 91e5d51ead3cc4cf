//! Regression tests from fuzzing (`fuzz/`, see `fuzz/run-all.sh`): the
//! exact inputs of crashes the fuzzers found, and hand-picked tricky inputs
//! of the same shapes (huge declared lengths, truncated heads and frames,
//! limits hit from the header alone), each fed through the same public API
//! as the fuzz target and checked for the typed error and the bytes written
//! back.

use std::io::{self, Read, Write};

use wsproto::read_request;
use wsproto::{
    accept_with, apply_mask, apply_mask_naive, client_handshake, read_frame, read_header, Accept,
    ClientRequest, CloseCode, CloseFrame, Config, Error, Header, Message, OpCode, Parsed, Role,
    WebSocket, MAX_HEADER_LEN,
};

/// An in-memory peer: reads come from `input`, writes are kept.
struct Peer {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
}

impl Peer {
    fn new(input: impl Into<Vec<u8>>) -> Peer {
        Peer {
            input: input.into(),
            pos: 0,
            output: Vec::new(),
        }
    }
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.input.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Whether an error is the expected one.
type ErrorCheck = fn(&Error) -> bool;

/// The limits the message-level fuzz targets use.
fn small_config() -> Config {
    Config {
        max_frame_size: 64 << 10,
        max_message_size: 256 << 10,
        ..Config::default()
    }
}

/// Header bytes for a frame; `b0` is FIN/RSV/opcode, the length is
/// encoded minimally.
fn head(b0: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![b0];
    match len {
        0..=125 => out.push(m | len as u8),
        126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
    out
}

/// A whole client frame (masked with `MASK`).
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = head(b0, payload.len() as u64, Some(MASK));
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Read until the first error as `role`; returns messages, the error, and
/// the frames written back (unmasked).
fn read_all(
    role: Role,
    config: &Config,
    input: Vec<u8>,
) -> (Vec<Message>, Error, Vec<wsproto::Frame>) {
    let mut ws = WebSocket::from_raw_socket(Peer::new(input), role, config);
    let mut messages = Vec::new();
    for _ in 0..100 {
        match ws.read() {
            Ok(m) => messages.push(m),
            Err(e) => {
                assert!(
                    matches!(ws.read(), Err(Error::ConnectionClosed)),
                    "the connection must stay ended after {e:?}"
                );
                let mut out = &ws.get_ref().output[..];
                let mut frames = Vec::new();
                while !out.is_empty() {
                    let mut f = read_frame(&mut out, 125).expect("own frames are valid");
                    assert_eq!(f.header.mask.is_some(), role == Role::Client);
                    f.unmask();
                    frames.push(f);
                }
                return (messages, e, frames);
            }
        }
    }
    panic!("read loop did not end");
}

/// The connection failed with `code`: the last frame written is a Close
/// frame carrying it.
fn assert_closed_with(frames: &[wsproto::Frame], code: CloseCode) {
    let last = frames.last().expect("a Close frame was written");
    assert_eq!(last.header.opcode, OpCode::Close);
    let body = CloseFrame::parse(&last.payload).expect("valid close body");
    assert_eq!(body.map(|b| b.code), Some(code));
}

// ---- crashes found by the fuzzers ----

/// cipher_differential, first crash (minimized): `apply_mask_naive`
/// computed `(offset + i) % 4`, which overflows (a panic in debug builds)
/// once `offset + i` passes `usize::MAX`. Masking is defined modulo 4
/// (RFC 6455 §5.3) and 2^64 is a multiple of 4, so the reference must agree
/// with `apply_mask` for every offset.
#[test]
fn naive_cipher_handles_offsets_near_usize_max() {
    // The minimized fuzz input: mask ff 00 ff 00, offset u64::MAX (LE
    // bytes ff x8), start 0, split 0, data "xx".
    let input = b"\xff\x00\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00xx";
    let mask = [input[0], input[1], input[2], input[3]];
    let mut offset_bytes = [0u8; 8];
    offset_bytes.copy_from_slice(&input[4..12]);
    let offset = u64::from_le_bytes(offset_bytes) as usize;
    let mut fast = input[14..].to_vec();
    let mut naive = fast.clone();
    apply_mask(&mut fast, mask, offset);
    apply_mask_naive(&mut naive, mask, offset);
    // offset ≡ 3 (mod 4): byte 0 uses mask[3], byte 1 mask[0].
    assert_eq!(fast, [b'x', b'x' ^ 0xff]);
    assert_eq!(naive, fast);

    // And the neighbours, on a longer buffer.
    for offset in [usize::MAX, usize::MAX - 1, usize::MAX - 2, usize::MAX - 3] {
        let data: Vec<u8> = (0..40u8).collect();
        let mut fast = data.clone();
        let mut naive = data.clone();
        apply_mask(&mut fast, mask, offset);
        apply_mask_naive(&mut naive, mask, offset);
        assert_eq!(fast, naive, "offset {offset}");
        // Byte i is XORed with mask[(offset + i) mod 4], computed in u128.
        let want: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[((offset as u128 + i as u128) % 4) as usize])
            .collect();
        assert_eq!(fast, want, "offset {offset}");
    }
}

// ---- frame headers ----

#[test]
fn huge_declared_lengths() {
    // 2^63 - 1: the largest legal length parses, and read_frame refuses it
    // from the header alone, before reading or allocating anything.
    let max = head(0x82, (1 << 63) - 1, None);
    match Header::parse(&max) {
        Ok(Parsed::Complete(h, 10)) => assert_eq!(h.len, (1 << 63) - 1),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read_frame(&mut &max[..], 1 << 20),
        Err(Error::FrameTooBig { size, limit: 1048576 }) if size == (1 << 63) - 1
    ));
    // 2^63: the most significant bit must be 0 (RFC 6455 §5.2).
    let over = head(0x82, 1 << 63, None);
    assert!(matches!(Header::parse(&over), Err(Error::LengthOverflow)));
    assert!(matches!(
        read_header(&mut &over[..]),
        Err(Error::LengthOverflow)
    ));
    // u64::MAX, masked.
    let all = head(0x82, u64::MAX, Some(MASK));
    assert!(matches!(Header::parse(&all), Err(Error::LengthOverflow)));
}

#[test]
fn non_minimal_lengths_are_refused() {
    assert!(matches!(
        Header::parse(&[0x81, 0x7e, 0x00, 0x00]),
        Err(Error::NonMinimalLength(0))
    ));
    assert!(matches!(
        Header::parse(&[0x81, 0xfe, 0x00, 0x7d, 1, 2, 3, 4]),
        Err(Error::NonMinimalLength(125))
    ));
    assert!(matches!(
        Header::parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
        Err(Error::NonMinimalLength(65535))
    ));
    // The smallest lengths of each form are fine.
    assert!(matches!(
        Header::parse(&[0x82, 0x7e, 0x00, 0x7e]),
        Ok(Parsed::Complete(h, 4)) if h.len == 126
    ));
    assert!(matches!(
        Header::parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]),
        Ok(Parsed::Complete(h, 10)) if h.len == 65536
    ));
}

#[test]
fn every_truncated_header_asks_for_exactly_the_rest() {
    let full = head(0x82, 1 << 40, Some(MASK));
    assert_eq!(full.len(), MAX_HEADER_LEN);
    for k in 0..full.len() {
        let want = if k < 2 { 2 - k } else { MAX_HEADER_LEN - k };
        assert_eq!(
            Header::parse(&full[..k]).unwrap(),
            Parsed::Incomplete { needed: want },
            "prefix of {k} bytes"
        );
    }
    // A stream ending inside the header: an end-of-stream I/O error, and a
    // clean UnexpectedEof only before the first byte.
    assert!(matches!(
        read_header(&mut &full[..0]),
        Err(Error::UnexpectedEof)
    ));
    match read_header(&mut &full[..9]) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
}

// ---- message layer ----

#[test]
fn huge_frame_fails_with_1009_before_any_payload() {
    let input = head(0x82, 1 << 62, Some(MASK));
    let (messages, err, frames) = read_all(Role::Server, &small_config(), input);
    assert!(messages.is_empty());
    assert!(matches!(err, Error::FrameTooBig { size, limit: 65536 } if size == 1 << 62));
    assert_closed_with(&frames, CloseCode::Size);
}

#[test]
fn fragments_over_the_message_limit_fail_from_the_header() {
    let config = Config {
        max_frame_size: 100,
        max_message_size: 300,
        ..Config::default()
    };
    // Binary with FIN clear, two continuations: 300 bytes, at the limit.
    // The fourth fragment declares 1 byte more; only its header is sent.
    let input = [
        client_frame(0x02, &[7; 100]),
        client_frame(0x00, &[7; 100]),
        client_frame(0x00, &[7; 100]),
        head(0x80, 1, Some(MASK)),
    ]
    .concat();
    let (messages, err, frames) = read_all(Role::Server, &config, input);
    assert!(messages.is_empty());
    assert!(
        matches!(
            err,
            Error::MessageTooBig {
                size: 301,
                limit: 300
            }
        ),
        "{err:?}"
    );
    assert_closed_with(&frames, CloseCode::Size);
}

#[test]
fn truncated_frame_is_an_eof_without_a_close_frame() {
    let mut input = client_frame(0x82, &[1; 50]);
    input.truncate(30);
    let (messages, err, frames) = read_all(Role::Server, &small_config(), input);
    assert!(messages.is_empty());
    assert!(matches!(err, Error::UnexpectedEof), "{err:?}");
    assert!(
        frames.is_empty(),
        "nothing to say to a peer that left: {frames:?}"
    );
}

#[test]
fn invalid_utf8_fails_fast_inside_a_truncated_frame() {
    // A text frame declaring 100 bytes whose first 5 already cannot be
    // UTF-8 (a surrogate, RFC 3629): 1007 without waiting for the rest.
    let mut input = client_frame(0x81, &[b'o'; 100]);
    let at = input.len() - 100;
    for (i, b) in b"ok\xed\xa0\x80".iter().enumerate() {
        input[at + i] = b ^ MASK[i % 4];
    }
    input.truncate(at + 5);
    let (messages, err, frames) = read_all(Role::Server, &small_config(), input);
    assert!(messages.is_empty());
    assert!(matches!(err, Error::InvalidUtf8), "{err:?}");
    assert_closed_with(&frames, CloseCode::Invalid);
}

#[test]
fn control_frame_rules() {
    let cases: Vec<(Vec<u8>, ErrorCheck)> = vec![
        // 126-byte ping (16-bit length form).
        (client_frame(0x89, &[0; 126]), |e| {
            matches!(e, Error::ControlFrameTooLong(126))
        }),
        // Ping with FIN clear.
        (client_frame(0x09, b"x"), |e| {
            matches!(e, Error::FragmentedControlFrame)
        }),
        // Close with a one-byte body.
        (client_frame(0x88, &[3]), |e| {
            matches!(e, Error::CloseFrameTooShort)
        }),
        // Close with 1005, which must never be sent.
        (client_frame(0x88, &[0x03, 0xed]), |e| {
            matches!(e, Error::InvalidCloseCode(1005))
        }),
        // Reserved opcodes and bits.
        (client_frame(0x83, b""), |e| {
            matches!(e, Error::ReservedOpcode(3))
        }),
        (client_frame(0x8b, b""), |e| {
            matches!(e, Error::ReservedOpcode(0xb))
        }),
        (client_frame(0x91, b"x"), |e| {
            matches!(e, Error::ReservedBits { bits: 1 })
        }),
        // Continuation with nothing to continue, and a new message inside one.
        (client_frame(0x80, b"x"), |e| {
            matches!(e, Error::UnexpectedContinuation)
        }),
        (
            [client_frame(0x01, b"a"), client_frame(0x81, b"b")].concat(),
            |e| matches!(e, Error::ExpectedContinuation),
        ),
        // Unmasked frame to a server.
        (head(0x81, 0, None), |e| {
            matches!(e, Error::UnmaskedClientFrame)
        }),
    ];
    for (input, is_expected) in cases {
        let (_, err, frames) = read_all(Role::Server, &small_config(), input.clone());
        assert!(is_expected(&err), "{input:x?} gave {err:?}");
        assert_closed_with(&frames, CloseCode::Protocol);
    }
    // Close reason that is not UTF-8: 1007.
    let (_, err, frames) = read_all(
        Role::Server,
        &small_config(),
        client_frame(0x88, b"\x03\xe8\xff"),
    );
    assert!(matches!(err, Error::InvalidUtf8), "{err:?}");
    assert_closed_with(&frames, CloseCode::Invalid);
    // A masked frame to a client.
    let (_, err, frames) = read_all(Role::Client, &small_config(), client_frame(0x81, b"x"));
    assert!(matches!(err, Error::MaskedServerFrame), "{err:?}");
    assert_closed_with(&frames, CloseCode::Protocol);
}

#[test]
fn ping_between_fragments_is_answered_and_the_message_completes() {
    let input = [
        client_frame(0x01, "κό".as_bytes()),
        client_frame(0x89, b"hi"),
        client_frame(0x80, "σμε".as_bytes()),
        client_frame(0x88, &[0x03, 0xe8]),
    ]
    .concat();
    let (messages, err, frames) = read_all(Role::Server, &small_config(), input);
    assert_eq!(
        messages,
        [
            Message::Ping(b"hi".to_vec()),
            Message::Text("κόσμε".into()),
            Message::Close(Some(CloseFrame::new(CloseCode::Normal, ""))),
        ]
    );
    assert!(matches!(err, Error::ConnectionClosed));
    let sent: Vec<_> = frames
        .iter()
        .map(|f| (f.header.opcode, f.payload.clone()))
        .collect();
    assert_eq!(
        sent,
        [
            (OpCode::Pong, b"hi".to_vec()),
            (OpCode::Close, vec![0x03, 0xe8])
        ]
    );
}

// ---- opening handshake, server side ----

const GOOD_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
    Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// `accept_with` on `input`: the error and the status line written.
fn refuse(input: &[u8], config: &Config) -> (Error, String) {
    let mut peer = Peer::new(input);
    let err = match accept_with(&mut peer, config, |_| Ok(Accept::default())) {
        Ok(_) => panic!("accepted {:?}", String::from_utf8_lossy(input)),
        Err(e) => e,
    };
    let out = String::from_utf8_lossy(&peer.output).into_owned();
    let status_line = out.split("\r\n").next().unwrap_or_default().to_owned();
    (err, status_line)
}

#[test]
fn rfc_example_request_is_accepted() {
    let mut peer = Peer::new(GOOD_REQUEST);
    let config = Config::default();
    let (req, leftover) = read_request(&mut peer, &config).unwrap();
    assert!(leftover.is_empty());
    assert_eq!(req.check_upgrade().unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn truncated_and_oversized_heads() {
    let config = Config {
        max_head_size: 200,
        max_headers: 6,
        ..Config::default()
    };
    // Cut before the blank line: the connection ended mid-head.
    let (err, status) = refuse(&GOOD_REQUEST.as_bytes()[..60], &config);
    assert!(matches!(err, Error::MalformedHttp(_)), "{err:?}");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    // Nothing at all: no request, nobody to answer.
    let mut peer = Peer::new(Vec::new());
    assert!(matches!(
        accept_with(&mut peer, &config, |_| Ok(Accept::default())),
        Err(Error::UnexpectedEof)
    ));
    assert!(peer.output.is_empty());
    // A head over the limit, with or without its blank line.
    let big = GOOD_REQUEST.replace("Host:", &format!("X-Pad: {}\r\nHost:", "a".repeat(200)));
    let (err, status) = refuse(big.as_bytes(), &config);
    assert!(matches!(err, Error::HeadTooLarge(200)), "{err:?}");
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    let (err, _) = refuse(&big.as_bytes()[..big.len() - 4], &config);
    assert!(matches!(err, Error::HeadTooLarge(200)), "{err:?}");
    // More header fields than allowed.
    let many = GOOD_REQUEST.replace("Host:", "A: 1\r\nB: 2\r\nHost:");
    let (err, status) = refuse(many.as_bytes(), &config);
    assert!(matches!(err, Error::TooManyHeaders(6)), "{err:?}");
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[test]
fn bad_upgrade_requests_get_their_status() {
    let config = Config::default();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let cases: Vec<(String, u16, ErrorCheck)> = vec![
        (
            GOOD_REQUEST.replacen("GET", "POST", 1),
            405,
            |e| matches!(e, Error::MethodNotGet(m) if m == "POST"),
        ),
        (
            GOOD_REQUEST.replace("Version: 13", "Version: 8"),
            426,
            |e| matches!(e, Error::UnsupportedVersion(_)),
        ),
        // Base64 of 15 bytes, and of 16 bytes without padding.
        (
            GOOD_REQUEST.replace(key, "AAAAAAAAAAAAAAAAAAAA"),
            400,
            |e| {
                matches!(
                    e,
                    Error::InvalidHeader {
                        name: "Sec-WebSocket-Key",
                        ..
                    }
                )
            },
        ),
        (
            GOOD_REQUEST.replace(key, "dGhlIHNhbXBsZSBub25jZQ"),
            400,
            |e| {
                matches!(
                    e,
                    Error::InvalidHeader {
                        name: "Sec-WebSocket-Key",
                        ..
                    }
                )
            },
        ),
        // Two keys.
        (
            GOOD_REQUEST.replace(
                "Sec-WebSocket-Version",
                &format!("Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version"),
            ),
            400,
            |e| {
                matches!(
                    e,
                    Error::InvalidHeader {
                        name: "Sec-WebSocket-Key",
                        ..
                    }
                )
            },
        ),
        (
            GOOD_REQUEST.replace("Host: server.example.com\r\n", ""),
            400,
            |e| matches!(e, Error::MissingHeader("Host")),
        ),
        (
            GOOD_REQUEST.replace("Connection: Upgrade", "Connection: keep-alive"),
            400,
            |e| {
                matches!(
                    e,
                    Error::InvalidHeader {
                        name: "Connection",
                        ..
                    }
                )
            },
        ),
        (GOOD_REQUEST.replace("HTTP/1.1", "HTTP/1.0"), 400, |e| {
            matches!(e, Error::WrongHttpVersion)
        }),
    ];
    for (request, want_status, is_expected) in cases {
        let (err, status) = refuse(request.as_bytes(), &config);
        assert!(is_expected(&err), "{request:?} gave {err:?}");
        assert_eq!(err.http_status(), Some(want_status));
        assert!(
            status.starts_with(&format!("HTTP/1.1 {want_status} ")),
            "{status}"
        );
    }
}

// ---- opening handshake, client side ----

#[test]
fn client_refuses_wrong_accept_and_bounds_error_bodies() {
    let request = ClientRequest::new("ws://h/").unwrap();
    let config = Config::default();
    let wrong = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert!(matches!(
        client_handshake(Peer::new(wrong), &request, &config),
        Err(Error::WrongAccept)
    ));
    let refused = "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nno thanksEXTRA";
    match client_handshake(Peer::new(refused), &request, &config) {
        Err(Error::HttpStatus { status: 403, body }) => assert_eq!(body, b"no thanks"),
        other => panic!("{:?}", other.err()),
    }
    // A huge declared body is read only up to the 4 KiB bound.
    let mut huge = b"HTTP/1.1 500 Oops\r\nContent-Length: 99999999999\r\n\r\n".to_vec();
    huge.extend_from_slice(&[b'x'; 10_000]);
    match client_handshake(Peer::new(huge), &request, &config) {
        Err(Error::HttpStatus { status: 500, body }) => assert_eq!(body.len(), 4096),
        other => panic!("{:?}", other.err()),
    }
    // A truncated answer.
    assert!(matches!(
        client_handshake(Peer::new("HTTP/1.1 101 Switching"), &request, &config),
        Err(Error::MalformedHttp(_))
    ));
    // An HTTP version that does not exist.
    let v13 = wrong.replace("HTTP/1.1", "HTTP/1.3");
    assert!(matches!(
        client_handshake(Peer::new(v13), &request, &config),
        Err(Error::MalformedHttp(_))
    ));
}
