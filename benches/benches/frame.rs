//! Frame headers (RFC 6455 §5.2) in each length form, and reading buffers
//! of many frames through the frame API (`read_frame` + unmask) and the
//! message API (`WebSocket::read`, and `read_ref`, which borrows the
//! connection's buffers instead of allocating each message), masked (a
//! server reading a client) and unmasked (a client reading a server).
//!
//! Read throughput counts payload bytes, so the two APIs and both sides
//! compare directly.

use std::hint::black_box;

use benches::{wire_frames, MemStream, MASK};
use criterion::{BenchmarkId, Criterion, Throughput};
use wsproto::{
    read_frame, Config, Header, Message, MessageRef, OpCode, Parsed, Role, WebSocket,
    MAX_HEADER_LEN,
};

/// One payload length for each encoding: 7-bit, 16-bit and 64-bit.
const LENGTHS: [(u64, &str); 3] = [(100, "7bit"), (1000, "16bit"), (100_000, "64bit")];

fn header_of(len: u64, masked: bool) -> Header {
    let mut header = Header::new(OpCode::Binary, len);
    header.mask = masked.then_some(MASK);
    header
}

fn label(form: &str, masked: bool) -> String {
    format!("{form}_{}", if masked { "masked" } else { "unmasked" })
}

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_parse");
    for (len, form) in LENGTHS {
        for masked in [false, true] {
            let bytes = header_of(len, masked).to_bytes();
            group.bench_function(BenchmarkId::new("parse", label(form, masked)), |b| {
                b.iter(|| match Header::parse(black_box(&bytes)) {
                    Ok(Parsed::Complete(h, used)) => (h, used),
                    other => panic!("{other:?}"),
                });
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("header_write");
    for (len, form) in LENGTHS {
        for masked in [false, true] {
            let header = header_of(len, masked);
            let mut out = [0u8; MAX_HEADER_LEN];
            group.bench_function(BenchmarkId::new("encode", label(form, masked)), |b| {
                b.iter(|| black_box(&header).encode(black_box(&mut out)));
            });
        }
    }
    group.finish();
}

/// Read `count` frames of `size` bytes, both APIs, both sides.
fn read_many(c: &mut Criterion, group_name: &str, count: usize, size: usize) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes((count * size) as u64));
    let config = Config::default();
    for masked in [true, false] {
        let side = if masked {
            "server_masked"
        } else {
            "client_unmasked"
        };
        let wire = wire_frames(count, size, masked);
        group.bench_function(BenchmarkId::new("frame_api", side), |b| {
            b.iter(|| {
                let mut r: &[u8] = black_box(&wire);
                for _ in 0..count {
                    let mut frame = read_frame(&mut r, config.max_frame_size).expect("frame");
                    frame.unmask();
                    black_box(&frame.payload);
                }
            });
        });
        let role = if masked { Role::Server } else { Role::Client };
        group.bench_function(BenchmarkId::new("message_api", side), |b| {
            b.iter(|| {
                let stream = MemStream::new(black_box(&wire));
                let mut ws = WebSocket::from_raw_socket(stream, role, &config);
                for _ in 0..count {
                    match ws.read() {
                        Ok(Message::Binary(data)) => black_box(data),
                        other => panic!("{other:?}"),
                    };
                }
            });
        });
        group.bench_function(BenchmarkId::new("message_api_ref", side), |b| {
            b.iter(|| {
                let stream = MemStream::new(black_box(&wire));
                let mut ws = WebSocket::from_raw_socket(stream, role, &config);
                for _ in 0..count {
                    match ws.read_ref() {
                        Ok(MessageRef::Binary(data)) => {
                            black_box(data);
                        }
                        other => panic!("{other:?}"),
                    };
                }
            });
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    read_many(c, "read_16B_x1000", 1000, 16);
    read_many(c, "read_64KiB_x16", 16, 64 * 1024);
}

benches::bench_main!(headers, reads);
