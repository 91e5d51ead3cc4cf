//! The read side of the message layer: a buffered frame reader that checks
//! every frame against RFC 6455 and reassembles fragmented messages
//! (RFC 6455 §5.4), validating text as it arrives.
//!
//! All progress lives in the struct, so a read that fails with a time-out
//! (`WouldBlock` / `TimedOut`) can simply be retried.

use std::io::Read;

use crate::close::CloseFrame;
use crate::config::{Config, Role};
use crate::deflate::Inflater;
use crate::error::{Error, Result};
use crate::header::{Header, OpCode, Parsed};
use crate::mask::apply_mask;
use crate::message::MessageRef;
use crate::payload::Payload;
use crate::read_buf::ReadBuffer;
use crate::utf8::Utf8Validator;

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
    /// Bytes received and not yet consumed.
    input: ReadBuffer,
    /// The frame being read, once its header has been parsed.
    frame: Option<FrameProgress>,
    /// The data message being assembled, if any.
    kind: Option<DataKind>,
    message: Payload,
    utf8: Utf8Validator,
    /// Payload of the control frame being read (at most 125 bytes).
    control: Vec<u8>,
    /// The message being assembled is compressed (RSV1 on its first frame).
    compressed: bool,
    /// Compressed payload of the current frame, inflated when it is complete.
    compressed_frame: Payload,
    /// permessage-deflate decompressor, when negotiated.
    inflater: Option<Inflater>,
}

impl Reader {
    pub(crate) fn new(role: Role, config: &Config, leftover: Vec<u8>) -> Reader {
        Reader {
            role,
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            input: ReadBuffer::new(leftover, config.read_buffer_size),
            frame: None,
            kind: None,
            message: Payload::default(),
            utf8: Utf8Validator::default(),
            control: Vec::new(),
            compressed: false,
            compressed_frame: Payload::default(),
            inflater: None,
        }
    }

