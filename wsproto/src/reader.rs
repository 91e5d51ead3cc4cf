//! The read side of the message layer: a buffered frame reader that checks
//! every frame against RFC 6455 and reassembles fragmented messages
//! (RFC 6455 §5.4), validating text as it arrives.
//!
//! All progress lives in the struct, so a read that fails with a time-out
//! (`WouldBlock` / `TimedOut`) can simply be retried.

use std::io::{self, Read};

use crate::close::CloseFrame;
use crate::config::{Config, Role};
use crate::error::{Error, Result};
use crate::header::{Header, OpCode, Parsed};
use crate::mask::apply_mask;
use crate::message::MessageRef;
use crate::utf8::Utf8Validator;

/// Data payloads at least this large (and not yet buffered) are read
/// straight into the message, in chunks of at most `DIRECT_CHUNK` bytes.
const DIRECT_CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    Text,
    Binary,
}

/// What [`Reader::read`] completed; the payload stays in the reader, see
/// [`Reader::view`] and [`Reader::take_data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A text message, validated as UTF-8.
    Text,
    /// A binary message.
    Binary,
    /// A ping.
    Ping,
    /// A pong.
    Pong,
    /// A Close frame.
    Close(Option<CloseFrame>),
}

/// Message buffers grown past this are freed after use instead of kept, so
/// one large message does not pin its memory for the connection's lifetime.
const KEEP_CAPACITY: usize = 1 << 20;

#[derive(Debug)]
struct FrameProgress {
    header: Header,
    /// Payload bytes consumed so far.
    done: u64,
}

/// Reads frames from a stream and turns them into messages.
#[derive(Debug)]
pub(crate) struct Reader {
    role: Role,
    max_frame_size: usize,
    max_message_size: usize,
    buffer_size: usize,
    /// Storage; bytes `start..end` are received but not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The frame being read, once its header has been parsed.
    frame: Option<FrameProgress>,
    /// The data message being assembled, if any.
    kind: Option<DataKind>,
    message: Vec<u8>,
    utf8: Utf8Validator,
    /// Payload of the control frame being read (at most 125 bytes).
    control: Vec<u8>,
    /// Size of the next direct read (see `read_direct`).
    direct_chunk: usize,
    /// The message being assembled is compressed (RSV1 on its first frame).
    compressed: bool,
    /// Compressed payload of the current frame, inflated when it is complete.
    compressed_frame: Vec<u8>,
    /// permessage-deflate decompressor, when negotiated.
    #[cfg(feature = "deflate")]
    inflater: Option<crate::deflate::codec::Inflater>,
}

impl Reader {
    pub(crate) fn new(role: Role, config: &Config, leftover: Vec<u8>) -> Reader {
        let end = leftover.len();
        Reader {
            role,
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            buffer_size: config
                .read_buffer_size
                .max(crate::header::MAX_HEADER_LEN + 125),
            buf: leftover,
            start: 0,
            end,
            frame: None,
            kind: None,
            message: Vec::new(),
            utf8: Utf8Validator::default(),
            control: Vec::new(),
            direct_chunk: DIRECT_CHUNK,
            compressed: false,
            compressed_frame: Vec::new(),
            #[cfg(feature = "deflate")]
            inflater: None,
        }
    }

    /// Accept RSV1-compressed messages from now on, inflated by `inflater`.
    #[cfg(feature = "deflate")]
    pub(crate) fn set_inflater(&mut self, inflater: crate::deflate::codec::Inflater) {
        self.inflater = Some(inflater);
    }

    fn deflate_negotiated(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.inflater.is_some();
        #[cfg(not(feature = "deflate"))]
        return false;
    }

