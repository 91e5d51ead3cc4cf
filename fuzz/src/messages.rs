//! The message-level read loop under fuzzing, and an independent model of
//! what RFC 6455 says a receiver must do with a byte stream.
//!
//! Input layout for `read_frames_*`: `[faults, config, stream...]`.
//! - `faults`: bits 0–5 read chunk size (0 = unlimited), bit 6 inject a
//!   `WouldBlock` before every read (the loop retries, as after a read
//!   time-out), bit 7 inject `Interrupted`.
//! - `config`: bits 0–1 read buffer size, bits 2–3 frame/message limits,
//!   bits 4–6 how many leading stream bytes arrive as handshake leftover
//!   (`WebSocket::from_partially_read`).

use std::io::ErrorKind;

use wsproto::{CloseCode, CloseFrame, Config, Error, Message, OpCode, Role, WebSocket};

use crate::FuzzStream;

const BUFFER_SIZES: [usize; 4] = [8 * 1024, 0, 256, 1024];
/// (max_frame_size, max_message_size); the first is the brief's "small
/// config", the others make the limits reachable with small inputs.
const LIMITS: [(usize, usize); 4] = [
    (64 << 10, 256 << 10),
    (100, 300),
    (1000, 1000),
    (64 << 10, 0),
];
const LEFTOVERS: [usize; 8] = [0, 1, 2, 5, 14, 64, 200, 1000];

/// Decode the two control bytes into a config, a chunk size, fault flags
/// and a leftover length.
pub fn decode_controls(faults: u8, config: u8) -> (Config, usize, bool, bool, usize) {
    let chunk = match faults & 0x3f {
        0 => usize::MAX,
        n => usize::from(n),
    };
    let (max_frame_size, max_message_size) = LIMITS[usize::from((config >> 2) & 3)];
    let cfg = Config {
        max_frame_size,
        max_message_size,
        read_buffer_size: BUFFER_SIZES[usize::from(config & 3)],
        ..Config::default()
    };
    let leftover = LEFTOVERS[usize::from((config >> 4) & 7)];
    (cfg, chunk, faults & 0x40 != 0, faults & 0x80 != 0, leftover)
}

/// The fuzz target body shared by `read_frames_server` and `read_frames_client`.
pub fn fuzz_read_frames(data: &[u8], role: Role) {
    let [faults, config, stream @ ..] = data else {
        return;
    };
    let (cfg, chunk, would_block, interrupt, leftover) = decode_controls(*faults, *config);
    let split = leftover.min(stream.len());
    let (got, end, written) = run_reader(stream, split, role, &cfg, chunk, would_block, interrupt);

    // 1. The same bytes delivered whole give the same messages and error:
    //    the reader's result must not depend on how reads are cut up or
    //    on retried time-outs.
    let (whole, whole_end, _) = run_reader(stream, 0, role, &cfg, usize::MAX, false, false);
    assert_eq!(got, whole, "messages depend on read chunking");
    assert_eq!(format!("{end:?}"), format!("{whole_end:?}"));

    // 2. They match the independent model of RFC 6455.
    let (want, want_end) = model(stream, role, &cfg);
    assert_eq!(got, want, "messages differ from the RFC 6455 model");
    assert_eq!(
        format!("{end:?}"),
        format!("{want_end:?}"),
        "final error differs from the RFC 6455 model"
    );

    // 3. Sizes respect the limits.
    check_sizes(&got, &cfg);

    // 4. What went out on the wire: a pong per ping, the close echo, and a
    //    Close frame with the error's close code when the connection failed.
    check_output(&written, role, &got, &end);
}

/// Messages respect the limits; text is a String, so valid UTF-8 by type,
/// but the bytes are re-checked anyway.
pub fn check_sizes(got: &[Message], cfg: &Config) {
    for m in got {
        match m {
            Message::Text(t) => {
                assert!(t.len() <= cfg.max_message_size);
                assert!(std::str::from_utf8(t.as_bytes()).is_ok());
            }
            Message::Binary(b) => assert!(b.len() <= cfg.max_message_size),
            Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
            Message::Close(Some(f)) => {
                assert!(f.code.is_sendable());
                assert!(f.reason.len() <= 123);
            }
            Message::Close(None) => {}
        }
    }
}

