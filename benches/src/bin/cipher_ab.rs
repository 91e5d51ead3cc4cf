//! Interleaved A/B timing of the cipher, for machines shared with other
//! work, where criterion's one-benchmark-after-another medians swing with
//! the neighbours' load.
//!
//! For each case and size, every round times a short batch of each
//! implementation back to back, so all of them see the same machine state;
//! the fastest batch of each over many rounds approximates its speed on an
//! idle core. Prints a Markdown table. Not a replacement for
//! `cargo bench -p benches --bench cipher`, a cross-check of it.
//!
//! `cargo run --release -p benches --bin cipher_ab [-- ROUNDS]`

use std::hint::black_box;
use std::time::Instant;

use benches::{naive, tungstenite, xor_const, AlignedBuf, Cipher, MASK};

const SIZES: [(usize, &str); 6] = [
    (16, "16B"),
    (125, "125B"),
    (1024, "1KiB"),
    (16 * 1024, "16KiB"),
    (64 * 1024, "64KiB"),
    (1024 * 1024, "1MiB"),
];

/// Same cases as the criterion bench: (name, start past a 64-byte boundary, offset).
const CASES: [(&str, usize, usize); 3] =
    [("aligned", 0, 0), ("offset3", 0, 3), ("unaligned", 1, 0)];

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let impls: [(&str, Cipher); 4] = [
        ("wsproto", wsproto::apply_mask),
        ("tungstenite", tungstenite),
        ("naive", naive),
        ("xor_const", |buf, mask, _| xor_const(buf, mask[0])),
    ];
    println!("Fastest of {rounds} interleaved batches per implementation (ns per call).\n");
    println!("| case | size | wsproto | tungstenite | naive | xor const | × tungstenite | × naive | of xor-const speed |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (case, misalign, offset) in CASES {
        for (len, label) in SIZES {
            let mut buf = AlignedBuf::new(len);
            let data = buf.slice_mut(misalign);
            // About 2 µs of the fastest implementation per batch.
            let iters = (2048 / (len / 32 + 1)).max(1);
            let mut best = [f64::MAX; 4];
            for round in 0..rounds {
                for (k, (name, f)) in impls.iter().enumerate() {
                    // The naive loop is 30-60x slower: fewer rounds of it.
                    if *name == "naive" && round % 8 != 0 {
                        continue;
                    }
                    let start = Instant::now();
                    for _ in 0..iters {
                        f(black_box(&mut *data), black_box(MASK), black_box(offset));
                    }
                    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
                    best[k] = best[k].min(ns);
                }
            }
            let [ws, tung, slow, limit] = best;
            println!(
                "| {case} | {label} | {ws:.1} | {tung:.1} | {slow:.1} | {limit:.1} | {:.2}× | {:.1}× | {:.0} % |",
                tung / ws,
                slow / ws,
                limit / ws * 100.0
            );
        }
    }
}
