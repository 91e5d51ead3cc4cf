//! The write side of the message layer: frames a message, masks it when the
//! role is client (RFC 6455 §5.3), compresses it when permessage-deflate is
//! on (RFC 7692 §7.2.1), and queues it whole in the [`Outbox`], which
//! writes it out resumably.
//!
//! Small frames are coalesced so that many leave in one system call; large
//! unmasked payloads go straight from the caller's memory. The answer to
//! the latest ping waits in a one-frame slot rather than in the queue, so a
//! peer that pings while not reading cannot grow the queue without bound
//! (RFC 6455 §5.5.3 lets a pong answer only the most recent ping).

use std::io::{self, Write};

use crate::config::{Config, Role};
use crate::core::{ControlPayload, Reply};
use crate::deflate::Deflater;
use crate::error::{Error, Result};
use crate::header::{Header, OpCode, MAX_HEADER_LEN};
use crate::mask::{apply_mask, random_mask};
use crate::outbox::{is_retryable, Outbox};
use crate::prepared::PreparedMessage;

/// Frames at most this large are copied into the queue; larger unmasked
/// payloads are written straight from the caller's memory.
const COPY_LIMIT: usize = 16 * 1024;
/// The queue is written out once it holds this much.
const FLUSH_AT: usize = 64 * 1024;
/// A client copies and masks payloads in pieces this large (a quarter of a
/// typical 32 KiB L1 data cache).
const MASK_PIECE: usize = 8 * 1024;

/// Turns messages into frames and keeps them until the stream takes them.
#[derive(Debug)]
pub(crate) struct Writer {
    role: Role,
    outbox: Outbox,
    /// `write` refuses new messages while more than this is unsent.
    max_buffer: usize,
    /// The pong owed for the latest ping, not yet queued.
    pong: Option<ControlPayload>,
    /// permessage-deflate compressor and the smallest message worth compressing.
    deflate: Option<(Deflater, usize)>,
    /// Reused output buffer of the compressor.
    compressed: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(role: Role, config: &Config) -> Writer {
        Writer {
            role,
            outbox: Outbox::default(),
            max_buffer: config.max_write_buffer_size,
            pong: None,
            deflate: None,
            compressed: Vec::new(),
        }
    }

