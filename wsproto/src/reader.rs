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
use crate::message::Message;
use crate::utf8::Utf8Validator;

/// Data payloads at least this large (and not yet buffered) are read
/// straight into the message, in chunks of at most `DIRECT_CHUNK` bytes.
const DIRECT_CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    Text,
    Binary,
}

#[derive(Debug)]
struct FrameProgress {
    header: Header,
    /// Payload bytes consumed so far.
    done: u64,
}

/// Reads frames from a stream and turns them into [`Message`]s.
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
        }
    }

    /// Whether received bytes are waiting in the buffer.
    pub(crate) fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Read until one message (data, or a control frame) is complete.
    pub(crate) fn read<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<Message> {
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
                if self.kind == Some(DataKind::Text) && !header.opcode.is_control() {
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
        if h.rsv_bits() != 0 {
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
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(DIRECT_CHUNK);
        let old = self.message.len();
        self.message.resize(old + want, 0);
        let n = loop {
            match r.read(&mut self.message[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.message.truncate(old);
                    return Err(e.into());
                }
            }
        };
        self.message.truncate(old + n);
        if n == 0 {
            return Err(Error::UnexpectedEof);
        }
        if let Some(mask) = h.mask {
            apply_mask(&mut self.message[old..], mask, offset);
        }
        Ok(n)
    }

    /// A frame's payload is complete: finish a control frame or a message.
    fn end_frame(&mut self, h: Header) -> Result<Option<Message>> {
        let message = match h.opcode {
            OpCode::Ping => Message::Ping(self.control.clone()),
            OpCode::Pong => Message::Pong(self.control.clone()),
            OpCode::Close => Message::Close(CloseFrame::parse(&self.control)?),
            _ if !h.fin => return Ok(None),
            _ => {
                let data = std::mem::take(&mut self.message);
                let kind = self.kind.take();
                let utf8 = std::mem::take(&mut self.utf8);
                match kind {
                    Some(DataKind::Text) => {
                        utf8.finish(&data)?;
                        match String::from_utf8(data) {
                            Ok(s) => Message::Text(s),
                            Err(_) => return Err(Error::InvalidUtf8),
                        }
                    }
                    _ => Message::Binary(data),
                }
            }
        };
        Ok(Some(message))
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
