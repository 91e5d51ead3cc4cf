//! A data message framed once and sent on many connections: a broadcast.
//!
//! A server frame is never masked (RFC 6455 §5.1), so the same bytes are a
//! valid frame on every server connection that does not compress the
//! message: [`PreparedMessage`] encodes header and payload once into one
//! shared buffer, and [`WebSocket::send_prepared`] writes that buffer
//! straight to each socket, without copying it per recipient.
//!
//! A connection that cannot use the shared bytes frames the payload
//! itself, as for any other message: a client (its frames must be masked
//! with a fresh key, §5.3) or a connection that compresses the message
//! with permessage-deflate (its compressor's context is its own, RFC 7692
//! §7.2.1).
//!
//! [`WebSocket::send_prepared`]: crate::WebSocket::send_prepared

use std::sync::Arc;

use crate::header::{Header, OpCode, MAX_HEADER_LEN};

/// A text or binary message framed once, cheap to clone and share between
/// threads: a broadcast.
///
/// A server frame is never masked (RFC 6455 §5.1), so the same bytes are
/// a valid frame on every server connection that does not compress the
/// message; [`WebSocket::send_prepared`](crate::WebSocket::send_prepared)
/// writes them straight to each socket. A client connection (its frames
/// are masked with a fresh key, §5.3) or one that compresses the message
/// (RFC 7692 §7.2.1: its compressor's context is its own) frames the
/// payload itself, as for any other message.
///
/// ```
/// use wsproto::PreparedMessage;
/// let line = PreparedMessage::text("hello -- FROM ann");
/// assert_eq!(line.frame(), b"\x81\x11hello -- FROM ann");
/// assert_eq!(line.payload(), b"hello -- FROM ann");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMessage {
    /// Header then payload: one unmasked, final frame.
    frame: Arc<[u8]>,
    header_len: usize,
    opcode: OpCode,
}

impl PreparedMessage {
    /// A text message (valid UTF-8 by construction).
    pub fn text(text: &str) -> PreparedMessage {
        PreparedMessage::new(OpCode::Text, text.as_bytes())
    }

    /// A binary message.
    pub fn binary(data: &[u8]) -> PreparedMessage {
        PreparedMessage::new(OpCode::Binary, data)
    }

    fn new(opcode: OpCode, payload: &[u8]) -> PreparedMessage {
        let mut head = [0u8; MAX_HEADER_LEN];
        let header_len = Header::new(opcode, payload.len() as u64).encode(&mut head);
        let mut frame = Vec::with_capacity(header_len + payload.len());
        frame.extend_from_slice(&head[..header_len]);
        frame.extend_from_slice(payload);
        PreparedMessage {
            frame: frame.into(),
            header_len,
            opcode,
        }
    }

    /// The whole frame as a server sends it: header and payload.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The message's payload.
    pub fn payload(&self) -> &[u8] {
        &self.frame[self.header_len..]
    }

    /// Whether it is a text message.
    pub fn is_text(&self) -> bool {
        self.opcode == OpCode::Text
    }

    pub(crate) fn opcode(&self) -> OpCode {
        self.opcode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_every_length_class() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let data = vec![7u8; len];
            let p = PreparedMessage::binary(&data);
            let mut expected = Vec::new();
            crate::write_frame(
                &mut expected,
                &crate::Frame::new(OpCode::Binary, data.clone()),
            )
            .unwrap();
            assert_eq!(p.frame(), &expected[..], "length {len}");
            assert_eq!(p.payload(), &data[..]);
            assert!(!p.is_text());
        }
    }
}
