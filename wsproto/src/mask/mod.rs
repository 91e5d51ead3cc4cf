//! The masking cipher (RFC 6455 §5.3): what gobwas/ws calls `Cipher`.
//!
//! Every byte `i` of a client-to-server payload is XORed with `mask[i % 4]`.
//! Masking and unmasking are the same operation, so applying a mask twice
//! gives back the original bytes.
//!
//! Every payload byte a server receives goes through this XOR, so it is the
//! one place where this crate uses explicit SIMD: AVX2 or SSE2 on x86-64
//! (chosen at run time, once), NEON on aarch64, and a portable
//! word-at-a-time loop everywhere else. The `unsafe` code is confined to the
//! per-architecture modules; all of them sit behind the safe [`apply_mask`].

use std::sync::OnceLock;

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon;
mod portable;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

/// One implementation of the cipher. `xor` takes a mask already rotated to
/// the phase of `buf[0]`: it XORs `buf[i]` with `mask[i % 4]`.
///
/// A `Kernel` that uses CPU features is only ever built by a function that
/// has checked those features first, so calling `xor` is always safe.
#[derive(Clone, Copy)]
struct Kernel {
    /// For tests and debugging: which implementation this is.
    #[cfg_attr(not(test), allow(dead_code))]
    name: &'static str,
    xor: fn(&mut [u8], [u8; 4]),
}

/// Buffers shorter than this skip the dispatch and use the portable words,
/// inlined: for a handful of words a vector set-up and an indirect call cost
/// more than they save.
const SHORT: usize = 32;

/// The best kernel for this CPU, chosen on first use.
#[inline(always)]
fn kernel() -> &'static Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    KERNEL.get_or_init(|| available().into_iter().last().unwrap_or(portable::KERNEL))
}

/// Every kernel this CPU can run, slowest first; the portable one is always
/// there.
fn available() -> Vec<Kernel> {
    #[allow(unused_mut)]
    let mut kernels = vec![portable::KERNEL];
    #[cfg(target_arch = "x86_64")]
    kernels.extend(x86::sse2());
    #[cfg(target_arch = "x86_64")]
    kernels.extend(x86::avx2());
    #[cfg(target_arch = "aarch64")]
    kernels.extend(neon::neon());
    kernels
}

/// XOR `buf` with `mask`, as if `buf` started `offset` bytes into the payload.
///
/// The offset lets a payload be unmasked in pieces as it streams in: calling
/// this on `payload[..k]` with offset 0 and on `payload[k..]` with offset `k`
/// gives the same bytes as one call on the whole payload (RFC 6455 §5.3,
/// `j = i MOD 4`).
///
/// Uses AVX2 or SSE2 (x86-64, detected at run time) or NEON (aarch64) when
/// the CPU has them; any start address and length are fine.
///
/// ```
/// let mut data = *b"Hello";
/// let mask = [0x37, 0xfa, 0x21, 0x3d];
/// wsproto::apply_mask(&mut data, mask, 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // RFC 6455 §5.7
/// wsproto::apply_mask(&mut data[..2], mask, 0);
/// wsproto::apply_mask(&mut data[2..], mask, 2);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask = rotate(mask, offset);
    if buf.len() < SHORT {
        portable::xor_tail(buf, mask);
    } else {
        (kernel().xor)(buf, mask);
    }
}

/// The mask as seen from `offset` bytes further into the payload:
/// `rotate(m, k)[i] == m[(i + k) % 4]`.
///
/// A rotation of the 32-bit word rather than `<[u8]>::rotate_left`, which
/// does not inline and costs more than masking a short buffer.
#[inline(always)]
fn rotate(mask: [u8; 4], offset: usize) -> [u8; 4] {
    // Little-endian: byte `k` of the word moves to byte 0 when the word is
    // shifted right by `8 * k` bits.
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(mask).rotate_right(shift).to_le_bytes()
}

/// The byte-by-byte reference cipher, straight from RFC 6455 §5.3.
///
/// Slow; the oracle for differential tests of [`apply_mask`].
// Hidden, not private: code outside this crate checks `apply_mask` against
// it: the `cipher_differential` fuzz target (fuzz/fuzz_targets/), the
// cipher bench's self-check (benches/src/lib.rs) and
// wsproto/tests/fuzz_regressions.rs. Not part of the supported API.
#[doc(hidden)]
pub fn apply_mask_naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // `(offset + i) % 4`, computed modulo 4 first so that no offset, however
    // large, can overflow (2^64 is a multiple of 4).
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= mask[(offset % 4 + i % 4) % 4];
    }
}

