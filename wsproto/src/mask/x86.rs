//! AVX2 and SSE2 kernels for x86-64.
//!
//! Each kernel is an `unsafe` `#[target_feature]` function reachable only
//! through a [`Kernel`] that [`avx2`] / [`sse2`] build after
//! `is_x86_feature_detected!` has confirmed the feature, so the safe
//! wrapper in the `Kernel` can never run on a CPU without it.
//!
//! Both kernels work the same way, with `W`-byte vectors (32 or 16); steps
//! 1 and 2 are one macro, `xor_vectors!`, expanded in each:
//! 1. Buffers of at least [`ALIGN_FROM`] bytes that do not start on a
//!    `W`-byte boundary get their first `W` bytes XORed with an unaligned
//!    vector; the aligned vector that overlaps it is loaded *before* that
//!    store, so its bytes are XORed once and every later access is aligned
//!    (unaligned stores that straddle cache lines are what make unaligned
//!    starts slow). Shorter buffers use unaligned vectors throughout.
//! 2. Four vectors per iteration (read as one `[vector; 4]`, so all four
//!    loads are issued before the first store: written as four separate
//!    load/store pairs, LLVM interleaved them, which ran ~5 % slower on
//!    64 KiB buffers that live in L2), then one at a time.
//! 3. The tail, under `W` bytes, goes to a 16-byte vector (AVX2 kernel) and
//!    then, under 16 bytes, to the portable words.
//!
//! Every step after the first moves by a multiple of 4 bytes, so the mask is
//! rotated once, by the length of the head, and never again.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::arch::x86_64::{
    __m128i, __m256i, _mm256_loadu_si256, _mm256_set1_epi32, _mm256_storeu_si256, _mm256_xor_si256,
    _mm_loadu_si128, _mm_set1_epi32, _mm_storeu_si128, _mm_xor_si128,
};

use super::{portable, rotate, Kernel};

/// The AVX2 kernel, if this CPU has AVX2.
pub(super) fn avx2() -> Option<Kernel> {
    if is_x86_feature_detected!("avx2") {
        Some(Kernel {
            name: "avx2",
            xor: xor_avx2_checked,
        })
    } else {
        None
    }
}

/// The SSE2 kernel, if this CPU has SSE2 (every x86-64 CPU does).
pub(super) fn sse2() -> Option<Kernel> {
    if is_x86_feature_detected!("sse2") {
        Some(Kernel {
            name: "sse2",
            xor: xor_sse2_checked,
        })
    } else {
        None
    }
}

/// Only ever called through the `Kernel` built by [`avx2`].
fn xor_avx2_checked(buf: &mut [u8], mask: [u8; 4]) {
    // SAFETY: this function is private and its only use is the `Kernel`
    // returned by `avx2()`, which exists only after AVX2 was detected.
    unsafe { xor_avx2(buf, mask) }
}

/// Only ever called through the `Kernel` built by [`sse2`].
fn xor_sse2_checked(buf: &mut [u8], mask: [u8; 4]) {
    // SAFETY: this function is private and its only use is the `Kernel`
    // returned by `sse2()`, which exists only after SSE2 was detected.
    unsafe { xor_sse2(buf, mask) }
}

/// Buffers at least this long get the aligned head (step 1); shorter ones
/// are done with unaligned vectors. Must be at least `2 * W` for both
/// kernels.
const ALIGN_FROM: usize = 512;

/// How many bytes from `p` to the next `align`-byte boundary (0 if `p` is on
/// one). `align` is a power of two.
#[inline(always)]
fn to_boundary(p: *const u8, align: usize) -> usize {
    (align - (p as usize & (align - 1))) & (align - 1)
}

