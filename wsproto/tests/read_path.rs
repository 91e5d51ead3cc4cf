//! How the reader asks the stream for bytes: the read buffer starts small
//! and grows only while reads fill it, up to `Config::read_buffer_size`;
//! payloads that do not fit are read straight into the message, together
//! with what follows them, in one vectored read.
//!
//! The test stream (`common::MemStream`, everything already received, like
//! a socket with a full receive queue) logs the size of every read
//! request, so these tests see the buffer sizes without looking inside the
//! crate.

mod common;

use std::io::Cursor;

use common::{client_frame, parse_frames, MemStream};
use wsproto::{Config, Message, OpCode, Role, WebSocket};

fn config(cap: usize) -> Config {
    Config {
        read_buffer_size: cap,
        #[cfg(feature = "deflate")]
        deflate: None,
        ..Config::default()
    }
}

/// Read `count` data messages and return them.
fn read_messages(ws: &mut WebSocket<MemStream>, count: usize) -> Vec<Message> {
    (0..count)
        .map(|_| ws.read().expect("valid frames"))
        .collect()
}

#[test]
fn buffer_starts_at_2_kib_and_doubles_while_reads_fill_it() {
    // 2000 frames of 100 bytes: 210 KB, all available at once.
    let payload = [b'x'; 100];
    let input: Vec<u8> = (0..2000)
        .flat_map(|_| client_frame(true, 0x2, &payload))
        .collect();
    let mut ws = WebSocket::from_raw_socket(MemStream::new(input), Role::Server, &config(64 << 10));
    let got = read_messages(&mut ws, 2000);
    assert!(got.iter().all(|m| *m == Message::Binary(payload.to_vec())));
    let asked: Vec<usize> = ws.get_ref().requests.iter().map(|r| r.0).collect();
    // Each request is the free room of the buffer (a partial frame may be
    // kept at the front), so compare the growth of the first requests.
    assert!(asked[0] == 2048, "first read asks for 2 KiB: {asked:?}");
    assert!(
        (3000..=4096).contains(&asked[1]),
        "then about 4 KiB: {asked:?}"
    );
    assert!(
        (7000..=8192).contains(&asked[2]),
        "then about 8 KiB: {asked:?}"
    );
    assert!(
        asked.iter().all(|&a| a <= 64 << 10),
        "never over the cap: {asked:?}"
    );
    assert!(
        asked.iter().filter(|&&a| a > 60 << 10).count() >= 2,
        "reaches the cap under load: {asked:?}"
    );
    // 210 KB in 2 KiB + 4 + 8 + 16 + 32 + 64 + 64 ... : a handful of reads.
    assert!(asked.len() <= 10, "{} reads for 210 KB", asked.len());
}

#[test]
fn a_quiet_connection_keeps_the_small_buffer() {
    let input: Vec<u8> = (0..5)
        .flat_map(|_| client_frame(true, 0x1, b"hi"))
        .collect();
    // Five tiny frames arriving one per read, as on a chat connection.
    let mut ws =
        WebSocket::from_raw_socket(MemStream::new(Vec::new()), Role::Server, &config(64 << 10));
    for frame in input.chunks(client_frame(true, 0x1, b"hi").len()) {
        ws.get_mut().input = Cursor::new(frame.to_vec());
        assert_eq!(ws.read().expect("frame"), Message::text("hi"));
    }
    let asked: Vec<usize> = ws.get_ref().requests.iter().map(|r| r.0).collect();
    assert_eq!(asked, vec![2048; 5]);
}

#[test]
fn a_small_cap_is_respected_from_the_start() {
    let input: Vec<u8> = (0..100)
        .flat_map(|_| client_frame(true, 0x2, &[7; 50]))
        .collect();
    let mut ws = WebSocket::from_raw_socket(MemStream::new(input), Role::Server, &config(1000));
    read_messages(&mut ws, 100);
    let requests = &ws.get_ref().requests;
    assert!(requests.iter().all(|r| r.0 <= 1000), "{requests:?}");
    assert!(requests.iter().any(|r| r.0 > 900), "{requests:?}");
}