/// A fresh random masking key for one frame (RFC 6455 §5.3: "derived from a
/// strong source of entropy", new for every frame).
pub fn random_mask() -> [u8; 4] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Run `kernel` as `apply_mask` would, with the mask rotated to `offset`.
    fn run(kernel: &Kernel, buf: &mut [u8], mask: [u8; 4], offset: usize) {
        (kernel.xor)(buf, rotate(mask, offset));
    }

    #[test]
    fn rotate_moves_byte_k_to_the_front() {
        let mask = [1, 2, 3, 4];
        assert_eq!(rotate(mask, 0), [1, 2, 3, 4]);
        assert_eq!(rotate(mask, 1), [2, 3, 4, 1]);
        assert_eq!(rotate(mask, 2), [3, 4, 1, 2]);
        assert_eq!(rotate(mask, 3), [4, 1, 2, 3]);
        assert_eq!(rotate(mask, 7), [4, 1, 2, 3]);
    }

    /// Each kernel the CPU supports, called directly, against the naive loop
    /// for every length 0..=640, offset 0..=3 and start address 0..=31 bytes
    /// past a 32-byte boundary, with guard bytes on both sides that must
    /// stay untouched. Lengths past 512 take the x86 kernels' aligned-head
    /// path (`ALIGN_FROM`) with every remainder of the 128-byte loop.
    #[test]
    fn every_kernel_matches_naive_for_all_lengths_offsets_and_alignments() {
        const MAX_LEN: usize = 640;
        const GUARD: usize = 64;
        let kernels = available();
        let names: Vec<&str> = kernels.iter().map(|k| k.name).collect();
        assert!(names.contains(&"portable"), "{names:?}");
        let data: Vec<u8> = (0..MAX_LEN as u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut storage = vec![0u8; 32 + GUARD + 32 + MAX_LEN + GUARD];
        let guard = vec![0xeeu8; storage.len()];
        // Index in `storage` of a 32-byte aligned address past the front guard.
        let base = GUARD + (32 - (storage.as_ptr() as usize + GUARD) % 32) % 32;
        for mask in [[0x12, 0x34, 0x56, 0x78], [0xff, 0x00, 0xa5, 0x5a]] {
            for len in 0..=MAX_LEN {
                for offset in 0..4 {
                    let mut expected = data[..len].to_vec();
                    apply_mask_naive(&mut expected, mask, offset);
                    for align in 0..32 {
                        let start = base + align;
                        assert_eq!((storage.as_ptr() as usize + start) % 32, align);
                        for kernel in &kernels {
                            storage.copy_from_slice(&guard);
                            storage[start..start + len].copy_from_slice(&data[..len]);
                            run(kernel, &mut storage[start..start + len], mask, offset);
                            // Slice comparisons (memcmp) and a message built
                            // only on failure keep this fast in debug builds.
                            let ok = storage[start..start + len] == expected[..]
                                && storage[..start] == guard[..start]
                                && storage[start + len..] == guard[start + len..];
                            assert!(
                                ok,
                                "kernel {} len {len} offset {offset} align {align}: \
                                 got {:?}, want {expected:?} between guard bytes",
                                kernel.name,
                                &storage[start - 1..start + len + 1],
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dispatch_picks_the_best_kernel_the_cpu_has() {
        let chosen = kernel().name;
        #[cfg(target_arch = "x86_64")]
        {
            let best = if is_x86_feature_detected!("avx2") {
                "avx2"
            } else {
                "sse2"
            };
            assert_eq!(chosen, best);
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(chosen, "neon");
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        assert_eq!(chosen, "portable");
    }

    #[test]
    fn matches_naive_for_small_lengths_offsets_and_alignments() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..=300 {
                for offset in 0..4 {
                    let mut fast = data[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, mask, offset);
                    apply_mask_naive(&mut slow, mask, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn masking_twice_is_identity(data in proptest::collection::vec(any::<u8>(), 0..2048), mask in any::<[u8; 4]>(), offset in 0usize..16) {
            let mut buf = data.clone();
            apply_mask(&mut buf, mask, offset);
            apply_mask(&mut buf, mask, offset);
            prop_assert_eq!(buf, data);
        }

        #[test]
        fn masking_split_at_any_offset_equals_masking_whole(data in proptest::collection::vec(any::<u8>(), 0..2048), mask in any::<[u8; 4]>(), split in any::<prop::sample::Index>()) {
            let k = split.index(data.len() + 1);
            let mut whole = data.clone();
            apply_mask(&mut whole, mask, 0);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(k);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, k);
            prop_assert_eq!(&pieces, &whole);
            let mut naive = data;
            apply_mask_naive(&mut naive, mask, 0);
            prop_assert_eq!(pieces, naive);
        }

        #[test]
        fn every_kernel_matches_naive_on_random_input(data in proptest::collection::vec(any::<u8>(), 0..4096), mask in any::<[u8; 4]>(), offset in 0usize..8, start in 0usize..64) {
            let start = start.min(data.len());
            let mut expected = data.clone();
            apply_mask_naive(&mut expected[start..], mask, offset);
            for kernel in available() {
                let mut buf = data.clone();
                run(&kernel, &mut buf[start..], mask, offset);
                prop_assert_eq!(&buf, &expected, "kernel {}", kernel.name);
            }
        }
    }
}