    /// Accept RSV1-compressed messages from now on, inflated by `inflater`.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn set_inflater(&mut self, inflater: Inflater) {
        self.inflater = Some(inflater);
    }

    fn deflate_negotiated(&self) -> bool {
        self.inflater.is_some()
    }

    /// Whether the buffer holds the rest of the frame being read, or a
    /// whole next frame: then the next [`Reader::read`] makes progress
    /// without waiting for the network. A partial frame does not count, so
    /// a caller that flushes when this is false never holds replies back
    /// while it blocks for the rest of a frame.
    pub(crate) fn has_buffered(&self) -> bool {
        let buffered = self.input.len() as u64;
        if buffered == 0 {
            return false;
        }
        match &self.frame {
            Some(p) => buffered >= p.header.len - p.done,
            None => match Header::parse(self.input.available()) {
                Ok(Parsed::Complete(header, used)) => buffered - used as u64 >= header.len,
                Ok(Parsed::Incomplete { .. }) => false,
                // The next read fails at once.
                Err(_) => true,
            },
        }
    }

    /// Read until one message (data, or a control frame) is complete.
    ///
    /// The payload stays in the reader's buffers, which are reused from
    /// message to message: in steady state nothing is allocated.
    pub(crate) fn read<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<Incoming> {
        loop {
            let progress = match &mut self.frame {
                Some(p) => p,
                None => match Header::parse(self.input.available())? {
                    Parsed::Complete(header, used) => {
                        self.input.consume(used);
                        self.begin_frame(header)?;
                        self.frame.insert(FrameProgress { header, done: 0 })
                    }
                    Parsed::Incomplete { .. } => {
                        self.input.fill(r)?;
                        continue;
                    }
                },
            };
            let header = progress.header;
            let remaining = header.len - progress.done;
            if remaining > 0 {
                let offset = progress.done as usize;
                let consumed = if !self.input.is_empty() {
                    self.consume_buffered(header, offset, remaining)
                } else if !header.opcode.is_control() && remaining >= self.input.capacity() as u64 {
                    let dest = if self.compressed {
                        &mut self.compressed_frame
                    } else {
                        &mut self.message
                    };
                    self.input
                        .read_direct(r, dest, header.mask, offset, remaining)?
                } else {
                    self.input.fill(r)?;
                    continue;
                };
                if let Some(p) = &mut self.frame {
                    p.done += consumed as u64;
                }
                if self.kind == Some(DataKind::Text)
                    && !header.opcode.is_control()
                    && !self.compressed
                {
                    self.utf8.feed(self.message.as_slice())?;
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
                    self.message.take();
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
        // A compressed frame's length says nothing about the message the
        // application receives: its limit is checked on the inflated bytes
        // as they grow (`Inflater::inflate`), and the compressed frame
        // itself is bounded by `max_frame_size` above.
        let compressed = match h.opcode {
            OpCode::Continuation => self.compressed,
            _ => h.rsv1,
        };
        let total = self.message.len() as u64 + h.len;
        if !compressed && total > self.max_message_size as u64 {
            return Err(Error::MessageTooBig {
                size: total,
                limit: self.max_message_size,
            });
        }
        self.input.note_payload(h.len);
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
        let take = self
            .input
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let chunk = &mut self.input.available_mut()[..take];
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
        self.input.consume(take);
        take
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
        if let Some(inflater) = &mut self.inflater {
            inflater.inflate(
                self.compressed_frame.as_slice(),
                last,
                self.message.vec_mut(),
                self.max_message_size,
            )?;
            self.compressed_frame.clear();
            if self.kind == Some(DataKind::Text) {
                self.utf8.feed(self.message.as_slice())?;
            }
            return Ok(());
        }
        Err(Error::ReservedBits { bits: 0b100 })
    }

    /// The last frame of a data message is in: check it is complete UTF-8
    /// if it is text.
    fn finish_message(&mut self) -> Result<Incoming> {
        self.compressed = false;
        let utf8 = std::mem::take(&mut self.utf8);
        match self.kind.take() {
            Some(DataKind::Text) => {
                utf8.finish(self.message.as_slice())?;
                Ok(Incoming::Text)
            }
            _ => Ok(Incoming::Binary),
        }
    }

    /// The payload of what [`Reader::read`] returned, borrowed.
    pub(crate) fn view(&self, incoming: Incoming) -> MessageRef<'_> {
        match incoming {
            Incoming::Text => MessageRef::Text(utf8_checked(self.message.as_slice())),
            Incoming::Binary => MessageRef::Binary(self.message.as_slice()),
            Incoming::Ping => MessageRef::Ping(&self.control),
            Incoming::Pong => MessageRef::Pong(&self.control),
            Incoming::Close(frame) => MessageRef::Close(frame),
        }
    }

    /// The payload of the data message [`Reader::read`] returned, moved out
    /// (no copy); the reader starts a fresh buffer for the next one.
    pub(crate) fn take_data(&mut self) -> Vec<u8> {
        self.message.take()
    }

    /// Take `buffer` as the storage of the next data message, so a caller
    /// that owns each message (`read`) and hands its buffer back allocates
    /// nothing in steady state. Kept only between messages, only if larger
    /// than the current storage and not over [`KEEP_CAPACITY`].
    pub(crate) fn recycle(&mut self, buffer: Vec<u8>) {
        if self.kind.is_none()
            && buffer.capacity() > self.message.capacity()
            && buffer.capacity() <= KEEP_CAPACITY
        {
            self.message.replace(buffer);
        }
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
}

/// View a completed text message as `str` without validating it again.
#[allow(unsafe_code)]
pub(crate) fn utf8_checked(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: only called on a text message after `Utf8Validator::finish`
    // succeeded for exactly these bytes: every byte was checked as it
    // arrived, by `std::str::from_utf8` or by `simdutf8::compat` (whose
    // verdicts a proptest holds equal to std's; see utf8.rs), and the
    // buffer is not modified between that check and this call.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}