#[test]
fn large_payloads_go_straight_to_the_message_with_the_next_header() {
    // Small messages first (the buffer grows to its 64 KiB cap), then
    // three 1 MiB messages, then small ones again, all available at once.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut input = Vec::new();
    for _ in 0..1000 {
        input.extend(client_frame(true, 0x1, &[b'a'; 120]));
    }
    let warm_up = input.len();
    for _ in 0..3 {
        input.extend(client_frame(true, 0x2, &big));
    }
    for _ in 0..3 {
        input.extend(client_frame(true, 0x1, b"small"));
    }
    let total = input.len();
    let mut ws = WebSocket::from_raw_socket(MemStream::new(input), Role::Server, &config(64 << 10));
    read_messages(&mut ws, 1000);
    let got = read_messages(&mut ws, 6);
    for m in &got[..3] {
        assert!(*m == Message::Binary(big.clone()), "large message intact");
    }
    assert!(got[3..].iter().all(|m| *m == Message::text("small")));
    let requests = &ws.get_ref().requests;
    assert_eq!(
        requests.iter().map(|r| r.1).sum::<usize>(),
        total,
        "every byte read once"
    );
    // The reads after the warm-up: once a payload is too large for the
    // buffer, a plain read into the buffer asks for at most 4 KiB (the
    // next header and a little), and a vectored read fills the payload
    // first and at most 4 KiB of buffer after it.
    let mut seen = 0;
    let later: Vec<&(usize, usize, Vec<usize>)> = requests
        .iter()
        .filter(|r| {
            seen += r.1;
            seen > warm_up + 64 * 1024
        })
        .collect();
    let vectored: Vec<_> = later.iter().filter(|r| r.2.len() == 2).collect();
    assert!(
        vectored.iter().all(|r| r.2[1] <= 4096),
        "buffer part of vectored reads: {later:?}"
    );
    let plain: Vec<_> = later.iter().filter(|r| r.2.len() == 1).collect();
    assert!(plain.iter().all(|r| r.0 <= 4096), "plain reads: {later:?}");
    // 3 MiB in direct chunks growing to 256 KiB: a dozen or two vectored
    // reads, and the next header arrives with the previous payload.
    assert!((12..=24).contains(&vectored.len()), "{later:?}");
    assert!(plain.len() <= 3, "{later:?}");
}

#[test]
fn masked_large_payload_split_anywhere_is_unmasked_correctly() {
    // The direct path unmasks at the right key offset whatever the split.
    let big: Vec<u8> = (0..200_000).map(|i| (i % 253) as u8).collect();
    let frame = client_frame(true, 0x2, &big);
    for max_read in [1usize, 3, 4093, 65_537] {
        let mut stream = MemStream::new(frame.clone());
        stream.max_read = if max_read == 1 { 997 } else { max_read };
        let mut ws = WebSocket::from_raw_socket(stream, Role::Server, &config(8 << 10));
        assert!(
            ws.read().expect("frame") == Message::Binary(big.clone()),
            "max_read {max_read}"
        );
    }
}

#[test]
fn recycled_buffer_is_used_for_the_next_message() {
    let input: Vec<u8> = [&b"first message"[..], b"second"]
        .iter()
        .flat_map(|p| client_frame(true, 0x2, p))
        .collect();
    let mut ws = WebSocket::from_raw_socket(MemStream::new(input), Role::Server, &config(64 << 10));
    let Message::Binary(first) = ws.read().expect("first") else {
        panic!("binary expected")
    };
    assert_eq!(first, b"first message");
    let mut spare = first;
    spare.reserve(4096);
    let (ptr, capacity) = (spare.as_ptr(), spare.capacity());
    ws.recycle(spare);
    let Message::Binary(second) = ws.read().expect("second") else {
        panic!("binary expected")
    };
    assert_eq!(second, b"second", "old contents gone");
    assert_eq!(
        (second.as_ptr(), second.capacity()),
        (ptr, capacity),
        "same allocation"
    );
    // Nothing was echoed by reading data messages.
    assert!(parse_frames(&ws.get_ref().output)
        .iter()
        .all(|f| f.opcode != OpCode::Pong));
}

#[test]
fn has_buffered_input_counts_whole_frames_only() {
    let a = client_frame(true, 0x1, b"first");
    let b = client_frame(true, 0x2, &[9; 300]);
    let after_a = |rest: &[u8]| {
        let mut input = a.clone();
        input.extend_from_slice(rest);
        let mut ws =
            WebSocket::from_raw_socket(MemStream::new(input), Role::Server, &config(64 << 10));
        assert_eq!(ws.read().expect("first"), Message::text("first"));
        ws.has_buffered_input()
    };
    assert!(after_a(&b), "a whole second frame is buffered");
    assert!(!after_a(&[]), "nothing buffered");
    assert!(!after_a(&b[..1]), "one byte of a header");
    assert!(
        !after_a(&b[..b.len() - 1]),
        "all but the last byte of the second frame"
    );
    // A whole frame the next read rejects (reserved opcode): it does not
    // wait either.
    assert!(after_a(&[0x83, 0x80, 0, 0, 0, 0]), "reserved opcode");
    // A header whose 64-bit length has the top bit set (RFC 6455 §5.2):
    // the next read fails at once.
    let overflow = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(after_a(&overflow), "length over 2^63");
}

#[test]
fn has_buffered_input_follows_a_frame_read_in_pieces() {
    // A large frame whose rest is buffered after the first read: true; a
    // frame of which only a part is buffered: false.
    let big = client_frame(true, 0x2, &[1; 10_000]);
    let mut stream = MemStream::new(big.clone());
    stream.max_read = 6_000;
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, &config(64 << 10));
    assert!(!ws.has_buffered_input());
    assert_eq!(ws.read().expect("frame"), Message::Binary(vec![1; 10_000]));
    assert!(!ws.has_buffered_input());
    let mut two = big.clone();
    two.extend_from_slice(&big);
    let mut ws = WebSocket::from_raw_socket(MemStream::new(two), Role::Server, &config(64 << 10));
    assert_eq!(ws.read().expect("frame"), Message::Binary(vec![1; 10_000]));
    // The vectored read took the second frame's first 4 KiB: partial.
    assert!(!ws.has_buffered_input());
    assert_eq!(ws.read().expect("frame"), Message::Binary(vec![1; 10_000]));
}
