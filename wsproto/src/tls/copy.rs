//! Byte copies that stay off a slow path of `rep movsb`.
//!
//! On AMD Zen CPUs with FSRM, glibc's `memcpy` uses `rep movsb` for copies
//! of a few KiB and more, and `rep movsb` runs about 20 times slower when
//! the destination lies 1 to 63 bytes after the source modulo 4096 (4K
//! aliasing): measured here, 16 KiB took 7–10 µs instead of 0.4 µs. TLS
//! hits that distance all the time, because a record's plaintext starts 5
//! bytes (the record header) past where the record was read, and heap
//! buffers sit 16 bytes past their chunk headers. Copied in pieces of
//! 2 KiB, which glibc moves with vector loops, the same copy is fast on
//! every CPU; a copy that does not alias stays one `memcpy`.

use std::io::{self, IoSlice};

/// Pieces this small stay below glibc's `rep movsb` threshold.
pub(super) const PIECE: usize = 2048;

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

/// A `Write` that appends to a `Vec` with [`extend`]: what rustls' sealed
/// records are written into.
pub(super) struct VecSink<'a>(pub(super) &'a mut Vec<u8>);

impl io::Write for VecSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        extend(self.0, buf);
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for buf in bufs {
            extend(self.0, buf);
            n += buf.len();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Read` over a slice that copies with [`copy`]: how socket bytes are
/// handed to rustls.
pub(super) struct SliceSource<'a>(pub(super) &'a [u8]);

impl io::Read for SliceSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0.len());
        copy(&mut buf[..n], &self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// At most this many pieces go to rustls in one write.
const MAX_PIECES: usize = 64;

/// Cut `bufs` into slices of at most [`PIECE`] bytes (as many as fit in
/// `pieces`), and call `f` with them. rustls copies each slice into a
/// fresh record buffer whose address cannot be known in advance, so a
/// large slice is always cut.
pub(super) fn with_pieces<T>(bufs: &[IoSlice<'_>], f: impl FnOnce(&[IoSlice<'_>]) -> T) -> T {
    let mut pieces = [IoSlice::new(&[]); MAX_PIECES];
    let mut n = 0;
    'outer: for buf in bufs {
        for piece in buf.chunks(PIECE) {
            if n == MAX_PIECES {
                break 'outer;
            }
            pieces[n] = IoSlice::new(piece);
            n += 1;
        }
    }
    f(&pieces[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

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

    #[test]
    fn sink_source_and_pieces_keep_every_byte_in_order() {
        let data = pattern(150_000);
        let mut out = Vec::new();
        let bufs = [IoSlice::new(&data[..5]), IoSlice::new(&data[5..100_000])];
        let n = VecSink(&mut out).write_vectored(&bufs).unwrap();
        assert_eq!((n, &out[..]), (100_000, &data[..100_000]));

        let mut source = SliceSource(&data);
        let mut back = vec![0u8; 150_000];
        let mut got = 0;
        while got < back.len() {
            got += source
                .read(&mut back[got..(got + 4096).min(150_000)])
                .unwrap();
        }
        assert_eq!(back, data);

        let bufs = [IoSlice::new(&data[..3]), IoSlice::new(&data[3..])];
        let joined = with_pieces(&bufs, |pieces| {
            assert!(pieces.len() <= MAX_PIECES);
            assert!(pieces.iter().all(|p| p.len() <= PIECE));
            pieces
                .iter()
                .flat_map(|p| p.iter().copied())
                .collect::<Vec<u8>>()
        });
        // As many whole pieces as fit, in order.
        assert_eq!(joined, data[..joined.len()]);
        assert_eq!(joined.len(), 3 + (MAX_PIECES - 1) * PIECE);
    }
}
