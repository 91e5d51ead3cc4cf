//! Every way the message layer refuses a peer's frames (RFC 6455 §5, §7, §8),
//! checked on the outcome a peer sees: the `Error` returned to the
//! application AND the Close frame written back on the wire (1002 protocol
//! error, 1007 invalid data, 1009 too big), plus the accepted cases next to
//! each rule (control frames between fragments, ping answers, the close
//! handshake) so that no rule is met by refusing everything.

mod common;

use common::*;
use wsproto::{CloseCode, CloseFrame, Config, Error, Message, OpCode, Role, WebSocket};

/// A connection of `role` over an in-memory stream holding `input`.
fn ws(role: Role, config: &Config, input: Vec<u8>) -> WebSocket<MemStream> {
    WebSocket::from_raw_socket(MemStream::new(input), role, config)
}

/// What happened when a connection read its input until the first error.
struct Outcome {
    messages: Vec<Message>,
    error: Error,
    frames: Vec<WireFrame>,
    ws: WebSocket<MemStream>,
}

/// Read from a fresh connection until `read` fails (bounded: the inputs here
/// hold at most a handful of frames).
fn run(role: Role, config: &Config, input: Vec<u8>) -> Outcome {
    let mut ws = ws(role, config, input);
    let mut messages = Vec::new();
    for _ in 0..64 {
        match ws.read() {
            Ok(m) => messages.push(m),
            Err(error) => {
                let frames = parse_frames(&ws.get_ref().output);
                return Outcome {
                    messages,
                    error,
                    frames,
                    ws,
                };
            }
        }
    }
    panic!("no error after 64 reads; messages: {messages:?}");
}