/// Run `WebSocket::read` until it fails. Returns the messages, the final
/// error and the bytes written.
fn run_reader(
    stream: &[u8],
    leftover: usize,
    role: Role,
    cfg: &Config,
    chunk: usize,
    would_block: bool,
    interrupt: bool,
) -> (Vec<Message>, Error, Vec<u8>) {
    let (pre, rest) = stream.split_at(leftover);
    let s = FuzzStream::with_faults(rest, chunk, would_block, interrupt);
    let mut ws = WebSocket::from_partially_read(s, role, cfg, pre.to_vec());
    let (got, end) = read_loop(&mut ws, stream.len());
    let written = std::mem::take(&mut ws.get_mut().written);
    (got, end, written)
}

/// Call `ws.read()` until it fails, retrying injected `WouldBlock`s.
/// Returns the messages and the final error; checks that the connection
/// then stays ended.
pub fn read_loop(ws: &mut WebSocket<FuzzStream<'_>>, input_len: usize) -> (Vec<Message>, Error) {
    let mut got = Vec::new();
    // Every message needs at least two input bytes and every WouldBlock is
    // followed by a real read, so this bounds a correct reader.
    let budget = 2 * input_len + 8;
    let mut calls = 0;
    let end = loop {
        calls += 1;
        assert!(calls <= budget, "read loop does not terminate");
        match ws.read() {
            Ok(m) => got.push(m),
            Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => break e,
        }
    };
    // After the end, the connection stays ended.
    match ws.read() {
        Err(Error::ConnectionClosed) => {}
        other => panic!("read after {end:?} gave {other:?}, want ConnectionClosed"),
    }
    (got, end)
}

/// Check the frames `WebSocket` wrote in answer to what it read.
pub fn check_output(written: &[u8], role: Role, got: &[Message], end: &Error) {
    let mut expected: Vec<(OpCode, Vec<u8>)> = Vec::new();
    for m in got {
        match m {
            Message::Ping(p) => expected.push((OpCode::Pong, p.clone())),
            Message::Close(None) => expected.push((OpCode::Close, Vec::new())),
            Message::Close(Some(f)) => {
                expected.push((OpCode::Close, u16::from(f.code).to_be_bytes().to_vec()))
            }
            _ => {}
        }
    }
    let mut r = written;
    let mut frames = Vec::new();
    while !r.is_empty() {
        let mut f = wsproto::read_frame(&mut r, 125).expect("own output is valid frames");
        assert_eq!(
            f.header.mask.is_some(),
            role == Role::Client,
            "masking direction of own frames (RFC 6455 §5.1)"
        );
        assert!(f.header.fin && f.header.rsv_bits() == 0);
        f.unmask();
        frames.push(f);
    }
    let fail_code = end.close_code();
    let n = expected.len();
    assert_eq!(
        frames.len(),
        n + usize::from(fail_code.is_some()),
        "unexpected frames written: {frames:?} for {got:?} / {end:?}"
    );
    for (f, (op, payload)) in frames.iter().zip(&expected) {
        assert_eq!((f.header.opcode, &f.payload), (*op, payload));
    }
    if let Some(code) = fail_code {
        let last = frames.last().expect("close frame");
        assert_eq!(last.header.opcode, OpCode::Close, "after {end:?}");
        let body = CloseFrame::parse(&last.payload)
            .expect("own close frame parses")
            .expect("own close frame has a code");
        assert_eq!(body.code, code, "close code sent after {end:?}");
    }
}

