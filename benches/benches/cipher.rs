//! The masking cipher (RFC 6455 §5.3) against three baselines: the
//! byte-by-byte loop, tungstenite's word-at-a-time loop, and a constant-byte
//! XOR (the cost of touching the memory once). See `benches/src/lib.rs` for
//! the baselines.
//!
//! Three cases per size: start on a 64-byte boundary at offset 0, the same
//! at offset 3 (a payload unmasked in pieces), and a start one byte past the
//! boundary (a payload that follows a header in a read buffer).

use std::hint::black_box;

use benches::{naive, tungstenite, xor_const, AlignedBuf, Cipher, MASK};
use criterion::{BenchmarkId, Criterion, Throughput};

const SIZES: [(usize, &str); 6] = [
    (16, "16B"),
    (125, "125B"),
    (1024, "1KiB"),
    (16 * 1024, "16KiB"),
    (64 * 1024, "64KiB"),
    (1024 * 1024, "1MiB"),
];

/// (group name, start past a 64-byte boundary, mask offset)
const CASES: [(&str, usize, usize); 3] = [
    ("cipher_aligned", 0, 0),
    ("cipher_offset3", 0, 3),
    ("cipher_unaligned", 1, 0),
];

fn cipher(c: &mut Criterion) {
    let impls: [(&str, Cipher); 4] = [
        ("wsproto", wsproto::apply_mask),
        ("naive", naive),
        ("tungstenite", tungstenite),
        ("xor_const", |buf, mask, _| xor_const(buf, mask[0])),
    ];
    for (group_name, misalign, offset) in CASES {
        let mut group = c.benchmark_group(group_name);
        for (len, label) in SIZES {
            let mut buf = AlignedBuf::new(len);
            group.throughput(Throughput::Bytes(len as u64));
            for (name, f) in impls {
                group.bench_function(BenchmarkId::new(name, label), |b| {
                    let data = buf.slice_mut(misalign);
                    // Masking in place again and again just toggles the
                    // data; the memory stays hot as in a real read loop.
                    b.iter(|| f(black_box(&mut *data), black_box(MASK), black_box(offset)));
                });
            }
        }
        group.finish();
    }
}

benches::bench_main!(cipher);