    /// Whether received bytes are waiting in the buffer.
    pub(crate) fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Read until one message (data, or a control frame) is complete.
    ///
    /// The payload stays in the reader's buffers, which are reused from
    /// message to message: in steady state nothing is allocated.
    pub(crate) fn read<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<Incoming> {
        loop {
            let progress = match &mut self.frame {
                Some(p) => p,
                None => match Header::parse(&self.buf[self.start..self.end])? {
                    Parsed::Complete(header, used) => {
                        self.start += used;
                        self.begin_frame(header)?;
                        self.frame.insert(FrameProgress { header, done: 0 })
                    }
                    Parsed::Incomplete { .. } => {
                        self.fill(r)?;
                        continue;
                    }
                },
            };
            let header = progress.header;
            let remaining = header.len - progress.done;
            if remaining > 0 {
                let offset = progress.done as usize;
                let consumed = if self.start < self.end {
                    self.consume_buffered(header, offset, remaining)
                } else if !header.opcode.is_control() && remaining >= self.buffer_size as u64 {
                    self.read_direct(r, header, offset, remaining)?
                } else {
                    self.fill(r)?;
                    continue;
                };
                if let Some(p) = &mut self.frame {
                    p.done += consumed as u64;
                }
                if self.kind == Some(DataKind::Text)
                    && !header.opcode.is_control()
                    && !self.compressed
                {
                    self.utf8.feed(&self.message)?;
                }
                continue;
            }
            self.frame = None;
            if let Some(message) = self.end_frame(header)? {
                return Ok(message);
            }
        }
    }

    /// RFC 6455 checks that need only the header (§5.1, §5.2, §5.4, §5.5).
    fn begin_frame(&mut self, h: Header) -> Result<()> {
        // RSV1 marks a compressed message: allowed only with permessage-deflate,
        // and only on the first frame of a data message (RFC 7692 §6.1).
        let rsv1_allowed = h.rsv_bits() == 0b100
            && self.deflate_negotiated()
            && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        if h.rsv_bits() != 0 && !rsv1_allowed {
            return Err(Error::ReservedBits { bits: h.rsv_bits() });
        }
        if h.opcode.is_reserved() {
            return Err(Error::ReservedOpcode(h.opcode.bits()));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(Error::UnmaskedClientFrame),
            (Role::Client, true) => return Err(Error::MaskedServerFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(Error::FragmentedControlFrame);
            }
            if h.len > 125 {
                return Err(Error::ControlFrameTooLong(h.len));
            }
            self.control.clear();
            return Ok(());
        }
        match (h.opcode, self.kind) {
            (OpCode::Continuation, None) => return Err(Error::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => return Err(Error::ExpectedContinuation),
            (OpCode::Text | OpCode::Binary, None) => {
                if self.message.capacity() > KEEP_CAPACITY {
                    self.message = Vec::new();
                }
                self.message.clear();
            }
            _ => {}
        }
        if h.len > self.max_frame_size as u64 {
            return Err(Error::FrameTooBig {
                size: h.len,
                limit: self.max_frame_size,
            });
        }
        let total = self.message.len() as u64 + h.len;
        if total > self.max_message_size as u64 {
            return Err(Error::MessageTooBig {
                size: total,
                limit: self.max_message_size,
            });
        }
        match h.opcode {
            OpCode::Text => self.kind = Some(DataKind::Text),
            OpCode::Binary => self.kind = Some(DataKind::Binary),
            _ => {}
        }
        if matches!(h.opcode, OpCode::Text | OpCode::Binary) {
            self.compressed = h.rsv1;
        }
        Ok(())
    }

    /// Move up to `remaining` buffered payload bytes to their destination,
    /// unmasking them in place first. Returns how many were moved.
    fn consume_buffered(&mut self, h: Header, offset: usize, remaining: u64) -> usize {
        let take = (self.end - self.start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let chunk = &mut self.buf[self.start..self.start + take];
        if let Some(mask) = h.mask {
            apply_mask(chunk, mask, offset);
        }
        if h.opcode.is_control() {
            self.control.extend_from_slice(chunk);
        } else if self.compressed {
            self.compressed_frame.extend_from_slice(chunk);
        } else {
            self.message.extend_from_slice(chunk);
        }
        self.start += take;
        take
    }

    /// Read payload bytes straight into the message, bypassing the buffer.
    fn read_direct<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        h: Header,
        offset: usize,
        remaining: u64,
    ) -> Result<usize> {
        // The destination is zero-filled before the read; sizing the chunk
        // from the previous read keeps that cost proportional to the bytes
        // that actually arrive, even from a peer that trickles them.
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(self.direct_chunk);
        let dest = if self.compressed {
            &mut self.compressed_frame
        } else {
            &mut self.message
        };
        let old = dest.len();
        dest.resize(old + want, 0);
        let n = loop {
            match r.read(&mut dest[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    dest.truncate(old);
                    return Err(e.into());
                }
            }
        };
        dest.truncate(old + n);
        if n == 0 {
            return Err(Error::UnexpectedEof);
        }
        self.direct_chunk = (2 * n).clamp(self.buffer_size, DIRECT_CHUNK);
        if let Some(mask) = h.mask {
            apply_mask(&mut dest[old..], mask, offset);
        }
        Ok(n)
    }

    /// A frame's payload is complete: finish a control frame or a message.
    fn end_frame(&mut self, h: Header) -> Result<Option<Incoming>> {
        let incoming = match h.opcode {
            OpCode::Ping => Incoming::Ping,
            OpCode::Pong => Incoming::Pong,
            OpCode::Close => Incoming::Close(CloseFrame::parse(&self.control)?),
            _ => {
                if self.compressed {
                    self.inflate_frame(h.fin)?;
                }
                if !h.fin {
                    return Ok(None);
                }
                self.finish_message()?
            }
        };
        Ok(Some(incoming))
    }

    /// Inflate the compressed frame just read into the message
    /// (RFC 7692 §7.2.2), checking the size limit and UTF-8 as it grows.
    fn inflate_frame(&mut self, last: bool) -> Result<()> {
        #[cfg(feature = "deflate")]
        if let Some(inflater) = &mut self.inflater {
            inflater.inflate(
                &self.compressed_frame,
                last,
                &mut self.message,
                self.max_message_size,
            )?;
            self.compressed_frame.clear();
            if self.kind == Some(DataKind::Text) {
                self.utf8.feed(&self.message)?;
            }
            return Ok(());
        }
        let _ = last;
        Err(Error::ReservedBits { bits: 0b100 })
    }

    /// The last frame of a data message is in: check it is complete UTF-8
    /// if it is text.
    fn finish_message(&mut self) -> Result<Incoming> {
        self.compressed = false;
        let utf8 = std::mem::take(&mut self.utf8);
        match self.kind.take() {
            Some(DataKind::Text) => {
                utf8.finish(&self.message)?;
                Ok(Incoming::Text)
            }
            _ => Ok(Incoming::Binary),
        }
    }

    /// The payload of what [`Reader::read`] returned, borrowed.
    pub(crate) fn view(&self, incoming: Incoming) -> MessageRef<'_> {
        match incoming {
            Incoming::Text => MessageRef::Text(utf8_checked(&self.message)),
            Incoming::Binary => MessageRef::Binary(&self.message),
            Incoming::Ping => MessageRef::Ping(&self.control),
            Incoming::Pong => MessageRef::Pong(&self.control),
            Incoming::Close(frame) => MessageRef::Close(frame),
        }
    }

