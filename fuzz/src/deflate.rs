//! The message-level read loop with permessage-deflate (RFC 7692)
//! negotiated through the public handshake: a client request offering the
//! extension, then arbitrary frames. wsproto's inflater must keep memory
//! within `max_message_size` whatever the compressed data says (a
//! decompression bomb is just a small frame), and fail with a typed error.
//!
//! Input layout: `[offer, faults, config, frames...]`; `offer` picks the
//! extension parameters (see [`offer`]); `faults` and `config` are as in
//! [`crate::messages`].

use wsproto::{accept_with, Accept, Config, Error, Message, Role};

use crate::http::head_end;
use crate::messages::{check_output, check_sizes, decode_controls, read_loop};
use crate::FuzzStream;

/// The `Sec-WebSocket-Extensions` offer for bits of `b`: bit 0
/// `client_max_window_bits`, bit 1 `server_no_context_takeover`, bit 2
/// `client_no_context_takeover`, bits 3–5 `server_max_window_bits=8..14`
/// (0: absent), bit 6 a second, plain offer as fallback, bit 7
/// `client_max_window_bits=9` instead of the bare form.
pub fn offer(b: u8) -> String {
    let mut ext = String::from("permessage-deflate");
    if b & 0x80 != 0 {
        ext.push_str("; client_max_window_bits=9");
    } else if b & 1 != 0 {
        ext.push_str("; client_max_window_bits");
    }
    if b & 2 != 0 {
        ext.push_str("; server_no_context_takeover");
    }
    if b & 4 != 0 {
        ext.push_str("; client_no_context_takeover");
    }
    match (b >> 3) & 7 {
        0 => {}
        n => ext.push_str(&format!("; server_max_window_bits={}", 7 + n)),
    }
    if b & 0x40 != 0 {
        ext.push_str(", permessage-deflate");
    }
    ext
}

fn request(b: u8) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {}\r\n\r\n",
        offer(b)
    )
    .into_bytes()
}

/// What one run produced: messages, final error, frames written after the
/// handshake answer, and whether the extension was agreed.
type Run = (Vec<Message>, Error, Vec<u8>, bool);

/// Handshake (whole reads, no faults), then read frames with the given
/// chunking and faults. `None` if the handshake itself was refused.
fn run(
    input: &[u8],
    cfg: &Config,
    chunk: usize,
    would_block: bool,
    interrupt: bool,
) -> Option<Run> {
    let stream = FuzzStream::new(input);
    let mut ws = match accept_with(stream, cfg, |_| Ok(Accept::default())) {
        Ok(ws) => ws,
        Err(e) => {
            assert!(e.http_status().is_some(), "refused without a status: {e:?}");
            return None;
        }
    };
    ws.get_mut().set_faults(chunk, would_block, interrupt);
    let answer = std::mem::take(&mut ws.get_mut().written);
    let end = head_end(&answer).expect("a complete 101 head");
    assert_eq!(end, answer.len(), "nothing after the 101 head");
    assert!(answer.starts_with(b"HTTP/1.1 101 "));
    let agreed = answer
        .windows(25)
        .any(|w| w.eq_ignore_ascii_case(b"Sec-WebSocket-Extensions:"));
    let (got, err) = read_loop(&mut ws, input.len());
    let written = std::mem::take(&mut ws.get_mut().written);
    Some((got, err, written, agreed))
}

/// The fuzz target body of `read_frames_deflate`.
pub fn fuzz_read_deflate(data: &[u8]) {
    let [offer_bits, faults, config, frames @ ..] = data else {
        return;
    };
    let (cfg, chunk, would_block, interrupt, _) = decode_controls(*faults, *config);
    let input = [request(*offer_bits), frames.to_vec()].concat();
    let Some((got, end, written, agreed)) = run(&input, &cfg, chunk, would_block, interrupt) else {
        return;
    };
    // The same bytes read whole give the same result.
    let (whole, whole_end, _, whole_agreed) =
        run(&input, &cfg, usize::MAX, false, false).expect("same handshake");
    assert_eq!(agreed, whole_agreed);
    assert_eq!(got, whole, "messages depend on read chunking");
    assert_eq!(format!("{end:?}"), format!("{whole_end:?}"));
    // Without the extension, a set RSV1 bit is a protocol error.
    if !agreed {
        assert!(!matches!(end, Error::InvalidCompressedData), "{end:?}");
    }
    check_sizes(&got, &cfg);
    check_output(&written, Role::Server, &got, &end);
}
