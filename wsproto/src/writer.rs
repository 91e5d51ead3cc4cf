//! The write side of the message layer: frames a message, masks it when the
//! role is client (RFC 6455 §5.3), and coalesces small frames in a buffer so
//! that many of them leave in one system call.

use std::io::{self, Write};

use crate::config::Role;
use crate::frame::write_parts;
use crate::header::{Header, OpCode, MAX_HEADER_LEN};
use crate::mask::{apply_mask, random_mask};

/// Frames at most this large are copied into the write buffer; larger
/// unmasked payloads are written straight from the caller's memory.
const COPY_LIMIT: usize = 16 * 1024;
/// The buffer is written out once it holds this much.
const FLUSH_AT: usize = 64 * 1024;
/// A client copies and masks payloads in pieces this large (a quarter of a
/// typical 32 KiB L1 data cache).
const MASK_PIECE: usize = 8 * 1024;

/// Turns messages into frames on a stream.
#[derive(Debug)]
pub(crate) struct Writer {
    role: Role,
    buf: Vec<u8>,
    /// permessage-deflate compressor and the smallest message worth compressing.
    #[cfg(feature = "deflate")]
    deflate: Option<(crate::deflate::codec::Deflater, usize)>,
    /// Reused output buffer of the compressor.
    #[cfg(feature = "deflate")]
    compressed: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(role: Role) -> Writer {
        Writer {
            role,
            buf: Vec::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "deflate")]
            compressed: Vec::new(),
        }
    }

    /// Compress data messages of at least `min_size` bytes from now on.
    #[cfg(feature = "deflate")]
    pub(crate) fn set_deflater(
        &mut self,
        deflater: crate::deflate::codec::Deflater,
        min_size: usize,
    ) {
        self.deflate = Some((deflater, min_size));
    }

    /// Queue one message as a single final frame with `opcode` and
    /// `payload`, compressed when permessage-deflate is on and the message
    /// is large enough (RFC 7692 §6). Small frames stay in the buffer until
    /// [`Writer::flush`] or until the buffer fills.
    pub(crate) fn write<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        opcode: OpCode,
        payload: &[u8],
    ) -> io::Result<()> {
        #[cfg(feature = "deflate")]
        if let Some((deflater, min_size)) = &mut self.deflate {
            if !opcode.is_control() && payload.len() >= *min_size {
                let mut compressed = std::mem::take(&mut self.compressed);
                deflater.compress(payload, &mut compressed)?;
                let result = self.write_frame(w, opcode, true, &compressed);
                self.compressed = compressed;
                return result;
            }
        }
        self.write_frame(w, opcode, false, payload)
    }

    fn write_frame<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        opcode: OpCode,
        rsv1: bool,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut header = Header::new(opcode, payload.len() as u64);
        header.rsv1 = rsv1;
        if self.role == Role::Client {
            header.mask = Some(random_mask());
        }
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        match header.mask {
            None if payload.len() > COPY_LIMIT => {
                self.write_buffered(w)?;
                write_parts(w, &head[..n], payload)?;
            }
            None => {
                self.buf.extend_from_slice(&head[..n]);
                self.buf.extend_from_slice(payload);
            }
            Some(mask) => {
                self.buf.reserve(n + payload.len());
                self.buf.extend_from_slice(&head[..n]);
                // Copy and mask piece by piece: each piece is masked while
                // it is still in the L1 cache, so a large payload costs one
                // pass through memory instead of two.
                let mut offset = 0;
                for piece in payload.chunks(MASK_PIECE) {
                    let at = self.buf.len();
                    self.buf.extend_from_slice(piece);
                    apply_mask(&mut self.buf[at..], mask, offset);
                    offset += piece.len();
                }
            }
        }
        if self.buf.len() >= FLUSH_AT {
            self.write_buffered(w)?;
        }
        Ok(())
    }

    /// Whether frames are waiting in the buffer.
    pub(crate) fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Write out the buffer and flush the stream.
    pub(crate) fn flush<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<()> {
        self.write_buffered(w)?;
        w.flush()
    }

    fn write_buffered<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<()> {
        if !self.buf.is_empty() {
            let result = w.write_all(&self.buf);
            self.buf.clear();
            if self.buf.capacity() > 4 * FLUSH_AT {
                self.buf.shrink_to(FLUSH_AT);
            }
            result?;
        }
        Ok(())
    }
}
