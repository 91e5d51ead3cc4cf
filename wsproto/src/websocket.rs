//! [`WebSocket`]: the message-level connection over any blocking
//! `Read + Write` stream. It answers pings, runs the close handshake
//! (RFC 6455 §7) and fails the connection with the right close code when
//! the peer breaks the protocol.

use std::io::{self, Read, Write};

use crate::close::{CloseCode, CloseFrame};
use crate::config::{Config, Role};
use crate::error::{Error, Result};
use crate::header::OpCode;
use crate::message::Message;
use crate::reader::Reader;
use crate::writer::Writer;

/// A WebSocket connection after the opening handshake.
///
/// ```no_run
/// # fn main() -> wsproto::Result<()> {
/// let (mut ws, _response) = wsproto::connect("ws://127.0.0.1:8000/?user=ann")?;
/// ws.send(wsproto::Message::text("hello"))?;
/// loop {
///     match ws.read() {
///         Ok(wsproto::Message::Text(t)) => println!("{t}"),
///         Ok(wsproto::Message::Close(_)) => {}    // close reply already sent
///         Ok(_) => {}                             // pings are answered for you
///         Err(wsproto::Error::ConnectionClosed) => break,
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    role: Role,
    reader: Reader,
    writer: Writer,
    close_sent: bool,
    close_received: bool,
    /// The connection is over: failed, or the stream ended.
    ended: bool,
}

impl<S: Read + Write> WebSocket<S> {
    /// Wrap a stream whose opening handshake is already done.
    pub fn from_raw_socket(stream: S, role: Role, config: &Config) -> WebSocket<S> {
        WebSocket::from_partially_read(stream, role, config, Vec::new())
    }

    /// Like [`WebSocket::from_raw_socket`], with bytes already read from the
    /// stream after the handshake (e.g. a frame the client pipelined behind
    /// its request), which are read first.
    pub fn from_partially_read(
        stream: S,
        role: Role,
        config: &Config,
        leftover: Vec<u8>,
    ) -> WebSocket<S> {
        WebSocket {
            stream,
            role,
            reader: Reader::new(role, config, leftover),
            writer: Writer::new(role),
            close_sent: false,
            close_received: false,
            ended: false,
        }
    }

    /// Read the next message.
    ///
    /// Pings are answered with a pong before being returned. A Close frame is
    /// answered by echoing its code (RFC 6455 §5.5.1) and returned; after
    /// that, `read` returns [`Error::ConnectionClosed`] (a client first waits
    /// for the server to close the TCP connection, §7.1.1). When the peer
    /// breaks the protocol, a Close frame with [`Error::close_code`] is sent
    /// and the error returned; the connection is then over.
    pub fn read(&mut self) -> Result<Message> {
        if self.close_received || self.ended {
            return self.read_after_close();
        }
        match self.reader.read(&mut self.stream) {
            Ok(Message::Ping(payload)) => {
                if !self.close_sent {
                    self.writer
                        .write(&mut self.stream, OpCode::Pong, &payload)?;
                    self.writer.flush(&mut self.stream)?;
                }
                Ok(Message::Ping(payload))
            }
            Ok(Message::Close(frame)) => {
                self.close_received = true;
                if !self.close_sent {
                    let reply = match &frame {
                        Some(f) => Message::Close(Some(CloseFrame::new(f.code, ""))),
                        None => Message::Close(None),
                    };
                    self.send(reply)?;
                }
                Ok(Message::Close(frame))
            }
            Ok(message) => Ok(message),
            Err(e) => {
                if let Some(code) = e.close_code() {
                    self.fail(code, &e.to_string());
                } else if matches!(e, Error::UnexpectedEof) {
                    self.ended = true;
                }
                Err(e)
            }
        }
    }

    /// Fail the connection (RFC 6455 §7.1.7): send a Close frame with `code`,
    /// best effort, and stop reading.
    fn fail(&mut self, code: CloseCode, reason: &str) {
        if !self.close_sent {
            let _ = self.send(Message::close(code, reason));
        }
        self.ended = true;
    }

    fn read_after_close(&mut self) -> Result<Message> {
        if self.role == Role::Client && !self.ended {
            // RFC 6455 §7.1.1: the server closes the TCP connection first;
            // the client waits for that, discarding anything still arriving.
            self.ended = true;
            let mut sink = [0u8; 1024];
            loop {
                match self.stream.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        self.ended = true;
        Err(Error::ConnectionClosed)
    }

    /// Queue a message without flushing. Small frames are coalesced in a
    /// buffer; call [`WebSocket::flush`] (or use [`WebSocket::send`]).
    ///
    /// Sending a [`Message::Close`] starts the close handshake; keep calling
    /// [`WebSocket::read`] until it returns [`Error::ConnectionClosed`].
    pub fn write(&mut self, message: Message) -> Result<()> {
        if self.close_sent {
            return Err(Error::AlreadyClosed);
        }
        message.check_sendable()?;
        if let Message::Close(_) = message {
            self.close_sent = true;
        }
        self.writer
            .write(&mut self.stream, message.opcode(), &message.payload())?;
        Ok(())
    }

    /// Write out queued frames and flush the stream.
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush(&mut self.stream)?;
        Ok(())
    }

    /// [`write`](WebSocket::write) then [`flush`](WebSocket::flush).
    pub fn send(&mut self, message: Message) -> Result<()> {
        self.write(message)?;
        self.flush()
    }

    /// Start the close handshake with `code` and `reason` (RFC 6455 §7.1.2).
    /// Does nothing if a Close frame was already sent.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        if self.close_sent {
            return Ok(());
        }
        self.send(Message::close(code, reason))
    }

    /// Whether received bytes are buffered and not yet returned by
    /// [`WebSocket::read`]: a server can answer everything it has and flush
    /// once when this turns false.
    pub fn has_buffered_input(&self) -> bool {
        self.reader.has_buffered()
    }

    /// Whether frames are queued by [`WebSocket::write`] and not yet flushed.
    pub fn has_pending_output(&self) -> bool {
        self.writer.has_buffered()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this side has sent a Close frame.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably (e.g. to set time-outs). Reading or
    /// writing through it directly corrupts the WebSocket stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    pub(crate) fn into_parts(self) -> (S, Reader, Writer, bool, bool) {
        (
            self.stream,
            self.reader,
            self.writer,
            self.close_sent,
            self.close_received,
        )
    }
}
