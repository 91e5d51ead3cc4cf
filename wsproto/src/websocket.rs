//! [`WebSocket`]: the message-level connection over any blocking
//! `Read + Write` stream. It answers pings, runs the close handshake
//! (RFC 6455 §7) and fails the connection with the right close code when
//! the peer breaks the protocol.

use std::io::{self, Read, Write};

use crate::close::{CloseCode, CloseFrame};
use crate::config::{Config, Role};
use crate::error::{Error, Result};
use crate::header::OpCode;
use crate::message::{Message, MessageRef};
use crate::reader::{Incoming, Reader};
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
    /// permessage-deflate parameters, when negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<crate::deflate::DeflateParams>,
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
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }

    /// Turn on permessage-deflate with the parameters the handshake agreed
    /// on (RFC 7692 §7): compress outgoing data messages per `config`,
    /// inflate incoming RSV1 messages.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(
        &mut self,
        params: crate::deflate::DeflateParams,
        config: &crate::deflate::DeflateConfig,
    ) {
        let (deflater, inflater) = crate::deflate::codecs(&params, self.role, config);
        self.writer.set_deflater(deflater, config.min_compress_size);
        self.reader.set_inflater(inflater);
        self.deflate = Some(params);
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    #[cfg(feature = "deflate")]
    pub fn deflate_params(&self) -> Option<crate::deflate::DeflateParams> {
        self.deflate
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
        Ok(match self.next()? {
            Incoming::Text => Message::Text(self.reader.take_text()),
            Incoming::Binary => Message::Binary(self.reader.take_data()),
            Incoming::Ping => Message::Ping(self.reader.control().to_vec()),
            Incoming::Pong => Message::Pong(self.reader.control().to_vec()),
            Incoming::Close(frame) => Message::Close(frame),
        })
    }

    /// Like [`WebSocket::read`], but the message borrows the connection's
    /// buffers, which are reused: in steady state reading allocates nothing.
    /// The borrow ends before the next call, so copy out what you keep.
    pub fn read_ref(&mut self) -> Result<MessageRef<'_>> {
        let incoming = self.next()?;
        Ok(self.reader.view(incoming))
    }

    /// Hand back the buffer of a message [`WebSocket::read`] returned (see
    /// [`Message::into_data`]), once done with it: the next message is read
    /// into it instead of a new allocation. An echo or relay loop of
    /// `read` + `write_ref` + `recycle` so moves each message without copying
    /// it and without allocating. A buffer that is smaller than what the
    /// connection holds, or over 1 MiB, is simply dropped.
    ///
    /// ```no_run
    /// # fn main() -> wsproto::Result<()> {
    /// # let (mut ws, _) = wsproto::connect("ws://127.0.0.1:9002/")?;
    /// if let wsproto::Message::Binary(data) = ws.read()? {
    ///     ws.write_ref(wsproto::MessageRef::Binary(&data))?;
    ///     ws.recycle(data);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.reader.recycle(buffer);
    }

    /// Read the next message and apply the protocol's automatic replies.
    fn next(&mut self) -> Result<Incoming> {
        if self.close_received || self.ended {
            return self.read_after_close();
        }
        match self.reader.read(&mut self.stream) {
            Ok(Incoming::Ping) => {
                if !self.close_sent {
                    let payload = self.reader.control();
                    self.writer.write(&mut self.stream, OpCode::Pong, payload)?;
                    self.writer.flush(&mut self.stream)?;
                }
                Ok(Incoming::Ping)
            }
            Ok(Incoming::Close(frame)) => {
                self.close_received = true;
                if !self.close_sent {
                    let reply = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
                    self.send_ref(MessageRef::Close(reply))?;
                }
                Ok(Incoming::Close(frame))
            }
            Ok(incoming) => Ok(incoming),
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

    fn read_after_close(&mut self) -> Result<Incoming> {
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
        self.write_ref(message.as_ref())
    }

    /// [`WebSocket::write`] for a borrowed message: nothing is allocated
    /// (a client masks a copy in its reused write buffer).
    pub fn write_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        if self.close_sent {
            return Err(Error::AlreadyClosed);
        }
        message.check_sendable()?;
        if let MessageRef::Close(_) = message {
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
        self.send_ref(message.as_ref())
    }

    /// [`write_ref`](WebSocket::write_ref) then [`flush`](WebSocket::flush).
    pub fn send_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        self.write_ref(message)?;
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

    /// Whether a whole frame (or the rest of the one being read) is
    /// buffered, so the next [`WebSocket::read`] makes progress without
    /// waiting for the network. A server answers everything it has and
    /// flushes once when this turns false; a partial frame counts as
    /// nothing buffered, so replies are never held back while the next
    /// read waits for the rest of it.
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
