//! The message core both front-ends share: the close handshake's state
//! (RFC 6455 §7) and the step that reads one message and works out which
//! replies the protocol obliges this end to send.
//!
//! [`WebSocket`](crate::WebSocket) and the split halves
//! ([`WsReader`](crate::WsReader), [`WsWriter`](crate::WsWriter)) are thin
//! front-ends over this: they differ only in where a reply goes (straight
//! into the owned writer, or through the slot the halves share).

use std::io::{self, Read};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::close::{CloseCode, CloseFrame};
use crate::config::Role;
use crate::error::{Error, Result};
use crate::reader::{Incoming, Reader};

/// Where a connection stands in the close handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CloseState {
    /// Messages flow both ways.
    Open = 0,
    /// This end sent a Close frame and waits for the peer's (§7.1.2).
    CloseSent = 1,
    /// Both Close frames are exchanged (or this end's echo is queued). A
    /// client still waits for the server to close the TCP connection
    /// (§7.1.1).
    Closed = 2,
    /// This end failed the connection for a protocol violation (§7.1.7)
    /// and sent (or queued) its Close frame.
    Failed = 3,
    /// The stream ended without a close handshake.
    Ended = 4,
    /// An I/O error other than a time-out: the stream may hold part of a
    /// frame, so nothing more is read or written.
    Broken = 5,
    /// A client after the close handshake saw the server close the TCP
    /// connection (or gave up waiting for it): nothing more to read.
    Finished = 6,
}

impl CloseState {
    fn from_u8(v: u8) -> CloseState {
        match v {
            0 => CloseState::Open,
            1 => CloseState::CloseSent,
            2 => CloseState::Closed,
            3 => CloseState::Failed,
            4 => CloseState::Ended,
            6 => CloseState::Finished,
            _ => CloseState::Broken,
        }
    }

    /// Whether this end has sent (or queued) a Close frame.
    pub(crate) fn close_sent(self) -> bool {
        matches!(
            self,
            CloseState::CloseSent | CloseState::Closed | CloseState::Failed | CloseState::Finished
        )
    }

    /// Why a message cannot be sent in this state, if it cannot.
    pub(crate) fn check_write(self) -> Result<()> {
        match self {
            CloseState::Open => Ok(()),
            CloseState::CloseSent
            | CloseState::Closed
            | CloseState::Failed
            | CloseState::Finished => Err(Error::AlreadyClosed),
            CloseState::Ended => Err(Error::ConnectionClosed),
            CloseState::Broken => Err(Error::StreamFailed),
        }
    }
}

/// A [`CloseState`] that one half can change while the other reads it.
#[derive(Debug)]
pub(crate) struct SharedState(AtomicU8);

impl SharedState {
    pub(crate) fn new(state: CloseState) -> SharedState {
        SharedState(AtomicU8::new(state as u8))
    }

    pub(crate) fn get(&self) -> CloseState {
        CloseState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Apply `transition` atomically; returns the state it saw and whether
    /// it changed it.
    fn update(&self, transition: impl Fn(CloseState) -> Option<CloseState>) -> (CloseState, bool) {
        match self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                transition(CloseState::from_u8(v)).map(|s| s as u8)
            }) {
            Ok(v) => (CloseState::from_u8(v), true),
            Err(v) => (CloseState::from_u8(v), false),
        }
    }

    /// This end sends a Close: allowed only while open.
    pub(crate) fn send_close(&self) -> Result<()> {
        let (seen, changed) =
            self.update(|s| (s == CloseState::Open).then_some(CloseState::CloseSent));
        if changed {
            Ok(())
        } else {
            seen.check_write()
        }
    }

    /// A write error broke the stream.
    pub(crate) fn set_broken(&self) {
        self.0.store(CloseState::Broken as u8, Ordering::Release);
    }

    /// A client's wait for the server's TCP close is over.
    pub(crate) fn set_finished(&self) {
        self.update(|s| (s == CloseState::Closed).then_some(CloseState::Finished));
    }

    /// The stream ended without a close handshake.
    fn set_ended(&self) {
        self.update(|s| (s != CloseState::Broken).then_some(CloseState::Ended));
    }

    /// The peer's Close arrived; returns whether this end owes the echo.
    fn receive_close(&self) -> bool {
        let (seen, changed) = self.update(|s| match s {
            CloseState::Open | CloseState::CloseSent => Some(CloseState::Closed),
            _ => None,
        });
        changed && seen == CloseState::Open
    }

    /// A protocol violation; returns whether this end still owes a Close.
    fn fail(&self) -> bool {
        let (seen, changed) = self.update(|s| match s {
            CloseState::Open | CloseState::CloseSent => Some(CloseState::Failed),
            _ => None,
        });
        changed && seen == CloseState::Open
    }
}

