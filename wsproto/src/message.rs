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

    /// A ping carrying `data` (RFC 6455 §5.5.2): at most 125 bytes, or
    /// [`WebSocket::write`](crate::WebSocket::write) refuses it with
    /// [`Error::ControlFrameTooLong`].
    pub fn ping(data: impl Into<Vec<u8>>) -> Message {
        Message::Ping(data.into())
    }

    /// A pong carrying `data` (RFC 6455 §5.5.3; an unsolicited pong is a
    /// heartbeat): at most 125 bytes, like a ping.
    pub fn pong(data: impl Into<Vec<u8>>) -> Message {
        Message::Pong(data.into())
    }

    /// A Close message with `code` and `reason` (RFC 6455 §5.5.1), the
    /// reason kept as given.
    ///
    /// A reason over [`CloseFrame::MAX_REASON`] (123) bytes does not fit in
    /// a control frame (§5.5): [`WebSocket::write`](crate::WebSocket::write)
    /// then refuses the message with [`Error::ControlFrameTooLong`] and
    /// writes nothing. To have it cut instead, build the body with
    /// [`CloseFrame::truncated`]: `Message::Close(Some(CloseFrame::truncated(code, reason)))`.
    pub fn close(code: CloseCode, reason: impl Into<String>) -> Message {
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

    /// Whether this is a Text or Binary message (a data frame, RFC 6455 §5.6).
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// Whether this is a Text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// Whether this is a Binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }

    /// Whether this is a Ping.
    pub fn is_ping(&self) -> bool {
        matches!(self, Message::Ping(_))
    }

    /// Whether this is a Pong.
    pub fn is_pong(&self) -> bool {
        matches!(self, Message::Pong(_))
    }

    /// Whether this is a Close.
    pub fn is_close(&self) -> bool {
        matches!(self, Message::Close(_))
    }

    /// The payload as text, consuming the message: a Text message as is,
    /// the payload of a Binary, Ping or Pong message if it is UTF-8, the
    /// reason of a Close message (empty without a body).
    ///
    /// Fails with [`Error::InvalidUtf8`] when the bytes are not UTF-8
    /// (RFC 3629); moves the buffer without copying when they are.
    ///
    /// ```
    /// use wsproto::{Error, Message};
    /// assert_eq!(Message::from("hi").into_text().unwrap(), "hi");
    /// assert_eq!(Message::from(&b"hi"[..]).into_text().unwrap(), "hi");
    /// assert!(matches!(Message::binary(vec![0xff]).into_text(), Err(Error::InvalidUtf8)));
    /// ```
    pub fn into_text(self) -> Result<String> {
        match self {
            Message::Text(t) => Ok(t),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => {
                String::from_utf8(b).map_err(|_| Error::InvalidUtf8)
            }
            Message::Close(None) => Ok(String::new()),
            Message::Close(Some(f)) => Ok(f.reason),
        }
    }

    /// The payload as text, borrowed; the same rules as [`Message::into_text`].
    pub fn to_text(&self) -> Result<&str> {
        match self {
            Message::Text(t) => Ok(t),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => {
                std::str::from_utf8(b).map_err(|_| Error::InvalidUtf8)
            }
            Message::Close(None) => Ok(""),
            Message::Close(Some(f)) => Ok(&f.reason),
        }
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

    /// Whether this is a Text or Binary message (a data frame, RFC 6455 §5.6).
    pub fn is_data(&self) -> bool {
        matches!(self, MessageRef::Text(_) | MessageRef::Binary(_))
    }

    /// Whether this is a Text message.
    pub fn is_text(&self) -> bool {
        matches!(self, MessageRef::Text(_))
    }

    /// Whether this is a Binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, MessageRef::Binary(_))
    }

    /// Whether this is a Ping.
    pub fn is_ping(&self) -> bool {
        matches!(self, MessageRef::Ping(_))
    }

    /// Whether this is a Pong.
    pub fn is_pong(&self) -> bool {
        matches!(self, MessageRef::Pong(_))
    }

    /// Whether this is a Close.
    pub fn is_close(&self) -> bool {
        matches!(self, MessageRef::Close(_))
    }

    /// The payload as text; the same rules as [`Message::to_text`].
    pub fn to_text(&self) -> Result<&str> {
        match self {
            MessageRef::Text(t) => Ok(t),
            MessageRef::Binary(b) | MessageRef::Ping(b) | MessageRef::Pong(b) => {
                std::str::from_utf8(b).map_err(|_| Error::InvalidUtf8)
            }
            MessageRef::Close(None) => Ok(""),
            MessageRef::Close(Some(f)) => Ok(&f.reason),
        }
    }

    /// Refuse what must not be sent: a control payload over 125 bytes
    /// (RFC 6455 §5.5; for a Close, the 2-byte code plus the reason, §5.5.1)
    /// or a close code reserved from the wire (§7.4).
    pub(crate) fn check_sendable(&self) -> Result<()> {
        const MAX_CONTROL: usize = 125;
        match self {
            MessageRef::Close(Some(f)) if !f.code.is_sendable() => {
                Err(Error::InvalidCloseCode(u16::from(f.code)))
            }
            MessageRef::Close(Some(f)) if f.encoded_len() > MAX_CONTROL => {
                Err(Error::ControlFrameTooLong(f.encoded_len() as u64))
            }
            MessageRef::Ping(p) | MessageRef::Pong(p) if p.len() > MAX_CONTROL => {
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

impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Message {
        Message::Binary(b.to_vec())
    }
}

impl<'a> From<&'a str> for MessageRef<'a> {
    fn from(s: &'a str) -> MessageRef<'a> {
        MessageRef::Text(s)
    }
}

impl<'a> From<&'a [u8]> for MessageRef<'a> {
    fn from(b: &'a [u8]) -> MessageRef<'a> {
        MessageRef::Binary(b)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};

    use super::*;
    use crate::config::{Config, Role};
    use crate::websocket::WebSocket;

    /// Nothing to read; records every byte written.
    #[derive(Default)]
    struct Sink {
        written: Vec<u8>,
    }

    impl Read for Sink {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn ws(role: Role) -> WebSocket<Sink> {
        WebSocket::from_raw_socket(Sink::default(), role, &Config::default())
    }

    fn long_close(reason_len: usize) -> Message {
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "r".repeat(reason_len),
        }))
    }

    #[test]
    fn close_over_125_bytes_is_refused_before_anything_is_written() {
        for role in [Role::Server, Role::Client] {
            let mut ws = ws(role);
            let e = ws.send(long_close(200)).unwrap_err();
            assert!(matches!(e, Error::ControlFrameTooLong(202)), "{e:?}");
            let e = ws.send(long_close(124)).unwrap_err();
            assert!(matches!(e, Error::ControlFrameTooLong(126)), "{e:?}");
            let e = ws.close(CloseCode::Away, &"x".repeat(124)).unwrap_err();
            assert!(matches!(e, Error::ControlFrameTooLong(126)), "{e:?}");
            assert!(ws.get_ref().written.is_empty(), "{role:?}");
            assert!(
                !ws.close_sent(),
                "a refused Close does not start the handshake"
            );
            // 123 bytes of reason fit exactly: 2 + 2 + 123 on the wire
            // (plus a 4-byte mask from a client).
            ws.send(long_close(123)).unwrap();
            let mask = if role == Role::Client { 4 } else { 0 };
            assert_eq!(ws.get_ref().written.len(), 2 + mask + 125, "{role:?}");
            assert!(ws.close_sent());
        }
    }

    #[test]
    fn ping_and_pong_over_125_bytes_are_refused() {
        let mut ws = ws(Role::Client);
        for m in [Message::ping(vec![0; 126]), Message::pong(vec![0; 126])] {
            let e = ws.send(m).unwrap_err();
            assert!(matches!(e, Error::ControlFrameTooLong(126)), "{e:?}");
        }
        let e = ws.write_ref(MessageRef::Ping(&[0; 1000])).unwrap_err();
        assert!(matches!(e, Error::ControlFrameTooLong(1000)), "{e:?}");
        assert!(ws.get_ref().written.is_empty());
        ws.send(Message::ping(vec![0; 125])).unwrap();
        assert_eq!(ws.get_ref().written.len(), 2 + 4 + 125);
    }

    #[test]
    fn message_close_keeps_the_reason_as_given() {
        let reason = "é".repeat(100);
        let m = Message::close(CloseCode::Normal, &reason);
        assert_eq!(
            m,
            Message::Close(Some(CloseFrame::new(CloseCode::Normal, &reason)))
        );
        match &m {
            Message::Close(Some(f)) => assert_eq!(f.reason, reason),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.len(), 202);
        assert!(matches!(
            m.as_ref().check_sendable(),
            Err(Error::ControlFrameTooLong(202))
        ));
        let cut = Message::Close(Some(CloseFrame::truncated(CloseCode::Normal, &reason)));
        assert!(cut.as_ref().check_sendable().is_ok());
        assert_eq!(cut.len(), 124);
    }

    #[test]
    fn every_close_code_error_text_fits_in_a_close_frame() {
        // Failing a connection sends the error's text as the reason; with
        // the largest numbers each variant can carry it must still fit.
        let errors = [
            Error::ReservedBits { bits: 0b111 },
            Error::ReservedOpcode(0xf),
            Error::UnmaskedClientFrame,
            Error::MaskedServerFrame,
            Error::ControlFrameTooLong(u64::MAX),
            Error::FragmentedControlFrame,
            Error::LengthOverflow,
            Error::NonMinimalLength(u64::MAX),
            Error::UnexpectedContinuation,
            Error::ExpectedContinuation,
            Error::CloseFrameTooShort,
            Error::InvalidCloseCode(u16::MAX),
            Error::InvalidUtf8,
            Error::InvalidCompressedData,
            Error::FrameTooBig {
                size: u64::MAX,
                limit: usize::MAX,
            },
            Error::MessageTooBig {
                size: u64::MAX,
                limit: usize::MAX,
            },
        ];
        for e in errors {
            let code = e.close_code().expect("a protocol error");
            let text = e.to_string();
            assert!(
                text.len() <= CloseFrame::MAX_REASON,
                "{} bytes: {text}",
                text.len()
            );
            assert!(Message::close(code, text).as_ref().check_sendable().is_ok());
        }
    }

    #[test]
    fn conversions_and_predicates() {
        let text = Message::from("hi");
        assert_eq!(text, Message::from(String::from("hi")));
        assert_eq!(text, Message::text("hi"));
        let bin = Message::from(&b"hi"[..]);
        assert_eq!(bin, Message::from(b"hi".to_vec()));
        assert_eq!(bin, Message::binary(*b"hi"));
        let ping = Message::ping(*b"p");
        let pong = Message::pong(b"q".to_vec());
        let close = Message::close(CloseCode::Normal, "bye");
        let all = [&text, &bin, &ping, &pong, &close];
        let preds: [fn(&Message) -> bool; 5] = [
            Message::is_text,
            Message::is_binary,
            Message::is_ping,
            Message::is_pong,
            Message::is_close,
        ];
        for (i, m) in all.iter().enumerate() {
            for (j, p) in preds.iter().enumerate() {
                assert_eq!(p(m), i == j, "message {i} predicate {j}");
            }
            assert_eq!(m.is_data(), i < 2);
            let r = m.as_ref();
            let ref_preds = [
                r.is_text(),
                r.is_binary(),
                r.is_ping(),
                r.is_pong(),
                r.is_close(),
            ];
            for (j, &p) in ref_preds.iter().enumerate() {
                assert_eq!(p, i == j, "message ref {i} predicate {j}");
            }
            assert_eq!(r.is_data(), i < 2);
            assert_eq!(m.to_text().unwrap(), r.to_text().unwrap());
        }
        assert_eq!(MessageRef::from("hi"), text.as_ref());
        assert_eq!(MessageRef::from(&b"hi"[..]), bin.as_ref());
    }

    #[test]
    fn text_views() {
        assert_eq!(Message::text("hé").into_text().unwrap(), "hé");
        assert_eq!(Message::binary("hé").into_text().unwrap(), "hé");
        assert_eq!(Message::binary("hé").to_text().unwrap(), "hé");
        assert_eq!(Message::ping("p").into_text().unwrap(), "p");
        assert_eq!(
            Message::close(CloseCode::Away, "bye").to_text().unwrap(),
            "bye"
        );
        assert_eq!(Message::Close(None).into_text().unwrap(), "");
        for bad in [vec![0xff], vec![0xc3], b"ok\xed\xa0\x80".to_vec()] {
            assert!(matches!(
                Message::binary(bad.clone()).into_text(),
                Err(Error::InvalidUtf8)
            ));
            assert!(matches!(
                Message::binary(bad.clone()).to_text(),
                Err(Error::InvalidUtf8)
            ));
            assert!(matches!(
                MessageRef::Binary(&bad).to_text(),
                Err(Error::InvalidUtf8)
            ));
        }
    }
}
