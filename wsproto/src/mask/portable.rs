//! The portable cipher: plain safe Rust, word at a time.
//!
//! Used on CPUs without a SIMD kernel, for buffers too short for one, and
//! for the sub-vector tails of the SIMD kernels.

use super::Kernel;

pub(super) const KERNEL: Kernel = Kernel {
    name: "portable",
    xor,
};

/// XOR `buf[i]` with `mask[i % 4]`.
///
/// 32-byte blocks of four `u64` lanes (which the compiler turns into vector
/// instructions of whatever width the target has), then [`xor_tail`]. Every
/// block and word is a multiple of 4 bytes long, so the mask phase is the
/// same at the start of each and the mask never needs rotating.
#[inline]
pub(super) fn xor(buf: &mut [u8], mask: [u8; 4]) {
    let word = word_of(mask);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for lane in block.chunks_exact_mut(8) {
            xor_u64(lane, word);
        }
    }
    xor_tail(blocks.into_remainder(), mask);
}

/// XOR `buf[i]` with `mask[i % 4]` for a short `buf` (any length works, but
/// this is meant for the last few bytes): 8-byte words, one 4-byte word,
/// then at most 3 single bytes.
#[inline(always)]
pub(super) fn xor_tail(buf: &mut [u8], mask: [u8; 4]) {
    let word = word_of(mask);
    let mut words = buf.chunks_exact_mut(8);
    for lane in &mut words {
        xor_u64(lane, word);
    }
    let rest = words.into_remainder();
    let rest = match rest.split_first_chunk_mut::<4>() {
        Some((four, rest)) => {
            *four = (u32::from_ne_bytes(*four) ^ u32::from_ne_bytes(mask)).to_ne_bytes();
            rest
        }
        None => rest,
    };
    for (byte, m) in rest.iter_mut().zip(mask) {
        *byte ^= m;
    }
}

/// XOR `buf[i]` with `mask[i % 4]` for `buf` shorter than 16 bytes: the
/// tail of a SIMD kernel. No loops, so the kernels that inline it stay small
/// (few registers to save, which matters for 100-byte frames).
#[inline(always)]
pub(super) fn xor_lt16(buf: &mut [u8], mask: [u8; 4]) {
    debug_assert!(buf.len() < 16);
    let rest = match buf.split_first_chunk_mut::<8>() {
        Some((eight, rest)) => {
            *eight = (u64::from_ne_bytes(*eight) ^ word_of(mask)).to_ne_bytes();
            rest
        }
        None => buf,
    };
    let rest = match rest.split_first_chunk_mut::<4>() {
        Some((four, rest)) => {
            *four = (u32::from_ne_bytes(*four) ^ u32::from_ne_bytes(mask)).to_ne_bytes();
            rest
        }
        None => rest,
    };
    for (byte, m) in rest.iter_mut().zip(mask) {
        *byte ^= m;
    }
}

/// The mask repeated twice, as a native-endian word.
#[inline(always)]
fn word_of(mask: [u8; 4]) -> u64 {
    let half = u64::from(u32::from_ne_bytes(mask));
    half | (half << 32)
}

#[inline(always)]
fn xor_u64(lane: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(lane);
    let v = u64::from_ne_bytes(bytes) ^ word;
    lane.copy_from_slice(&v.to_ne_bytes());
}
