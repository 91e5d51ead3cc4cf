//! permessage-deflate (RFC 7692) through the public API: the §7.2.3
//! examples byte for byte, negotiation in the handshake, RSV1 rules, and the
//! decompression bomb.
#![cfg(feature = "deflate")]

use std::io::{self, Cursor, Read, Write};

use wsproto::{accept_with, Accept};
use wsproto::{
    apply_mask, Config, DeflateConfig, DeflateParams, Error, Frame, Message, OpCode, Role,
    WebSocket,
};

/// A stream that reads from a fixed input and records what is written.
struct Pipe {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Pipe {
    fn new(input: Vec<u8>) -> Pipe {
        Pipe {
            input: Cursor::new(input),
            output: Vec::new(),
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn params(no_context_takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: no_context_takeover,
        client_no_context_takeover: no_context_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

fn deflate_config() -> DeflateConfig {
    DeflateConfig {
        min_compress_size: 0,
        ..DeflateConfig::default()
    }
}

fn socket(role: Role, input: Vec<u8>, no_context_takeover: bool) -> WebSocket<Pipe> {
    let mut ws = WebSocket::from_raw_socket(Pipe::new(input), role, &Config::default());
    ws.enable_deflate(params(no_context_takeover), &deflate_config());
    ws
}

/// Frame bytes as a client would send them: masked with a fixed key.
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    assert!(payload.len() < 126);
    let mut out = vec![first_byte, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    let at = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[at..], mask, 0);
    out
}

const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

#[test]
fn rfc_7692_7_2_3_1_hello_is_sent_byte_for_byte() {
    let mut ws = socket(Role::Server, Vec::new(), false);
    ws.send(Message::text("Hello")).unwrap();
    let mut expected = vec![0xc1, 0x07];
    expected.extend_from_slice(&HELLO);
    assert_eq!(ws.get_ref().output, expected);
}

#[test]
fn rfc_7692_7_2_3_2_shared_context_second_message() {
    let mut ws = socket(Role::Server, Vec::new(), false);
    ws.send(Message::text("Hello")).unwrap();
    ws.send(Message::text("Hello")).unwrap();
    let out = &ws.get_ref().output;
    assert_eq!(&out[9..], &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
}

#[test]
fn no_context_takeover_sends_the_same_bytes_twice() {
    let mut ws = socket(Role::Server, Vec::new(), true);
    ws.send(Message::text("Hello")).unwrap();
    ws.send(Message::text("Hello")).unwrap();
    let out = &ws.get_ref().output;
    assert_eq!(out[..9], out[9..]);
}

#[test]
fn empty_messages_after_a_compressed_one_stay_decodable() {
    let mut client = socket(Role::Client, Vec::new(), false);
    for text in ["Hello", "", "", "Hello", ""] {
        client.send(Message::text(text)).unwrap();
    }
    let wire = client.get_ref().output.clone();
    // Every compressed frame carries at least the block header byte: an
    // empty payload plus the `00 00 ff ff` tail would not be a deflate block.
    let mut r = &wire[..];
    let mut server_input = Vec::new();
    while !r.is_empty() {
        let frame = wsproto::read_frame(&mut r, 1 << 20).unwrap();
        assert!(frame.header.rsv1);
        assert!(
            !frame.payload.is_empty(),
            "empty compressed payload on the wire"
        );
        wsproto::write_frame(&mut server_input, &frame).unwrap();
    }
    let mut server = socket(Role::Server, server_input, false);
    for text in ["Hello", "", "", "Hello", ""] {
        assert_eq!(server.read().unwrap(), Message::text(text));
    }
}

#[test]
fn rfc_7692_examples_are_received() {
    let mut input = client_frame(0xc1, &HELLO);
    // §7.2.3.2: the same message with the shared context.
    input.extend(client_frame(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    // §7.2.3.1: a compressed message split over two frames.
    input.extend(client_frame(0x41, &[0xf2, 0x48, 0xcd]));
    input.extend(client_frame(0x80, &[0xc9, 0xc9, 0x07, 0x00]));
    // §7.2.3.3: a message compressed in a stored (uncompressed) block.
    input.extend(client_frame(
        0xc1,
        &[
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ],
    ));
    // An uncompressed message is still fine (RSV1 clear).
    input.extend(client_frame(0x81, b"plain"));
    let mut ws = socket(Role::Server, input, false);
    for expected in ["Hello", "Hello", "Hello", "Hello", "plain"] {
        assert_eq!(ws.read().unwrap(), Message::text(expected));
    }
}

fn read_error(input: Vec<u8>) -> (Error, Vec<u8>) {
    let mut ws = socket(Role::Server, input, false);
    let err = loop {
        match ws.read() {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    (err, ws.get_ref().output.clone())
}

fn close_code(output: &[u8]) -> u16 {
    let frame = wsproto::read_frame(&mut &output[..], 125).expect("a close frame was written");
    assert_eq!(frame.header.opcode, OpCode::Close);
    u16::from_be_bytes([frame.payload[0], frame.payload[1]])
}

#[test]
fn rsv1_on_a_continuation_frame_is_a_protocol_error() {
    let mut input = client_frame(0x41, &[0xf2, 0x48, 0xcd]);
    input.extend(client_frame(0xc0, &[0xc9, 0xc9, 0x07, 0x00]));
    let (err, out) = read_error(input);
    assert!(matches!(err, Error::ReservedBits { bits: 0b100 }), "{err}");
    assert_eq!(close_code(&out), 1002);
}

#[test]
fn rsv1_on_a_control_frame_is_a_protocol_error() {
    let (err, out) = read_error(client_frame(0xc9, b"ping"));
    assert!(matches!(err, Error::ReservedBits { .. }), "{err}");
    assert_eq!(close_code(&out), 1002);
}

#[test]
fn rsv1_without_negotiation_is_a_protocol_error() {
    let mut ws = WebSocket::from_raw_socket(
        Pipe::new(client_frame(0xc1, &HELLO)),
        Role::Server,
        &Config::default(),
    );
    assert!(matches!(
        ws.read(),
        Err(Error::ReservedBits { bits: 0b100 })
    ));
    assert_eq!(close_code(&ws.get_ref().output), 1002);
}

#[test]
fn corrupt_compressed_data_fails_with_1007() {
    let (err, out) = read_error(client_frame(0xc2, &[0xff, 0xff, 0xff, 0xff]));
    assert!(matches!(err, Error::InvalidCompressedData), "{err}");
    assert_eq!(close_code(&out), 1007);
}

#[test]
fn compressed_invalid_utf8_fails_with_1007() {
    // A stored block holding 0xff, which is never valid UTF-8.
    let (err, out) = read_error(client_frame(
        0xc1,
        &[0x00, 0x01, 0x00, 0xfe, 0xff, 0xff, 0x00],
    ));
    assert!(matches!(err, Error::InvalidUtf8), "{err}");
    assert_eq!(close_code(&out), 1007);
}

#[test]
fn decompression_bomb_fails_with_1009_while_inflating() {
    // 16 MiB of zeros compress to ~16 KiB; the limit is 1 MiB.
    let mut sender = socket(Role::Client, Vec::new(), false);
    sender.send(Message::Binary(vec![0u8; 16 << 20])).unwrap();
    let bomb = sender.get_ref().output.clone();
    assert!(bomb.len() < 32 * 1024, "bomb is {} bytes", bomb.len());
    let config = Config {
        max_message_size: 1 << 20,
        ..Config::default()
    };
    let mut ws = WebSocket::from_raw_socket(Pipe::new(bomb), Role::Server, &config);
    ws.enable_deflate(params(false), &deflate_config());
    match ws.read() {
        Err(Error::MessageTooBig { limit, .. }) => assert_eq!(limit, 1 << 20),
        other => panic!("expected MessageTooBig, got {other:?}"),
    }
    assert_eq!(close_code(&ws.get_ref().output), 1009);
}

#[test]
fn an_incompressible_message_just_under_the_limit_is_accepted() {
    // 9,998 random bytes deflate to slightly *more* than 9,998: the limit
    // is on the message the application receives, not on the frame.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..9_998)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let mut sender = socket(Role::Client, Vec::new(), false);
    sender.send(Message::Binary(data.clone())).unwrap();
    let wire = sender.get_ref().output.clone();
    assert!(
        wire.len() > 9_998 + 8,
        "the frame is larger than the message"
    );
    let config = Config {
        max_message_size: 10_000,
        ..Config::default()
    };
    let mut ws = WebSocket::from_raw_socket(Pipe::new(wire.clone()), Role::Server, &config);
    ws.enable_deflate(params(false), &deflate_config());
    assert_eq!(ws.read().unwrap(), Message::Binary(data));
    // One byte over the limit once inflated is still refused.
    let tight = Config {
        max_message_size: 9_997,
        ..Config::default()
    };
    let mut ws = WebSocket::from_raw_socket(Pipe::new(wire), Role::Server, &tight);
    ws.enable_deflate(params(false), &deflate_config());
    assert!(matches!(ws.read(), Err(Error::MessageTooBig { .. })));
}

#[test]
fn small_messages_stay_uncompressed_below_the_threshold() {
    let mut ws =
        WebSocket::from_raw_socket(Pipe::new(Vec::new()), Role::Server, &Config::default());
    ws.enable_deflate(params(false), &DeflateConfig::default()); // threshold 32
    ws.send(Message::text("short")).unwrap();
    assert_eq!(ws.get_ref().output, b"\x81\x05short");
    ws.send(Message::text("x".repeat(100))).unwrap();
    let out = &ws.get_ref().output[7..];
    assert_eq!(out[0], 0xc1, "RSV1 set on the large message");
    assert!(out.len() < 100);
}

#[test]
fn roundtrip_client_to_server_with_fragments_and_pings_between() {
    let mut client = socket(Role::Client, Vec::new(), false);
    let text: String = "the quick brown fox jumps over the lazy dog; ".repeat(400);
    client.send(Message::Text(text.clone())).unwrap();
    client
        .send(Message::Binary((0..=255u8).cycle().take(100_000).collect()))
        .unwrap();
    client.send(Message::Ping(b"p".to_vec())).unwrap();
    client.send(Message::Text(text.clone())).unwrap();
    let wire = client.get_ref().output.clone();
    let mut server = socket(Role::Server, wire, false);
    assert_eq!(server.read().unwrap(), Message::Text(text.clone()));
    match server.read().unwrap() {
        Message::Binary(b) => assert_eq!(b.len(), 100_000),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.read().unwrap(), Message::Ping(b"p".to_vec()));
    assert_eq!(server.read().unwrap(), Message::Text(text));
}

fn handshake(request: &str, config: &Config) -> (String, Option<DeflateParams>) {
    let ws = accept_with(Pipe::new(request.as_bytes().to_vec()), config, |_| {
        Ok(Accept::default())
    })
    .expect("handshake succeeds");
    (
        String::from_utf8(ws.get_ref().output.clone()).unwrap(),
        ws.deflate_params(),
    )
}

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

#[test]
fn server_handshake_accepts_a_browser_offer() {
    let request = format!(
        "{REQUEST}Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    let (response, params) = handshake(&request, &Config::default());
    assert!(
        response.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
        "{response}"
    );
    assert_eq!(params.map(|p| p.client_max_window_bits), Some(15));
}

#[test]
fn server_handshake_declines_bad_offers_and_honours_config() {
    let bad = format!("{REQUEST}Sec-WebSocket-Extensions: permessage-deflate; unknown=1\r\n\r\n");
    let (response, params) = handshake(&bad, &Config::default());
    assert!(!response.contains("Sec-WebSocket-Extensions"), "{response}");
    assert!(params.is_none());

    let off = Config {
        deflate: None,
        ..Config::default()
    };
    let good = format!("{REQUEST}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    let (response, params) = handshake(&good, &off);
    assert!(!response.contains("Sec-WebSocket-Extensions"), "{response}");
    assert!(params.is_none());

    let two_headers = format!(
        "{REQUEST}Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n"
    );
    let (response, params) = handshake(&two_headers, &Config::default());
    assert!(
        response.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        ),
        "{response}"
    );
    assert!(params.is_some_and(|p| p.server_no_context_takeover));
}

#[test]
fn frame_constructor_has_no_rsv1() {
    // The frame level never compresses on its own.
    assert!(!Frame::text("Hello").header.rsv1);
}
