//! Per-message compression and decompression (RFC 7692 §7.2).
//!
//! A message is compressed as raw deflate ending in a sync flush, whose
//! `00 00 ff ff` tail is removed before sending (§7.2.1) and appended again
//! before inflating (§7.2.2). Inflating stops as soon as the output passes
//! the message size limit, so a small compressed frame cannot expand into
//! gigabytes in memory.
//!
//! zlib state costs a few hundred KiB per direction, so it is created on the
//! first message that needs it: an idle connection pays nothing for having
//! negotiated the extension.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{Error, Result};

/// The tail a sync flush ends with.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output grows by at most this much per inflate step.
const INFLATE_STEP: usize = 1 << 20;

/// Compresses outgoing messages.
pub(crate) struct Deflater {
    /// Created on first use.
    compress: Option<Compress>,
    level: u32,
    window_bits: u8,
    reset_each_message: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("reset_each_message", &self.reset_each_message)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    pub(crate) fn new(level: u32, window_bits: u8, reset_each_message: bool) -> Deflater {
        Deflater {
            compress: None,
            level: level.min(9),
            window_bits: window_bits.clamp(9, 15),
            reset_each_message,
        }
    }

    /// Compress one whole message into `out` (cleared first), without the tail.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        let (level, window_bits) = (self.level, self.window_bits);
        let compress = self.compress.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, window_bits)
        });
        out.clear();
        out.reserve(input.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = compress.total_in();
            compress
                .compress_vec(&input[pos..], out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            pos += (compress.total_in() - before) as usize;
            if pos == input.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // A sync flush right after another one emits nothing, but the
            // receiver appends `00 00 ff ff` (LEN/NLEN of a stored block)
            // and needs the block header bits before it: an empty message
            // is the single byte 0x00 (RFC 7692 §7.2.3.6).
            out.push(0x00);
        }
        if self.reset_each_message {
            compress.reset();
        }
        Ok(())
    }
}

/// Decompresses incoming messages.
pub(crate) struct Inflater {
    /// Created on first use.
    decompress: Option<Decompress>,
    window_bits: u8,
    reset_each_message: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("reset_each_message", &self.reset_each_message)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    pub(crate) fn new(window_bits: u8, reset_each_message: bool) -> Inflater {
        // A larger window than the peer's always inflates correctly; zlib
        // needs at least 9 for raw streams.
        let window_bits = window_bits.clamp(9, 15);
        Inflater {
            decompress: None,
            window_bits,
            reset_each_message,
        }
    }

    /// Inflate one frame's compressed payload, appending to `out`; with
    /// `last`, also the message tail. Fails with [`Error::MessageTooBig`] as
    /// soon as `out` would exceed `limit`, and with
    /// [`Error::InvalidCompressedData`] on a corrupt stream.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<()> {
        self.inflate_part(input, out, limit)?;
        if last {
            self.inflate_part(&TAIL, out, limit)?;
            if self.reset_each_message {
                if let Some(decompress) = &mut self.decompress {
                    decompress.reset(false);
                }
            }
        }
        Ok(())
    }

    fn inflate_part(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
        let window_bits = self.window_bits;
        let decompress = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, window_bits));
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                // Grow geometrically up to INFLATE_STEP at a time, never past
                // one byte over the limit: that byte is how we notice.
                let room = limit.saturating_add(1).saturating_sub(out.len()).max(1);
                out.reserve_exact(out.len().clamp(4096, INFLATE_STEP).min(room));
            }
            let (before_in, before_out) = (decompress.total_in(), decompress.total_out());
            let status = decompress
                .decompress_vec(&input[pos..], out, FlushDecompress::Sync)
                .map_err(|_| Error::InvalidCompressedData)?;
            pos += (decompress.total_in() - before_in) as usize;
            if out.len() > limit {
                return Err(Error::MessageTooBig {
                    size: out.len() as u64,
                    limit,
                });
            }
            if status == Status::StreamEnd {
                // The peer ended the deflate stream (BFINAL); what follows
                // starts a fresh one (RFC 7692 §7.2.3.4).
                *decompress = Decompress::new_with_window_bits(false, window_bits);
            }
            if pos == input.len() && out.len() < out.capacity() {
                return Ok(());
            }
            let progressed =
                decompress.total_in() != before_in || decompress.total_out() != before_out;
            if !progressed {
                // Input left, room left, and nothing moved: a stream that
                // cannot continue.
                return Err(Error::InvalidCompressedData);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7692_hello_example() {
        // §7.2.3.1: "Hello" compressed is c2 48 cd c9 c9 07 00 (RFC uses
        // fixed Huffman; any valid encoding must inflate to the same text).
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        inflater
            .inflate(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                true,
                &mut out,
                1000,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: a second "Hello" with the shared context is f2 00 11 00 00.
        out.clear();
        inflater
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, &mut out, 1000)
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn our_compression_roundtrips_and_shares_context() {
        let mut deflater = Deflater::new(6, 15, false);
        let mut inflater = Inflater::new(15, false);
        let mut first = Vec::new();
        deflater.compress(b"Hello", &mut first).unwrap();
        assert_eq!(first, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        let mut second = Vec::new();
        deflater.compress(b"Hello", &mut second).unwrap();
        assert!(
            second.len() < first.len(),
            "context takeover makes the repeat shorter"
        );
        let mut out = Vec::new();
        inflater.inflate(&first, true, &mut out, 100).unwrap();
        inflater.inflate(&second, true, &mut out, 100).unwrap();
        assert_eq!(out, b"HelloHello");
    }

    #[test]
    fn no_context_takeover_repeats_the_same_bytes() {
        let mut deflater = Deflater::new(6, 15, true);
        let mut a = Vec::new();
        let mut b = Vec::new();
        deflater.compress(b"Hello", &mut a).unwrap();
        deflater.compress(b"Hello", &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    }

    #[test]
    fn zip_bomb_stops_at_the_limit() {
        let mut deflater = Deflater::new(9, 15, false);
        let zeros = vec![0u8; 8 << 20];
        let mut bomb = Vec::new();
        deflater.compress(&zeros, &mut bomb).unwrap();
        assert!(
            bomb.len() < 16 * 1024,
            "8 MiB of zeros compress to {} bytes",
            bomb.len()
        );
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        let err = inflater
            .inflate(&bomb, true, &mut out, 1 << 20)
            .unwrap_err();
        assert!(matches!(err, Error::MessageTooBig { limit, .. } if limit == 1 << 20));
        assert!(
            out.capacity() <= (1 << 20) + 1,
            "capacity {}",
            out.capacity()
        );
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        assert!(matches!(
            inflater.inflate(&[0xff, 0xff, 0xff], true, &mut out, 100),
            Err(Error::InvalidCompressedData)
        ));
    }
}