/// Feed `input` and check that the connection failed with close `code`:
/// exactly one Close frame went out, last, masked only by a client; the
/// connection is then over for reading and writing. Returns the error.
fn expect_fail_with(role: Role, config: &Config, input: Vec<u8>, code: u16) -> Outcome {
    let mut out = run(role, config, input);
    let close = out
        .frames
        .last()
        .unwrap_or_else(|| panic!("no Close frame written for {:?}", out.error));
    assert_eq!(close.opcode, OpCode::Close, "last frame: {close:?}");
    assert_eq!(
        close.close_code(),
        Some(code),
        "close code for {:?} (reason {:?})",
        out.error,
        close.close_reason()
    );
    assert_eq!(close.masked, role == Role::Client, "masking of {close:?}");
    assert!(close.fin);
    let closes = out.frames.iter().filter(|f| f.opcode == OpCode::Close);
    assert_eq!(closes.count(), 1, "frames: {:?}", out.frames);
    assert_eq!(out.error.close_code(), Some(CloseCode::from(code)));
    // The connection is failed: nothing more to read, nothing may be sent.
    assert!(matches!(out.ws.read(), Err(Error::ConnectionClosed)));
    assert!(matches!(
        out.ws.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
    out
}

fn server_fail(input: Vec<u8>, code: u16) -> Error {
    expect_fail_with(Role::Server, &Config::default(), input, code).error
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

// ---- RFC 6455 §5.1: masking direction ----

#[test]
fn a_server_refuses_an_unmasked_client_frame_with_1002() {
    let e = server_fail(server_frame(true, TEXT, b"Hello"), 1002);
    assert!(matches!(e, Error::UnmaskedClientFrame), "{e:?}");
}

#[test]
fn a_client_refuses_a_masked_server_frame_with_1002() {
    let out = expect_fail_with(
        Role::Client,
        &Config::default(),
        client_frame(true, TEXT, b"Hello"),
        1002,
    );
    assert!(
        matches!(out.error, Error::MaskedServerFrame),
        "{:?}",
        out.error
    );
}

// ---- RFC 6455 §5.2: reserved bits and opcodes ----

#[test]
fn each_rsv_bit_without_an_extension_is_refused_with_1002() {
    for rsv in [4u8, 2, 1, 7] {
        let e = server_fail(frame_bytes(true, rsv, TEXT, Some(MASK), b"x"), 1002);
        assert!(
            matches!(e, Error::ReservedBits { bits } if bits == rsv),
            "rsv {rsv}: {e:?}"
        );
    }
    // Also on a control frame.
    let e = server_fail(frame_bytes(true, 4, PING, Some(MASK), b"x"), 1002);
    assert!(matches!(e, Error::ReservedBits { bits: 4 }), "{e:?}");
}

#[test]
fn every_reserved_opcode_is_refused_with_1002() {
    for op in (3u8..=7).chain(11..=15) {
        let e = server_fail(client_frame(true, op, b"abc"), 1002);
        assert!(
            matches!(e, Error::ReservedOpcode(n) if n == op),
            "opcode {op}: {e:?}"
        );
    }
}

// ---- RFC 6455 §5.5: control frames ----

#[test]
fn control_frames_over_125_bytes_are_refused_with_1002() {
    for op in [PING, PONG, CLOSE] {
        let e = server_fail(client_frame(true, op, &[b'a'; 126]), 1002);
        assert!(
            matches!(e, Error::ControlFrameTooLong(126)),
            "op {op}: {e:?}"
        );
    }
}

#[test]
fn a_125_byte_ping_is_the_largest_accepted_and_answered() {
    let payload = vec![b'p'; 125];
    let mut ws = ws(
        Role::Server,
        &Config::default(),
        client_frame(true, PING, &payload),
    );
    assert_eq!(ws.read().unwrap(), Message::Ping(payload.clone()));
    let frames = parse_frames(&ws.get_ref().output);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, &frames[0].payload),
        (OpCode::Pong, &payload)
    );
}

#[test]
fn a_fragmented_ping_is_refused_with_1002() {
    let e = server_fail(client_frame(false, PING, b"x"), 1002);
    assert!(matches!(e, Error::FragmentedControlFrame), "{e:?}");
    // Also inside a fragmented message.
    let input = concat(&[
        client_frame(false, TEXT, b"a"),
        client_frame(false, PING, b"x"),
    ]);
    let e = server_fail(input, 1002);
    assert!(matches!(e, Error::FragmentedControlFrame), "{e:?}");
}

// ---- RFC 6455 §5.4: fragmentation ----

#[test]
fn a_continuation_without_a_message_to_continue_is_refused_with_1002() {
    let e = server_fail(client_frame(true, CONT, b"x"), 1002);
    assert!(matches!(e, Error::UnexpectedContinuation), "{e:?}");
    // After a complete message, too.
    let input = concat(&[
        client_frame(true, TEXT, b"a"),
        client_frame(false, CONT, b"b"),
    ]);
    let out = expect_fail_with(Role::Server, &Config::default(), input, 1002);
    assert_eq!(out.messages, [Message::text("a")]);
    assert!(matches!(out.error, Error::UnexpectedContinuation));
}

#[test]
fn a_new_data_frame_inside_a_fragmented_message_is_refused_with_1002() {
    for (first, second) in [
        (TEXT, TEXT),
        (TEXT, BINARY),
        (BINARY, TEXT),
        (BINARY, BINARY),
    ] {
        let input = concat(&[
            client_frame(false, first, b"a"),
            client_frame(true, second, b"b"),
        ]);
        let e = server_fail(input, 1002);
        assert!(
            matches!(e, Error::ExpectedContinuation),
            "{first}->{second}: {e:?}"
        );
    }
}

#[test]
fn control_frames_between_fragments_are_handled_and_the_message_reassembled() {
    let input = concat(&[
        client_frame(false, TEXT, b"Hel"),
        client_frame(true, PING, b"p1"),
        client_frame(false, CONT, b""),
        client_frame(true, PONG, b"unsolicited"),
        client_frame(true, PING, b"p2"),
        client_frame(true, CONT, b"lo"),
    ]);
    let mut ws = ws(Role::Server, &Config::default(), input);
    assert_eq!(ws.read().unwrap(), Message::Ping(b"p1".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::Pong(b"unsolicited".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::Ping(b"p2".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::text("Hello"));
    // Exactly two pongs went out (the pong received is not answered).
    assert_eq!(
        ws.get_ref().output,
        concat(&[
            server_frame(true, PONG, b"p1"),
            server_frame(true, PONG, b"p2")
        ])
    );
    // The input is exhausted without a close handshake: 1006, nothing sent.
    assert!(matches!(ws.read(), Err(Error::UnexpectedEof)));
    assert_eq!(parse_frames(&ws.get_ref().output).len(), 2);
}

// ---- RFC 6455 §5.5.1, §7.4: close frames ----

#[test]
fn a_close_payload_of_one_byte_is_refused_with_1002() {
    let e = server_fail(client_frame(true, CLOSE, &[0x03]), 1002);
    assert!(matches!(e, Error::CloseFrameTooShort), "{e:?}");
}

#[test]
fn close_codes_that_must_not_be_on_the_wire_are_refused_with_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let e = server_fail(client_frame(true, CLOSE, &close_payload(code, b"")), 1002);
        assert!(
            matches!(e, Error::InvalidCloseCode(c) if c == code),
            "code {code}: {e:?}"
        );
    }
}

#[test]
fn valid_close_codes_are_echoed_back() {
    for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 4000, 4999] {
        for role in [Role::Server, Role::Client] {
            let payload = close_payload(code, "bye é".as_bytes());
            let input = match role {
                Role::Server => client_frame(true, CLOSE, &payload),
                Role::Client => server_frame(true, CLOSE, &payload),
            };
            let mut ws = ws(role, &Config::default(), input);
            assert_eq!(
                ws.read().unwrap(),
                Message::Close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: "bye é".into()
                })),
                "{role:?} code {code}"
            );
            let frames = parse_frames(&ws.get_ref().output);
            assert_eq!(frames.len(), 1, "{role:?} {code}: {frames:?}");
            assert_eq!(frames[0].close_code(), Some(code));
            assert_eq!(frames[0].masked, role == Role::Client);
            assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
            assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
            assert!(matches!(
                ws.send(Message::text("x")),
                Err(Error::AlreadyClosed)
            ));
            assert_eq!(parse_frames(&ws.get_ref().output).len(), 1);
        }
    }
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close() {
    let mut ws = ws(
        Role::Server,
        &Config::default(),
        client_frame(true, CLOSE, b""),
    );
    assert_eq!(ws.read().unwrap(), Message::Close(None));
    assert_eq!(ws.get_ref().output, server_frame(true, CLOSE, b""));
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn a_close_reason_that_is_not_utf8_is_refused_with_1007() {
    let e = server_fail(
        client_frame(true, CLOSE, &close_payload(1000, b"ok\xff")),
        1007,
    );
    assert!(matches!(e, Error::InvalidUtf8), "{e:?}");
}

// ---- RFC 6455 §8.1: UTF-8 ----

#[test]
fn invalid_utf8_text_is_refused_with_1007() {
    let cases: [&[u8]; 5] = [
        b"\xff",
        b"\xc0\x80",                         // overlong NUL
        b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80", // surrogate after "κό"
        b"\xf4\x90\x80\x80",                 // above U+10FFFF
        b"\xe2\x82",                         // truncated at the end of the message
    ];
    for bad in cases {
        let e = server_fail(client_frame(true, TEXT, bad), 1007);
        assert!(matches!(e, Error::InvalidUtf8), "{bad:x?}: {e:?}");
    }
    // Invalid only once reassembled: the last fragment ends mid-character.
    let input = concat(&[
        client_frame(false, TEXT, "a€".as_bytes()),
        client_frame(true, CONT, b"\xe2\x82"),
    ]);
    let e = server_fail(input, 1007);
    assert!(matches!(e, Error::InvalidUtf8), "{e:?}");
}

#[test]
fn utf8_split_between_fragments_is_accepted() {
    let euro = "€".as_bytes(); // e2 82 ac
    let input = concat(&[
        client_frame(false, TEXT, &[b'a', euro[0]]),
        client_frame(false, CONT, &euro[1..2]),
        client_frame(true, CONT, &[euro[2], b'b']),
    ]);
    let mut ws = ws(Role::Server, &Config::default(), input);
    assert_eq!(ws.read().unwrap(), Message::text("a€b"));
}

#[test]
fn invalid_utf8_in_a_first_fragment_fails_before_the_message_ends() {
    // Only the first fragment (FIN=0) is ever sent; no more input follows.
    // Waiting for the end of the message would give UnexpectedEof instead.
    let input = client_frame(false, TEXT, b"\xce\xba\xed\xa0\x80abc");
    let e = server_fail(input, 1007);
    assert!(matches!(e, Error::InvalidUtf8), "{e:?}");
}

#[test]
fn invalid_utf8_fails_fast_inside_a_frame_whose_payload_is_still_arriving() {
    // A 100-byte text frame of which only the first 5 payload bytes arrive.
    let mut payload = b"ab\xffcd".to_vec();
    payload.resize(100, b'z');
    let mut input = client_frame(true, TEXT, &payload);
    input.truncate(2 + 4 + 5);
    let e = server_fail(input, 1007);
    assert!(matches!(e, Error::InvalidUtf8), "{e:?}");
}

// ---- limits: close 1009 ----

#[test]
fn a_frame_over_max_frame_size_is_refused_with_1009_without_reading_its_payload() {
    // Declares 2^40 bytes; not one payload byte follows. Had the reader tried
    // to read the payload first, it would have hit end of input instead.
    let mut input = vec![0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0];
    input.extend_from_slice(&MASK);
    let e = server_fail(input, 1009);
    assert!(
        matches!(e, Error::FrameTooBig { size, limit } if size == 1 << 40 && limit == 16 << 20),
        "{e:?}"
    );
    // A configured limit applies exactly: 100 is fine, 101 is not.
    let config = Config {
        max_frame_size: 100,
        ..Config::default()
    };
    let input = concat(&[
        client_frame(true, BINARY, &[1; 100]),
        client_frame(true, BINARY, &[2; 101]),
    ]);
    let out = expect_fail_with(Role::Server, &config, input, 1009);
    assert_eq!(out.messages, [Message::Binary(vec![1; 100])]);
    assert!(
        matches!(
            out.error,
            Error::FrameTooBig {
                size: 101,
                limit: 100
            }
        ),
        "{:?}",
        out.error
    );
}

#[test]
fn a_message_over_max_message_size_across_fragments_is_refused_with_1009() {
    let config = Config {
        max_message_size: 10,
        ..Config::default()
    };
    // 5 + 5 = 10 is allowed.
    let ok = concat(&[
        client_frame(false, BINARY, &[1; 5]),
        client_frame(true, CONT, &[2; 5]),
    ]);
    let mut w = ws(Role::Server, &config, ok);
    assert_eq!(
        w.read().unwrap(),
        Message::Binary([[1u8; 5], [2; 5]].concat())
    );
    // 6 + 6 = 12 is not; refused at the second header, before its payload
    // (which is not even in the input).
    let mut input = concat(&[
        client_frame(false, TEXT, b"abcdef"),
        client_frame(true, CONT, b"ghijkl"),
    ]);
    input.truncate(input.len() - 6);
    let out = expect_fail_with(Role::Server, &config, input, 1009);
    assert!(
        matches!(
            out.error,
            Error::MessageTooBig {
                size: 12,
                limit: 10
            }
        ),
        "{:?}",
        out.error
    );
}

// ---- RFC 6455 §5.2: length encoding ----

#[test]
fn non_minimal_lengths_and_a_64_bit_length_with_msb_set_are_refused_with_1002() {
    let with_mask = |head: &[u8], payload_len: usize| {
        let mut v = head.to_vec();
        v.extend_from_slice(&MASK);
        v.resize(v.len() + payload_len, 0);
        v
    };
    let cases: [(Vec<u8>, u64); 4] = [
        // 125 in the 16-bit form.
        (with_mask(&[0x82, 0xfe, 0x00, 0x7d], 125), 125),
        // 0 in the 16-bit form.
        (with_mask(&[0x82, 0xfe, 0x00, 0x00], 0), 0),
        // 126 and 65535 in the 64-bit form.
        (with_mask(&[0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 126], 126), 126),
        (
            with_mask(&[0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 0),
            65535,
        ),
    ];
    for (input, n) in cases {
        let e = server_fail(input, 1002);
        assert!(
            matches!(e, Error::NonMinimalLength(m) if m == n),
            "{n}: {e:?}"
        );
    }
    let e = server_fail(with_mask(&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0], 0), 1002);
    assert!(matches!(e, Error::LengthOverflow), "{e:?}");
    let e = server_fail(
        with_mask(
            &[0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            0,
        ),
        1002,
    );
    assert!(matches!(e, Error::LengthOverflow), "{e:?}");
}

// ---- end of stream ----

#[test]
fn end_of_stream_mid_frame_is_unexpected_eof_and_sends_nothing() {
    let whole = client_frame(true, TEXT, b"Hello");
    // Cut inside the payload, inside the mask, inside the first two bytes.
    for cut in [8, 4, 1] {
        let out = run(Role::Server, &Config::default(), whole[..cut].to_vec());
        assert!(
            matches!(out.error, Error::UnexpectedEof),
            "cut {cut}: {:?}",
            out.error
        );
        // 1006 is never sent on the wire (RFC 6455 §7.4.1).
        assert!(out.frames.is_empty(), "cut {cut}: {:?}", out.frames);
        assert_eq!(out.error.close_code(), None);
        let mut ws = out.ws;
        assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    }
    // Inside a fragmented message, between its frames.
    let out = run(
        Role::Server,
        &Config::default(),
        client_frame(false, BINARY, b"part"),
    );
    assert!(matches!(out.error, Error::UnexpectedEof), "{:?}", out.error);
    assert!(out.messages.is_empty());
}

// ---- pings and the close handshake (RFC 6455 §5.5.2, §5.5.3, §7) ----

#[test]
fn a_server_answers_a_ping_with_an_unmasked_pong_of_the_same_payload() {
    let mut ws = ws(
        Role::Server,
        &Config::default(),
        client_frame(true, PING, b"Hello"),
    );
    assert_eq!(ws.read().unwrap(), Message::Ping(b"Hello".to_vec()));
    // RFC 6455 §5.7: unmasked Pong "Hello".
    assert_eq!(
        ws.get_ref().output,
        [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
}

#[test]
fn a_client_answers_a_ping_with_a_masked_pong_of_the_same_payload() {
    let input = concat(&[
        server_frame(true, PING, b"Hello"),
        server_frame(true, PING, b""),
    ]);
    let mut ws = ws(Role::Client, &Config::default(), input);
    assert_eq!(ws.read().unwrap(), Message::Ping(b"Hello".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::Ping(Vec::new()));
    let out = &ws.get_ref().output;
    assert_eq!(&out[..2], &[0x8a, 0x85]);
    let frames = parse_frames(out);
    assert_eq!(frames.len(), 2);
    for (f, p) in frames.iter().zip([&b"Hello"[..], b""]) {
        assert_eq!((f.opcode, f.masked, f.fin), (OpCode::Pong, true, true));
        assert_eq!(f.payload, p);
    }
}

#[test]
fn our_close_then_the_peer_reply_ends_the_connection() {
    for role in [Role::Server, Role::Client] {
        let frame = |op, p: &[u8]| match role {
            Role::Server => client_frame(true, op, p),
            Role::Client => server_frame(true, op, p),
        };
        // Data the peer sent before seeing our Close is still delivered.
        let input = concat(&[
            frame(TEXT, b"late"),
            frame(CLOSE, &close_payload(4001, b"ok")),
        ]);
        let mut ws = ws(role, &Config::default(), input);
        ws.close(CloseCode::Other(4000), "done").unwrap();
        assert!(ws.close_sent());
        let frames = parse_frames(&ws.get_ref().output);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].close_code(), Some(4000));
        assert_eq!(frames[0].close_reason(), "done");
        assert_eq!(frames[0].masked, role == Role::Client);
        assert_eq!(ws.read().unwrap(), Message::text("late"));
        assert_eq!(
            ws.read().unwrap(),
            Message::Close(Some(CloseFrame {
                code: CloseCode::Other(4001),
                reason: "ok".into()
            }))
        );
        assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
        // The reply was not answered again.
        assert_eq!(parse_frames(&ws.get_ref().output).len(), 1, "{role:?}");
    }
}

#[test]
fn sending_after_close_is_already_closed() {
    let mut ws = ws(Role::Client, &Config::default(), Vec::new());
    ws.close(CloseCode::Normal, "").unwrap();
    for m in [
        Message::text("x"),
        Message::binary(vec![1]),
        Message::Ping(vec![]),
        Message::close(CloseCode::Normal, ""),
    ] {
        assert!(matches!(ws.send(m), Err(Error::AlreadyClosed)));
    }
    // A second close() is a no-op, not a second frame.
    ws.close(CloseCode::Away, "again").unwrap();
    let frames = parse_frames(&ws.get_ref().output);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1000));
}

#[test]
fn unsendable_control_frames_are_refused_and_nothing_is_written() {
    let mut ws = ws(Role::Server, &Config::default(), Vec::new());
    let e = ws.send(Message::Ping(vec![0; 126])).unwrap_err();
    assert!(matches!(e, Error::ControlFrameTooLong(126)), "{e:?}");
    let e = ws.send(Message::Pong(vec![0; 200])).unwrap_err();
    assert!(matches!(e, Error::ControlFrameTooLong(200)), "{e:?}");
    for (code, raw) in [
        (CloseCode::Status, 1005u16),
        (CloseCode::Abnormal, 1006),
        (CloseCode::Other(1015), 1015),
        (CloseCode::Other(999), 999),
        (CloseCode::Other(5000), 5000),
    ] {
        let e = ws.close(code, "").unwrap_err();
        assert!(
            matches!(e, Error::InvalidCloseCode(c) if c == raw),
            "{raw}: {e:?}"
        );
        assert!(!ws.close_sent());
    }
    assert!(ws.get_ref().output.is_empty());
    // The connection is still usable: a 125-byte ping and a valid close go out.
    ws.send(Message::Ping(vec![7; 125])).unwrap();
    ws.close(CloseCode::Normal, "").unwrap();
    let frames = parse_frames(&ws.get_ref().output);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].payload, vec![7; 125]);
    assert_eq!(frames[1].close_code(), Some(1000));
}