/// A control frame's payload (RFC 6455 §5.5: at most 125 bytes), stored
/// inline so that owing a pong allocates nothing.
#[derive(Clone, Copy)]
pub(crate) struct ControlPayload {
    len: u8,
    bytes: [u8; 125],
}

impl ControlPayload {
    /// `None` when `payload` is longer than a control frame may carry.
    pub(crate) fn new(payload: &[u8]) -> Option<ControlPayload> {
        let mut bytes = [0u8; 125];
        bytes.get_mut(..payload.len())?.copy_from_slice(payload);
        Some(ControlPayload {
            len: payload.len() as u8,
            bytes,
        })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// A frame the reading side obliges this end to send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reply {
    /// The answer to a ping (RFC 6455 §5.5.2), with its payload.
    Pong(ControlPayload),
    /// A Close frame with this payload: the echo of the peer's Close
    /// (§5.5.1) or the Close that fails the connection (§7.1.7).
    Close(ControlPayload),
}

impl Reply {
    /// The echo of a received Close: its status code, no reason.
    fn close_echo(frame: Option<&CloseFrame>) -> Reply {
        let payload = match frame {
            Some(f) => ControlPayload::new(&u16::from(f.code).to_be_bytes()),
            None => ControlPayload::new(&[]),
        };
        Reply::Close(payload.expect("a close code fits a control frame"))
    }

    /// The Close that fails the connection with `code`; the reason is the
    /// error text, cut to fit the 125-byte control frame.
    fn failure(code: CloseCode, reason: &str) -> Reply {
        let mut bytes = u16::from(code).to_be_bytes().to_vec();
        let mut end = reason.len().min(CloseFrame::MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        bytes.extend_from_slice(&reason.as_bytes()[..end]);
        Reply::Close(ControlPayload::new(&bytes).expect("cut to 125 bytes"))
    }
}

/// Read the next message from `stream` and work out what it obliges this
/// end to send: a pong for a ping, the echo of a Close, or the Close that
/// fails the connection after a protocol violation. The state moves along
/// the close handshake; after it, reads return [`Error::ConnectionClosed`]
/// (a client first waits for the server to close the TCP connection,
/// RFC 6455 §7.1.1).
pub(crate) fn read_message<R: Read + ?Sized>(
    reader: &mut Reader,
    stream: &mut R,
    state: &SharedState,
    role: Role,
) -> (Result<Incoming>, Option<Reply>) {
    match state.get() {
        CloseState::Open | CloseState::CloseSent => {}
        CloseState::Closed if role == Role::Client => {
            return (wait_for_tcp_close(stream, state), None)
        }
        CloseState::Closed | CloseState::Failed | CloseState::Ended | CloseState::Finished => {
            return (Err(Error::ConnectionClosed), None)
        }
        CloseState::Broken => return (Err(Error::StreamFailed), None),
    }
    match reader.read(stream) {
        Ok(Incoming::Ping) => {
            let reply = (state.get() == CloseState::Open)
                .then(|| ControlPayload::new(reader.control()).map(Reply::Pong))
                .flatten();
            (Ok(Incoming::Ping), reply)
        }
        Ok(Incoming::Close(frame)) => {
            let reply = state
                .receive_close()
                .then(|| Reply::close_echo(frame.as_ref()));
            (Ok(Incoming::Close(frame)), reply)
        }
        Ok(incoming) => (Ok(incoming), None),
        Err(e) => {
            let reply = match e.close_code() {
                Some(code) => state.fail().then(|| Reply::failure(code, &e.to_string())),
                None => {
                    match &e {
                        Error::UnexpectedEof => state.set_ended(),
                        Error::Io(io) if !crate::outbox::is_retryable(io) => state.set_broken(),
                        Error::Tls(_) | Error::Certificate(_) => state.set_broken(),
                        _ => {}
                    }
                    None
                }
            };
            (Err(e), reply)
        }
    }
}

/// RFC 6455 §7.1.1: after the close handshake the server closes the TCP
/// connection first; the client waits for that, discarding anything still
/// arriving. A `WouldBlock` returns (call `read` again to keep waiting); a
/// read time-out ends the wait. Once it is over, reads return at once.
fn wait_for_tcp_close<R: Read + ?Sized>(stream: &mut R, state: &SharedState) -> Result<Incoming> {
    let mut sink = [0u8; 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e.into()),
            Err(_) => break,
        }
    }
    state.set_finished();
    Err(Error::ConnectionClosed)
}
