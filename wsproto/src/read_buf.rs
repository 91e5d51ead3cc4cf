//! The read buffer under the frame reader: bytes received and not yet
//! consumed, grown with traffic, and the direct path that reads large
//! payloads straight into their message. RFC 6455's checks and reassembly
//! live in `reader.rs`; this module only moves bytes.
//!
//! All progress lives in the struct, so a read that fails with
//! `WouldBlock` or `TimedOut` can be retried and continues where it was.

use std::io::{self, IoSliceMut, Read};

use crate::error::{Error, Result};
use crate::mask::apply_mask;
use crate::payload::Payload;

/// Data payloads that do not fit in the read buffer are read straight into
/// the message, in chunks of at most `DIRECT_CHUNK` bytes.
const DIRECT_CHUNK: usize = 256 * 1024;

/// The read buffer starts this small (or at `Config::read_buffer_size`, if
/// smaller) and doubles whenever one read fills it: an idle or chatty-but-
/// small connection keeps 2 KiB, a busy one grows to the configured cap.
const INITIAL_BUFFER: usize = 2 * 1024;

/// While the peer sends payloads too large for the buffer, reads into the
/// buffer stop at this many bytes: enough for the next header and a bit,
/// while the bulk of the next payload is read straight into its message
/// instead of being copied there from the buffer.
const SHORT_READ: usize = 4 * 1024;

/// The buffer can always hold a whole header and a whole control frame.
const MIN_BUFFER: usize = crate::header::MAX_HEADER_LEN + 125;

/// Received bytes not yet consumed by the frame reader.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    /// Storage; bytes `start..end` are received but not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Cap of the buffer (`Config::read_buffer_size`).
    cap: usize,
    /// The last read filled the buffer: traffic wants a bigger one.
    filled: bool,
    /// The last data frame's payload did not fit in the buffer: read
    /// [`SHORT_READ`] bytes at a time into it.
    large_payloads: bool,
    /// Size of the next direct read (see [`ReadBuffer::read_direct`]).
    direct_chunk: usize,
}

impl ReadBuffer {
    /// A buffer that first holds `leftover` (bytes read with the
    /// handshake), growing up to `cap`.
    pub(crate) fn new(leftover: Vec<u8>, cap: usize) -> ReadBuffer {
        let end = leftover.len();
        ReadBuffer {
            buf: leftover,
            start: 0,
            end,
            cap: cap.max(MIN_BUFFER),
            filled: false,
            large_payloads: false,
            direct_chunk: DIRECT_CHUNK,
        }
    }

    /// The bytes received and not yet consumed.
    pub(crate) fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The same, to unmask in place.
    pub(crate) fn available_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// How many bytes are available.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether nothing is available.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The buffer's current size: a payload at least this large is read
    /// straight into its message.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Mark `n` available bytes as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
    }

    /// A data frame with a payload of `len` bytes begins: while payloads
    /// are too large for the buffer, reads into it stay short.
    pub(crate) fn note_payload(&mut self, len: u64) {
        self.large_payloads = len >= self.buf.len() as u64;
    }

    /// Read payload bytes straight into `dest` (the message), bypassing the
    /// buffer; `mask` unmasks them from payload `offset` on.
    ///
    /// One vectored read fills the rest of the payload *and* the (empty)
    /// read buffer, which takes whatever follows: the next frame's header
    /// and more. Pipelined large messages so cost one system call each.
    pub(crate) fn read_direct<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        dest: &mut Payload,
        mask: Option<[u8; 4]>,
        offset: usize,
        remaining: u64,
    ) -> Result<usize> {
        // Destination bytes the buffer never held are zero-filled before
        // the read; sizing the chunk from the previous read keeps that cost
        // proportional to the bytes that actually arrive, even from a peer
        // that trickles them.
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(self.direct_chunk);
        let old = dest.len();
        let frame_end = old.saturating_add(usize::try_from(remaining).unwrap_or(usize::MAX));
        let space = dest.grow_for_read(want, frame_end);
        // Only called with nothing buffered.
        debug_assert_eq!(self.start, self.end);
        self.start = 0;
        self.end = 0;
        let tail = self.buf.len().min(SHORT_READ);
        let n = loop {
            let mut parts = [
                IoSliceMut::new(&mut space[..]),
                IoSliceMut::new(&mut self.buf[..tail]),
            ];
            match r.read_vectored(&mut parts) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    dest.truncate(old);
                    return Err(e.into());
                }
            }
        };
        let payload = n.min(want);
        if let Some(mask) = mask {
            apply_mask(&mut space[..payload], mask, offset);
        }
        dest.truncate(old + payload);
        self.end = n - payload;
        if n == 0 {
            return Err(Error::UnexpectedEof);
        }
        self.direct_chunk = (2 * payload).clamp(SHORT_READ, DIRECT_CHUNK);
        Ok(payload)
    }

    /// Read more bytes from `r` into the buffer. End of stream is an error:
    /// the peer left without a close handshake.
    ///
    /// The buffer starts at [`INITIAL_BUFFER`] and doubles, up to the
    /// configured cap, each time a read filled it completely.
    pub(crate) fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut size = self.buf.len().max(INITIAL_BUFFER.min(self.cap));
        if self.filled && size < self.cap {
            size = (2 * size).min(self.cap);
        }
        if self.end == size {
            // Full of unconsumed bytes (handshake leftovers): make room.
            size += MIN_BUFFER;
        }
        if size > self.buf.len() {
            self.buf.resize(size, 0);
        }
        let stop = if self.large_payloads {
            (self.end + SHORT_READ).min(self.buf.len())
        } else {
            self.buf.len()
        };
        loop {
            match r.read(&mut self.buf[self.end..stop]) {
                Ok(0) => return Err(Error::UnexpectedEof),
                Ok(n) => {
                    self.end += n;
                    self.filled = !self.large_payloads && self.end == self.buf.len();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