    /// The payload of the data message [`Reader::read`] returned, moved out
    /// (no copy); the reader starts a fresh buffer for the next one.
    pub(crate) fn take_data(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.message)
    }

    /// The text message [`Reader::read`] returned, moved out (no copy, no
    /// second validation).
    #[allow(unsafe_code)]
    pub(crate) fn take_text(&mut self) -> String {
        let data = self.take_data();
        debug_assert!(std::str::from_utf8(&data).is_ok());
        // SAFETY: `Incoming::Text` is only returned after
        // `Utf8Validator::finish` accepted exactly these bytes (see
        // `utf8_checked`), and nothing changed them since.
        unsafe { String::from_utf8_unchecked(data) }
    }

    /// The payload of the control frame [`Reader::read`] returned.
    pub(crate) fn control(&self) -> &[u8] {
        &self.control
    }

    /// Read more bytes from `r` into the buffer. End of stream is an error:
    /// the peer left without a close handshake.
    fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.buffer_size {
            self.buf.resize(self.buffer_size, 0);
        } else if self.end == self.buf.len() {
            self.buf.resize(self.end + self.buffer_size, 0);
        }
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(Error::UnexpectedEof),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// View a completed text message as `str` without validating it again.
#[allow(unsafe_code)]
pub(crate) fn utf8_checked(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: only called on a text message after `Utf8Validator::finish`
    // succeeded for exactly these bytes: every byte was checked by
    // `std::str::from_utf8` as it arrived (see utf8.rs), and the buffer is
    // not modified between that check and this call.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}