/// What RFC 6455 says the receiving end makes of `input`: the messages
/// delivered and the error that ends the read loop. Written from the RFC
/// (§5.2 framing, §5.1 masking, §5.4 fragmentation, §5.5 control frames,
/// §5.5.1/§7.4 close codes, §8.1 UTF-8) plus wsproto's documented choices:
/// non-minimal lengths are refused, limits are checked from the header,
/// and invalid UTF-8 fails as soon as it is seen.
pub fn model(input: &[u8], role: Role, cfg: &Config) -> (Vec<Message>, Error) {
    let mut out = Vec::new();
    // (is_text, bytes so far) of the fragmented message being assembled.
    let mut open: Option<(bool, Vec<u8>)> = None;
    let mut pos = 0;
    loop {
        let rest = &input[pos..];
        let [b0, b1, ..] = *rest else {
            return (out, Error::UnexpectedEof);
        };
        let masked = b1 & 0x80 != 0;
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let head_len = 2 + ext + if masked { 4 } else { 0 };
        if rest.len() < head_len {
            return (out, Error::UnexpectedEof);
        }
        let len: u64 = match ext {
            0 => u64::from(b1 & 0x7f),
            2 => {
                let n = rest[2..4]
                    .iter()
                    .fold(0u64, |a, &b| (a << 8) | u64::from(b));
                if n < 126 {
                    return (out, Error::NonMinimalLength(n));
                }
                n
            }
            _ => {
                let n = rest[2..10]
                    .iter()
                    .fold(0u64, |a, &b| (a << 8) | u64::from(b));
                if n >= 1 << 63 {
                    return (out, Error::LengthOverflow);
                }
                if n < 65536 {
                    return (out, Error::NonMinimalLength(n));
                }
                n
            }
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 7;
        let op = b0 & 0x0f;
        if rsv != 0 {
            return (out, Error::ReservedBits { bits: rsv });
        }
        if matches!(op, 3..=7 | 11..=15) {
            return (out, Error::ReservedOpcode(op));
        }
        match (role, masked) {
            (Role::Server, false) => return (out, Error::UnmaskedClientFrame),
            (Role::Client, true) => return (out, Error::MaskedServerFrame),
            _ => {}
        }
        let control = op >= 8;
        if control {
            if !fin {
                return (out, Error::FragmentedControlFrame);
            }
            if len > 125 {
                return (out, Error::ControlFrameTooLong(len));
            }
        } else {
            match (op, &open) {
                (0, None) => return (out, Error::UnexpectedContinuation),
                (1 | 2, Some(_)) => return (out, Error::ExpectedContinuation),
                _ => {}
            }
            if len > cfg.max_frame_size as u64 {
                return (
                    out,
                    Error::FrameTooBig {
                        size: len,
                        limit: cfg.max_frame_size,
                    },
                );
            }
            let so_far = open.as_ref().map_or(0, |(_, b)| b.len() as u64);
            if so_far + len > cfg.max_message_size as u64 {
                return (
                    out,
                    Error::MessageTooBig {
                        size: so_far + len,
                        limit: cfg.max_message_size,
                    },
                );
            }
        }
        // The length is bounded by a limit above, so it fits in usize.
        let len = len as usize;
        let body = &rest[head_len..];
        let avail = len.min(body.len());
        let mut payload = body[..avail].to_vec();
        if masked {
            let key = &rest[head_len - 4..head_len];
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        if control {
            if avail < len {
                return (out, Error::UnexpectedEof);
            }
            match op {
                8 => match close_body(&payload) {
                    Ok(f) => {
                        out.push(Message::Close(f));
                        return (out, Error::ConnectionClosed);
                    }
                    Err(e) => return (out, e),
                },
                9 => out.push(Message::Ping(payload)),
                _ => out.push(Message::Pong(payload)),
            }
        } else {
            let (is_text, mut bytes) = open.take().unwrap_or((op == 1, Vec::new()));
            bytes.extend_from_slice(&payload);
            // §8.1 fail fast: bytes that can no longer start valid UTF-8.
            if is_text {
                if let Err(e) = std::str::from_utf8(&bytes) {
                    if e.error_len().is_some() {
                        return (out, Error::InvalidUtf8);
                    }
                }
            }
            if avail < len {
                return (out, Error::UnexpectedEof);
            }
            if fin {
                if is_text {
                    match String::from_utf8(bytes) {
                        Ok(s) => out.push(Message::Text(s)),
                        Err(_) => return (out, Error::InvalidUtf8),
                    }
                } else {
                    out.push(Message::Binary(bytes));
                }
            } else {
                open = Some((is_text, bytes));
            }
        }
        pos += head_len + len;
    }
}

/// A Close frame body (RFC 6455 §5.5.1, §7.4.1, §7.4.2; 1012-1014 are the
/// IANA-registered Service Restart, Try Again Later and Bad Gateway).
fn close_body(payload: &[u8]) -> Result<Option<CloseFrame>, Error> {
    match payload {
        [] => Ok(None),
        [_] => Err(Error::CloseFrameTooShort),
        [hi, lo, reason @ ..] => {
            let raw = u16::from(*hi) << 8 | u16::from(*lo);
            if !matches!(raw, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Err(Error::InvalidCloseCode(raw));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code: CloseCode::from(raw),
                reason: reason.to_owned(),
            }))
        }
    }
}
