//! What UTF-8 validation of text messages (RFC 6455 §8.1) costs in wsproto,
//! against validating the payload alone with `std::str::from_utf8` and with
//! the `simdutf8` crate (wsproto's validator uses std for pieces under
//! 64 bytes and `simdutf8::compat` for longer ones).
//!
//! wsproto's validator is private, so it is measured through the public
//! message API: a client-role `WebSocket` (unmasked frames, so the cipher is
//! not in the figures) reads pre-encoded messages from memory with
//! `read_ref`, once as TEXT and once as the same bytes sent as BINARY. The
//! difference between the two is what validation costs inside wsproto; the
//! baselines validate the payload alone, message by message, with:
//!
//! - `std_from_utf8`: `std::str::from_utf8`;
//! - `simdutf8_basic`: `simdutf8::basic::from_utf8` (fastest, but an error
//!   says nothing about where, so it cannot validate incrementally);
//! - `simdutf8_compat`: `simdutf8::compat::from_utf8`, which reports
//!   `valid_up_to` / `error_len` like std, as wsproto's fail-fast
//!   validator needs.
//!
//! Two texts: ASCII (std's fast path) and mixed (Chinese, emoji, Greek and
//! a little ASCII, mostly multi-byte), at 16 B, 1 KiB, 64 KiB and 1 MiB per
//! message; small messages are read in batches of `BATCH` bytes so that each
//! iteration does the same amount of work. The `64KiB_x16frag` case sends a
//! 64 KiB message as 16 fragments of 4 KiB (cut mid-character in the mixed
//! text): wsproto validates each fragment as it arrives and fails fast on
//! the first impossible byte, and the baselines there do the same
//! incremental validation (resume at `valid_up_to`, accept an incomplete
//! last character while `error_len()` is `None`) at the same boundaries.
//!
//! At 1 MiB, wsproto frees its message buffer after each message (the
//! buffer grows to just over its 1 MiB keep limit, `KEEP_CAPACITY` in
//! reader.rs) and allocates it again for the next, so those rows also time
//! the allocator and its page faults, which vary with the allocator's state
//! from one benchmark to the next: there the text/binary difference is not
//! the validation cost alone.
//!
//! Throughput counts payload bytes. Run with
//! `cargo bench -p benches --bench utf8`, then
//! `python3 benches/summarize.py --only utf8_` for the table.

use benches::MemStream;
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use wsproto::{Config, Header, MessageRef, OpCode, Role, WebSocket, MAX_HEADER_LEN};

/// Payload bytes read per iteration for messages smaller than this: 16 B
/// messages come 16384 at a time, 1 KiB ones 256 at a time.
const BATCH: usize = 256 * 1024;

/// Message sizes, with their labels (as `summarize.py` sorts them).
const SIZES: [(usize, &str); 4] = [
    (16, "16B"),
    (1024, "1KiB"),
    (64 * 1024, "64KiB"),
    (1024 * 1024, "1MiB"),
];

/// The fragmented case: one 64 KiB message in 16 frames.
const FRAG_SIZE: usize = 64 * 1024;
const FRAGMENTS: usize = 16;
const FRAG_LABEL: &str = "64KiB_x16frag";

/// Repeated to make the mixed text: 1-, 2-, 3- and 4-byte characters,
/// mostly multi-byte, as in a CJK chat with emoji.
const MIXED: &str = "你好，世界！😀🚀🌍 WebSocket 消息 κόσμε 🎉👍 中文测试 ÜñïçØdé 🙂";

/// Valid ASCII text of exactly `len` bytes.
fn ascii_text(len: usize) -> Vec<u8> {
    const WORDS: &[u8] = b"The quick brown fox jumps over the lazy dog. 0123456789 ";
    WORDS.iter().copied().cycle().take(len).collect()
}

/// Valid mixed text of exactly `len` bytes: [`MIXED`] repeated, ending with
/// up to 3 spaces where the next character would not fit.
fn mixed_text(len: usize) -> Vec<u8> {
    let mut out = String::with_capacity(len);
    for c in MIXED.chars().cycle() {
        if out.len() + c.len_utf8() > len {
            break;
        }
        out.push(c);
    }
    while out.len() < len {
        out.push(' ');
    }
    out.into_bytes()
}

/// Append `payload` to `wire` as one unmasked message of `opcode` cut into
/// `fragments` frames of equal size (the last takes the remainder).
fn encode_message(wire: &mut Vec<u8>, opcode: OpCode, payload: &[u8], fragments: usize) {
    let step = payload.len().div_ceil(fragments).max(1);
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        payload.chunks(step).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut header = Header::new(
            if i == 0 { opcode } else { OpCode::Continuation },
            chunk.len() as u64,
        );
        header.fin = i == last;
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut out);
        wire.extend_from_slice(&out[..n]);
        wire.extend_from_slice(chunk);
    }
}

/// `count` copies of `payload` as messages of `opcode`, as a server sends them.
fn wire(opcode: OpCode, payload: &[u8], count: usize, fragments: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(count * (payload.len() + 10) + fragments * 10);
    for _ in 0..count {
        encode_message(&mut wire, opcode, payload, fragments);
    }
    wire
}

