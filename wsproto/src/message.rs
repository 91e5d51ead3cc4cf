//! Messages: what the application sends and receives (RFC 6455 §5.6, §5.5).

use std::borrow::Cow;

use crate::close::{CloseCode, CloseFrame};
use crate::error::{Error, Result};
use crate::header::OpCode;

/// A complete WebSocket message, or a control frame surfaced to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message (validated).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping; [`WebSocket::read`](crate::WebSocket::read) has already answered it.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A Close frame; `None` when it carried no status code.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<String>) -> Message {
        Message::Text(s.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Vec<u8>>) -> Message {
        Message::Binary(data.into())
    }

    /// A Close message with `code` and `reason` (cut to 123 bytes if longer).
    pub fn close(code: CloseCode, reason: &str) -> Message {
        Message::Close(Some(CloseFrame::new(code, reason)))
    }

    /// The opcode this message is sent with.
    pub fn opcode(&self) -> OpCode {
        match self {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
            Message::Ping(_) => OpCode::Ping,
            Message::Pong(_) => OpCode::Pong,
            Message::Close(_) => OpCode::Close,
        }
    }

    /// Whether this is a Text or Binary message.
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(s) => s.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Close(None) => 0,
            Message::Close(Some(f)) => 2 + f.reason.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload bytes, moved out without copying (a Close message gives
    /// its encoded code and reason). Pass them to
    /// [`WebSocket::recycle`](crate::WebSocket::recycle) to reuse the buffer.
    pub fn into_data(self) -> Vec<u8> {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
            Message::Close(None) => Vec::new(),
            Message::Close(Some(f)) => close_payload(&f),
        }
    }

    /// Borrow as a [`MessageRef`].
    pub fn as_ref(&self) -> MessageRef<'_> {
        match self {
            Message::Text(t) => MessageRef::Text(t),
            Message::Binary(b) => MessageRef::Binary(b),
            Message::Ping(b) => MessageRef::Ping(b),
            Message::Pong(b) => MessageRef::Pong(b),
            Message::Close(f) => MessageRef::Close(f.clone()),
        }
    }
}

/// A message borrowed from the connection's buffers: what
/// [`WebSocket::read_ref`](crate::WebSocket::read_ref) returns and
/// [`WebSocket::write_ref`](crate::WebSocket::write_ref) takes. Reading this
/// way allocates nothing in steady state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// A UTF-8 text message (validated).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A Close frame; `None` when it carried no status code.
    Close(Option<CloseFrame>),
}

impl MessageRef<'_> {
    /// Copy into an owned [`Message`].
    pub fn to_owned(&self) -> Message {
        match self {
            MessageRef::Text(t) => Message::Text((*t).to_owned()),
            MessageRef::Binary(b) => Message::Binary(b.to_vec()),
            MessageRef::Ping(b) => Message::Ping(b.to_vec()),
            MessageRef::Pong(b) => Message::Pong(b.to_vec()),
            MessageRef::Close(f) => Message::Close(f.clone()),
        }
    }

    /// The opcode this message is sent with.
    pub fn opcode(&self) -> OpCode {
        match self {
            MessageRef::Text(_) => OpCode::Text,
            MessageRef::Binary(_) => OpCode::Binary,
            MessageRef::Ping(_) => OpCode::Ping,
            MessageRef::Pong(_) => OpCode::Pong,
            MessageRef::Close(_) => OpCode::Close,
        }
    }

    /// Refuse what must not be sent: a control payload over 125 bytes
    /// (RFC 6455 §5.5) or a close code reserved from the wire (§7.4).
    pub(crate) fn check_sendable(&self) -> Result<()> {
        match self {
            MessageRef::Close(Some(f)) if !f.code.is_sendable() => {
                Err(Error::InvalidCloseCode(u16::from(f.code)))
            }
            MessageRef::Ping(p) | MessageRef::Pong(p) if p.len() > 125 => {
                Err(Error::ControlFrameTooLong(p.len() as u64))
            }
            _ => Ok(()),
        }
    }

    /// The payload as bytes for the wire (a Close message is encoded).
    pub(crate) fn payload(&self) -> Cow<'_, [u8]> {
        match self {
            MessageRef::Text(s) => Cow::Borrowed(s.as_bytes()),
            MessageRef::Binary(b) | MessageRef::Ping(b) | MessageRef::Pong(b) => Cow::Borrowed(b),
            MessageRef::Close(None) => Cow::Borrowed(&[]),
            MessageRef::Close(Some(f)) => Cow::Owned(close_payload(f)),
        }
    }
}

/// A Close frame's payload: code then reason (RFC 6455 §5.5.1).
fn close_payload(frame: &CloseFrame) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + frame.reason.len());
    frame.encode_into(&mut out);
    out
}

impl From<String> for Message {
    fn from(s: String) -> Message {
        Message::Text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Message {
        Message::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Message {
        Message::Binary(b)
    }
}
