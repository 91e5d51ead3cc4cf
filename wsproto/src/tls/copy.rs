//! Byte copies that stay off a slow path of `rep movsb`.
//!
//! On AMD Zen CPUs with FSRM, glibc's `memcpy` uses `rep movsb` for copies
//! of a few KiB and more, and `rep movsb` runs about 20 times slower when
//! the destination lies 1 to 63 bytes after the source modulo 4096 (4K
//! aliasing): measured here, 16 KiB took 7–10 µs instead of 0.4 µs. TLS
//! lands on that distance easily, because a record's plaintext starts 5
//! bytes (the record header) past where the record was read, and heap
//! buffers sit 16 bytes past their chunk headers. Copied in pieces of
//! 2 KiB, which glibc moves with vector loops, the same copy is fast on
//! every CPU; a copy that does not alias stays one `memcpy`. Every copy
//! `TlsStream` makes itself goes through here (socket bytes into the
//! record buffer, plaintext out to the caller, records from the reading
//! side into the output queue); rustls' own copies are kept off a fixed
//! distance by the record layout ([`super::engine`]).

/// Pieces this small stay below glibc's `rep movsb` threshold.
const PIECE: usize = 2048;

/// Whether a copy from `src` to `dst` has the distance `rep movsb` is slow
/// at.
fn aliases(dst: *const u8, src: *const u8) -> bool {
    let distance = (dst as usize).wrapping_sub(src as usize) % 4096;
    (1..64).contains(&distance)
}

/// `dst.copy_from_slice(src)` (equal lengths), in pieces where it aliases.
pub(super) fn copy(dst: &mut [u8], src: &[u8]) {
    if src.len() <= PIECE || !aliases(dst.as_ptr(), src.as_ptr()) {
        dst.copy_from_slice(src);
        return;
    }
    for (d, s) in dst.chunks_mut(PIECE).zip(src.chunks(PIECE)) {
        d.copy_from_slice(s);
    }
}

/// `vec.extend_from_slice(src)`, in pieces where it aliases.
pub(super) fn extend(vec: &mut Vec<u8>, src: &[u8]) {
    vec.reserve(src.len());
    let dst = vec.as_ptr().wrapping_add(vec.len());
    if src.len() <= PIECE || !aliases(dst, src.as_ptr()) {
        vec.extend_from_slice(src);
        return;
    }
    for s in src.chunks(PIECE) {
        vec.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn copies_are_exact_at_every_distance() {
        let src = pattern(20_000);
        for shift in [0, 1, 5, 11, 63, 64, 100, 4095] {
            for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, 16_384, 19_000] {
                let mut dst = vec![0u8; len + 4200];
                copy(&mut dst[shift..shift + len], &src[..len]);
                assert_eq!(
                    &dst[shift..shift + len],
                    &src[..len],
                    "shift {shift} len {len}"
                );
                assert!(dst[..shift].iter().all(|&b| b == 0));
                assert!(dst[shift + len..].iter().all(|&b| b == 0));

                let mut vec = vec![9u8; shift];
                extend(&mut vec, &src[..len]);
                assert_eq!(&vec[shift..], &src[..len]);
            }
        }
    }
}