/// A client-role connection over `wire` (unmasked frames: no cipher).
/// One `WebSocket` serves every iteration (rewound each time), so the
/// figures hold no allocation or page fault of a fresh connection.
fn connection(wire: &[u8]) -> WebSocket<MemStream<'_>> {
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    WebSocket::from_raw_socket(MemStream::new(wire), Role::Client, &config)
}

/// Read the `count` messages of `wire` once; check (outside the timings)
/// that each is `payload` with the expected type.
fn read_all(ws: &mut WebSocket<MemStream<'_>>, count: usize, text: bool, payload: Option<&[u8]>) {
    ws.get_mut().rewind();
    for _ in 0..count {
        match (ws.read_ref(), text) {
            (Ok(MessageRef::Text(s)), true) => {
                if let Some(p) = payload {
                    assert_eq!(s.as_bytes(), p);
                }
                black_box(s);
            }
            (Ok(MessageRef::Binary(b)), false) => {
                if let Some(p) = payload {
                    assert_eq!(b, p);
                }
                black_box(b);
            }
            (other, _) => panic!("{other:?}"),
        }
    }
    assert_eq!(ws.get_ref().remaining(), 0, "all read");
}

/// Validate `$payload` the way wsproto's `Utf8Validator::feed` does when it
/// arrives in `$fragments` pieces, with any validator that has std's error
/// shape: validate what arrived since the last piece, accept an incomplete
/// last character, fail on an impossible byte. Whether it is complete,
/// valid UTF-8.
macro_rules! incremental {
    ($from_utf8:path, $payload:expr, $fragments:expr) => {{
        let payload: &[u8] = $payload;
        let step = payload.len().div_ceil($fragments);
        let mut valid = 0;
        let mut end = 0;
        let mut ok = true;
        while ok && end < payload.len() {
            end = (end + step).min(payload.len());
            ok = match $from_utf8(&payload[valid..end]) {
                Ok(_) => {
                    valid = end;
                    true
                }
                Err(e) if e.error_len().is_none() => {
                    valid += e.valid_up_to();
                    true
                }
                Err(_) => false,
            };
        }
        ok && valid == payload.len()
    }};
}

/// [`incremental!`] with `std::str::from_utf8`.
fn incremental_std(payload: &[u8], fragments: usize) -> bool {
    incremental!(std::str::from_utf8, payload, fragments)
}

/// [`incremental!`] with `simdutf8::compat::from_utf8`.
fn incremental_simd(payload: &[u8], fragments: usize) -> bool {
    incremental!(simdutf8::compat::from_utf8, payload, fragments)
}

/// One row of the table: `count` messages of `payload`, in `fragments` frames.
fn bench_case(
    c: &mut Criterion,
    group: &str,
    label: &str,
    payload: &[u8],
    count: usize,
    fragments: usize,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes((payload.len() * count) as u64));

    for (name, opcode, text) in [
        ("wsproto_text", OpCode::Text, true),
        ("wsproto_binary", OpCode::Binary, false),
    ] {
        let wire = wire(opcode, payload, count, fragments);
        let mut ws = connection(&wire);
        read_all(&mut ws, count, text, Some(payload));
        g.bench_function(BenchmarkId::new(name, label), |b| {
            b.iter(|| read_all(&mut ws, count, text, None));
        });
    }

    if fragments == 1 {
        g.bench_function(BenchmarkId::new("std_from_utf8", label), |b| {
            b.iter(|| {
                for _ in 0..count {
                    black_box(std::str::from_utf8(black_box(payload)).is_ok());
                }
            });
        });
        g.bench_function(BenchmarkId::new("simdutf8_basic", label), |b| {
            b.iter(|| {
                for _ in 0..count {
                    black_box(simdutf8::basic::from_utf8(black_box(payload)).is_ok());
                }
            });
        });
        g.bench_function(BenchmarkId::new("simdutf8_compat", label), |b| {
            b.iter(|| {
                for _ in 0..count {
                    black_box(simdutf8::compat::from_utf8(black_box(payload)).is_ok());
                }
            });
        });
    } else {
        // `basic` cannot resume after a split character, so it has no
        // incremental row.
        assert!(incremental_std(payload, fragments) && incremental_simd(payload, fragments));
        g.bench_function(BenchmarkId::new("std_from_utf8", label), |b| {
            b.iter(|| {
                for _ in 0..count {
                    black_box(incremental_std(black_box(payload), fragments));
                }
            });
        });
        g.bench_function(BenchmarkId::new("simdutf8_compat", label), |b| {
            b.iter(|| {
                for _ in 0..count {
                    black_box(incremental_simd(black_box(payload), fragments));
                }
            });
        });
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    for (group, make) in [
        ("utf8_ascii", ascii_text as fn(usize) -> Vec<u8>),
        ("utf8_mixed", mixed_text),
    ] {
        for (size, label) in SIZES {
            let payload = make(size);
            assert!(std::str::from_utf8(&payload).is_ok() && payload.len() == size);
            bench_case(c, group, label, &payload, (BATCH / size).max(1), 1);
        }
        let payload = make(FRAG_SIZE);
        bench_case(c, group, FRAG_LABEL, &payload, 1, FRAGMENTS);
    }
}

benches::bench_main!(utf8);