    /// Compress data messages of at least `min_size` bytes from now on.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn set_deflater(&mut self, deflater: Deflater, min_size: usize) {
        self.deflate = Some((deflater, min_size));
    }

    /// Unsent bytes, the owed pong included.
    pub(crate) fn pending(&self) -> usize {
        self.outbox.pending() + self.pong.map_or(0, |p| 2 + p.as_slice().len())
    }

    /// Whether a write error other than `WouldBlock`/`TimedOut` broke the
    /// stream.
    pub(crate) fn is_broken(&self) -> bool {
        self.outbox.is_broken()
    }

    /// Queue one message as a single final frame with `opcode` and
    /// `payload`, compressed when permessage-deflate is on and the message
    /// is large enough (RFC 7692 §6).
    ///
    /// `Ok` means the frame is queued whole (or already written). While
    /// more than the configured limit is unsent and the stream takes no
    /// more, the message is refused with [`Error::WriteBufferFull`] and
    /// nothing of it is queued. A `WouldBlock` or `TimedOut` while writing
    /// out is not an error here: the bytes stay queued and the next
    /// [`Writer::flush`] reports it.
    pub(crate) fn write<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<()> {
        self.make_room(w)?;
        if let Some((deflater, min_size)) = &mut self.deflate {
            if !opcode.is_control() && payload.len() >= *min_size {
                let mut compressed = std::mem::take(&mut self.compressed);
                let result = match deflater.compress(payload, &mut compressed) {
                    Ok(()) => self.write_frame(w, opcode, true, &compressed),
                    Err(e) => Err(e.into()),
                };
                self.compressed = compressed;
                return result;
            }
        }
        self.write_frame(w, opcode, false, payload)
    }

    /// Refuse to queue more while over the limit and the stream takes
    /// nothing; then queue the owed pong if there is room.
    fn make_room<W: Write + ?Sized>(&mut self, w: &mut W) -> Result<()> {
        if self.outbox.is_broken() {
            return Err(Error::StreamFailed);
        }
        if self.outbox.pending() > self.max_buffer {
            if let Err(e) = self.outbox.drain(w) {
                if !is_retryable(&e) {
                    return Err(e.into());
                }
                if self.outbox.pending() > self.max_buffer {
                    return Err(Error::WriteBufferFull);
                }
            }
        }
        self.queue_pong(false);
        Ok(())
    }

    /// Whether `message`'s shared frame is what this connection would
    /// send: a server's (unmasked) frame, not compressed (RFC 7692 §6:
    /// messages under the deflate threshold go out as they are).
    fn can_share(&self, message: &PreparedMessage) -> bool {
        self.role == Role::Server
            && self
                .deflate
                .as_ref()
                .is_none_or(|(_, min_size)| message.payload().len() < *min_size)
    }

    /// Queue a prepared message like [`Writer::write`]; the shared frame's
    /// bytes are used as they are when this connection can (see
    /// [`PreparedMessage`]). With `send`, it is then written out and the
    /// stream flushed, straight from the shared bytes when nothing else is
    /// queued (only what the stream does not take is copied).
    pub(crate) fn write_prepared<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        message: &PreparedMessage,
        send: bool,
    ) -> Result<()> {
        if !self.can_share(message) {
            self.write(w, message.opcode(), message.payload())?;
            return if send { self.flush(w) } else { Ok(()) };
        }
        self.make_room(w)?;
        let frame = message.frame();
        if self.outbox.pending() == 0 && (send || frame.len() > COPY_LIMIT) {
            if let Err(e) = self.outbox.write_direct(w, &[], frame) {
                if !is_retryable(&e) {
                    return Err(e.into());
                }
            }
        } else {
            self.outbox.tail().extend_from_slice(frame);
            if !send && self.outbox.pending() >= FLUSH_AT {
                if let Err(e) = self.outbox.drain(w) {
                    if !is_retryable(&e) {
                        return Err(e.into());
                    }
                }
            }
        }
        if send {
            self.flush(w)
        } else {
            Ok(())
        }
    }

    /// Queue a reply the reading side owes.
    pub(crate) fn queue_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Pong(payload) => self.owe_pong(payload),
            Reply::Close(payload) => self.queue_close(payload.as_slice()),
        }
    }

    /// Owe a pong for a ping with `payload`; it replaces an older pong not
    /// yet queued.
    pub(crate) fn owe_pong(&mut self, payload: ControlPayload) {
        self.pong = Some(payload);
    }

    /// Queue a Close frame with `payload` (at most 125 bytes, checked by the
    /// caller). A Close the protocol owes (an echo, a failure) is queued
    /// whatever the queue holds: it is the last frame of the connection.
    pub(crate) fn queue_close(&mut self, payload: &[u8]) {
        self.queue_pong(true);
        self.append_frame(OpCode::Close, false, payload);
    }

    /// Write out everything queued and flush the stream. A `WouldBlock` or
    /// `TimedOut` keeps the rest queued: call again to continue.
    pub(crate) fn flush<W: Write + ?Sized>(&mut self, w: &mut W) -> Result<()> {
        if self.outbox.is_broken() {
            return Err(Error::StreamFailed);
        }
        self.queue_pong(false);
        self.outbox.drain(w)?;
        // The pong may have waited for room.
        if self.pong.is_some() {
            self.queue_pong(false);
            self.outbox.drain(w)?;
        }
        loop {
            match w.flush() {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !is_retryable(&e) {
                        self.outbox.set_broken();
                    }
                    return Err(e.into());
                }
            }
        }
    }

    /// Move the owed pong into the queue, when there is room for it (or
    /// always, with `force`).
    fn queue_pong(&mut self, force: bool) {
        if let Some(pong) = self.pong {
            if force || self.outbox.pending() < FLUSH_AT {
                self.pong = None;
                self.append_frame(OpCode::Pong, false, pong.as_slice());
            }
        }
    }

    fn write_frame<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        opcode: OpCode,
        rsv1: bool,
        payload: &[u8],
    ) -> Result<()> {
        if self.role == Role::Server && payload.len() > COPY_LIMIT {
            let (head, n) = encode_header(opcode, rsv1, payload.len(), None);
            let direct = match self.outbox.drain(w) {
                Ok(()) => self.outbox.write_direct(w, &head[..n], payload),
                Err(e) if is_retryable(&e) => {
                    let tail = self.outbox.tail();
                    tail.extend_from_slice(&head[..n]);
                    tail.extend_from_slice(payload);
                    Ok(())
                }
                Err(e) => Err(e),
            };
            return match direct {
                Err(e) if !is_retryable(&e) => Err(e.into()),
                _ => Ok(()),
            };
        }
        self.append_frame(opcode, rsv1, payload);
        if self.outbox.pending() >= FLUSH_AT {
            if let Err(e) = self.outbox.drain(w) {
                if !is_retryable(&e) {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Append one whole frame to the queue, masked for a client.
    fn append_frame(&mut self, opcode: OpCode, rsv1: bool, payload: &[u8]) {
        let mask = (self.role == Role::Client).then(random_mask);
        let (head, n) = encode_header(opcode, rsv1, payload.len(), mask);
        let buf = self.outbox.tail();
        buf.reserve(n + payload.len());
        buf.extend_from_slice(&head[..n]);
        match mask {
            None => buf.extend_from_slice(payload),
            Some(mask) => {
                // Copy and mask piece by piece: each piece is masked while
                // it is still in the L1 cache, so a large payload costs one
                // pass through memory instead of two.
                let mut offset = 0;
                for piece in payload.chunks(MASK_PIECE) {
                    let at = buf.len();
                    buf.extend_from_slice(piece);
                    apply_mask(&mut buf[at..], mask, offset);
                    offset += piece.len();
                }
            }
        }
    }
}

fn encode_header(
    opcode: OpCode,
    rsv1: bool,
    len: usize,
    mask: Option<[u8; 4]>,
) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut header = Header::new(opcode, len as u64);
    header.rsv1 = rsv1;
    header.mask = mask;
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    (head, n)
}