/// Steps 1 and 2 of the module doc, the part both kernels share, for
/// vectors of type `$vec` with their `set1`/`loadu`/`storeu`/`xor`
/// intrinsics: XORs `len` bytes at `p` with `mask` (from offset 0) while a
/// whole vector is left, leaving `i` at the first byte not done and `mask`
/// rotated to go on from there. Expanded inside each kernel, so the
/// intrinsics are compiled with that kernel's `#[target_feature]`.
macro_rules! xor_vectors {
    ($p:ident, $len:ident, $mask:ident, $i:ident;
     $vec:ty, $set1:path, $load:path, $store:path, $xor:path) => {
        const W: usize = std::mem::size_of::<$vec>();
        if $len >= W {
            // SAFETY: `p` points to `len` bytes we may write (the kernel's
            // `buf`, borrowed mutably). The head accesses `W` bytes at `p`
            // and at `p + head` with `head < W` and `2 * W <= ALIGN_FROM <=
            // len`; every later access is `4 * W` or `W` bytes at `p + i`
            // with `i + 4 * W <= len` or `i + W <= len` checked just before,
            // so all stay inside `buf`. `read_unaligned`/`write_unaligned`
            // and `loadu`/`storeu` accept any alignment. The vector
            // instructions are enabled by the expanding kernel's
            // `#[target_feature]`, and its callers' contract says the CPU
            // has them.
            unsafe {
                let head = to_boundary($p, W);
                if head != 0 && $len >= ALIGN_FROM {
                    let first = $load($p.cast::<$vec>());
                    // Read the aligned vector before the head store
                    // overwrites its first `W - head` bytes: they are then
                    // XORed once.
                    let next = $load($p.add(head).cast::<$vec>());
                    let m = $set1(i32::from_ne_bytes($mask));
                    $store($p.cast::<$vec>(), $xor(first, m));
                    $mask = rotate($mask, head);
                    let m = $set1(i32::from_ne_bytes($mask));
                    $store($p.add(head).cast::<$vec>(), $xor(next, m));
                    $i = head + W;
                }
                let m = $set1(i32::from_ne_bytes($mask));
                let mut a = $p.add($i).cast::<[$vec; 4]>();
                while $i + 4 * W <= $len {
                    let v = a.read_unaligned();
                    a.write_unaligned([$xor(v[0], m), $xor(v[1], m), $xor(v[2], m), $xor(v[3], m)]);
                    a = a.add(1);
                    $i += 4 * W;
                }
                while $i + W <= $len {
                    let a = $p.add($i).cast::<$vec>();
                    $store(a, $xor($load(a), m));
                    $i += W;
                }
            }
        }
    };
}

/// XOR `buf[i]` with `mask[i % 4]` using 32-byte AVX2 vectors.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn xor_avx2(buf: &mut [u8], mask: [u8; 4]) {
    let len = buf.len();
    let p = buf.as_mut_ptr();
    let mut mask = mask;
    let mut i = 0;
    xor_vectors!(p, len, mask, i;
        __m256i, _mm256_set1_epi32, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_xor_si256);
    if i + 16 <= len {
        // SAFETY: 16 bytes at `p + i` with `i + 16 <= len`: inside `buf`;
        // `loadu`/`storeu` accept any alignment.
        unsafe {
            let a = p.add(i).cast::<__m128i>();
            let m = _mm_set1_epi32(i32::from_ne_bytes(mask));
            _mm_storeu_si128(a, _mm_xor_si128(_mm_loadu_si128(a), m));
        }
        i += 16;
    }
    // `p` is not used past this point, so reborrowing `buf` is fine.
    portable::xor_lt16(&mut buf[i..], mask);
}

/// XOR `buf[i]` with `mask[i % 4]` using 16-byte SSE2 vectors.
///
/// # Safety
/// The CPU must support SSE2.
#[target_feature(enable = "sse2")]
unsafe fn xor_sse2(buf: &mut [u8], mask: [u8; 4]) {
    let len = buf.len();
    let p = buf.as_mut_ptr();
    let mut mask = mask;
    let mut i = 0;
    xor_vectors!(p, len, mask, i;
        __m128i, _mm_set1_epi32, _mm_loadu_si128, _mm_storeu_si128, _mm_xor_si128);
    // `p` is not used past this point, so reborrowing `buf` is fine.
    portable::xor_lt16(&mut buf[i..], mask);
}
