//! [`WebSocket`]: the message-level connection over any blocking
//! `Read + Write` stream. It answers pings, runs the close handshake
//! (RFC 6455 §7) and fails the connection with the right close code when
//! the peer breaks the protocol.

use std::io::{Read, Write};
use std::time::Duration;

use crate::close::CloseCode;
use crate::config::{Config, Role};
use crate::core::{self, CloseState, SharedState};
use crate::error::{Error, Result};
use crate::message::{Message, MessageRef};
use crate::outbox::is_retryable;
use crate::prepared::PreparedMessage;
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
    state: SharedState,
    /// A client's bound on waiting for the server's TCP close.
    close_wait: Option<CloseWait<S>>,
    /// permessage-deflate parameters, when negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<crate::deflate::DeflateParams>,
}

/// How long a client waits for the server to close the TCP connection
/// after the close handshake, and how to set that as a read time-out.
struct CloseWait<S> {
    timeout: Duration,
    set_read_timeout: fn(&S, Option<Duration>) -> std::io::Result<()>,
    /// The time-out is in force on the stream.
    armed: bool,
}

impl<S> std::fmt::Debug for CloseWait<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloseWait")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A connection taken apart for [`WebSocket::split`].
pub(crate) struct Parts<S> {
    pub(crate) stream: S,
    pub(crate) role: Role,
    pub(crate) reader: Reader,
    pub(crate) writer: Writer,
    pub(crate) state: SharedState,
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
            writer: Writer::new(role, config),
            state: SharedState::new(CloseState::Open),
            close_wait: None,
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
    ///
    /// On a non-blocking stream (or one with a read time-out) a
    /// `WouldBlock`/`TimedOut` error loses nothing: call `read` again. The
    /// replies are queued and flushed; if that flush would block, they stay
    /// queued ([`WebSocket::has_pending_output`]) for the next
    /// [`WebSocket::flush`].
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

    /// Read the next message and send the replies it calls for.
    fn next(&mut self) -> Result<Incoming> {
        if self.writer.is_broken() {
            self.state.set_broken();
        }
        if self.role == Role::Client && self.state.get() == CloseState::Closed {
            return self.wait_for_tcp_close();
        }
        let (result, reply) =
            core::read_message(&mut self.reader, &mut self.stream, &self.state, self.role);
        if let Some(reply) = reply {
            self.writer.queue_reply(reply);
            let failing = result.is_err();
            match self.writer.flush(&mut self.stream) {
                // Still queued: the caller flushes when the stream is writable.
                Err(Error::Io(e)) if is_retryable(&e) => {}
                // The Close that fails a connection is best effort.
                Err(e) if !failing => {
                    self.state.set_broken();
                    return Err(e);
                }
                _ => {}
            }
        }
        result
    }

    /// Queue a message as one frame.
    ///
    /// `Ok` means the whole message is queued (already masked, compressed)
    /// and will reach the wire in order; small frames are coalesced until
    /// [`WebSocket::flush`] or until 64 KiB are queued. While more than
    /// [`Config::max_write_buffer_size`] bytes are unsent and the stream
    /// takes no more, the message is refused with [`Error::WriteBufferFull`]
    /// and nothing of it is queued: flush when the stream is writable, then
    /// retry. A `WouldBlock`/`TimedOut` while writing out is not reported
    /// here (the bytes stay queued; the next flush reports it).
    ///
    /// Sending a [`Message::Close`] starts the close handshake; keep calling
    /// [`WebSocket::read`] until it returns [`Error::ConnectionClosed`].
    pub fn write(&mut self, message: Message) -> Result<()> {
        self.write_ref(message.as_ref())
    }

    /// [`WebSocket::write`] for a borrowed message: nothing is allocated
    /// (a client masks a copy in its reused write buffer).
    pub fn write_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        self.state.get().check_write()?;
        message.check_sendable()?;
        let result = if let MessageRef::Close(_) = message {
            self.state.send_close()?;
            self.writer.queue_close(&message.payload());
            Ok(())
        } else {
            self.writer
                .write(&mut self.stream, message.opcode(), &message.payload())
        };
        self.note_broken();
        result
    }

    /// Write out everything queued and flush the stream.
    ///
    /// `Ok` means every queued byte is on the wire. On a `WouldBlock` or
    /// `TimedOut` error nothing is lost: call `flush` again (or `write`,
    /// `send`) and the stream continues exactly where it stopped.
    /// `Interrupted` is retried here. Any other I/O error fails the
    /// connection: every later call returns [`Error::StreamFailed`].
    pub fn flush(&mut self) -> Result<()> {
        if self.state.get() == CloseState::Broken {
            return Err(Error::StreamFailed);
        }
        let result = self.writer.flush(&mut self.stream);
        self.note_broken();
        result
    }

    /// [`write`](WebSocket::write) then [`flush`](WebSocket::flush).
    /// [`Error::WriteBufferFull`] means the message was not queued; any
    /// other error comes from the flush, after the message was queued.
    pub fn send(&mut self, message: Message) -> Result<()> {
        self.send_ref(message.as_ref())
    }

    /// [`write_ref`](WebSocket::write_ref) then [`flush`](WebSocket::flush).
    pub fn send_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        self.write_ref(message)?;
        self.flush()
    }

    /// Queue a [`PreparedMessage`] without flushing, like
    /// [`write`](WebSocket::write). A server connection that does not
    /// compress it uses the shared frame's bytes as they are.
    pub fn write_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.state.get().check_write()?;
        let result = self.writer.write_prepared(&mut self.stream, message, false);
        self.note_broken();
        result
    }

    /// Send a [`PreparedMessage`] and flush: the broadcast path. When
    /// nothing else is queued, a server connection that does not compress
    /// it writes the shared frame straight to the stream, with no copy;
    /// only what the stream does not take is queued (errors as for
    /// [`send`](WebSocket::send)).
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.state.get().check_write()?;
        let result = self.writer.write_prepared(&mut self.stream, message, true);
        self.note_broken();
        result
    }

    /// Start the close handshake with `code` and `reason` (RFC 6455 §7.1.2).
    /// Does nothing if a Close frame was already sent.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        if self.state.get().close_sent() {
            return Ok(());
        }
        self.send(Message::close(code, reason))
    }

    /// A client after the close handshake: wait for the server's TCP
    /// close (RFC 6455 §7.1.1), at most the close time-out if one is set.
    fn wait_for_tcp_close(&mut self) -> Result<Incoming> {
        let Some(wait) = &mut self.close_wait else {
            return core::read_message(&mut self.reader, &mut self.stream, &self.state, self.role)
                .0;
        };
        if !wait.armed {
            wait.armed = (wait.set_read_timeout)(&self.stream, Some(wait.timeout)).is_ok();
        }
        match core::read_message(&mut self.reader, &mut self.stream, &self.state, self.role).0 {
            // The time-out ran out: give up waiting; the connection is over.
            Err(Error::Io(e)) if wait.armed && is_retryable(&e) => {
                self.state.set_finished();
                Err(Error::ConnectionClosed)
            }
            other => other,
        }
    }

    fn note_broken(&mut self) {
        if self.writer.is_broken() {
            self.state.set_broken();
        }
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

    /// Whether bytes are queued and not yet written: [`WebSocket::flush`]
    /// has work to do. On a non-blocking stream, wait for it to be writable
    /// while this is true.
    pub fn has_pending_output(&self) -> bool {
        self.writer.pending() > 0
    }

    /// How many bytes are queued and not yet written (like the browser
    /// API's `bufferedAmount`): the back-pressure a caller watches.
    pub fn buffered_amount(&self) -> usize {
        self.writer.pending()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this side has sent a Close frame.
    pub fn close_sent(&self) -> bool {
        self.state.get().close_sent()
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

    pub(crate) fn into_parts(self) -> Parts<S> {
        // A split reader waits for the TCP close with the stream's own
        // read time-out.
        Parts {
            stream: self.stream,
            role: self.role,
            reader: self.reader,
            writer: self.writer,
            state: self.state,
        }
    }
}

impl<S: Read + Write + crate::SetTimeouts> WebSocket<S> {
    /// Bound how long a client's [`WebSocket::read`] waits, after the close
    /// handshake, for the server to close the TCP connection (RFC 6455
    /// §7.1.1 has the server close first). When the time runs out, `read`
    /// returns [`Error::ConnectionClosed`] as if the server had closed.
    /// `None` waits for as long as the stream's own read time-out allows.
    /// [`connect`](crate::connect) and [`connect_with`](crate::connect_with)
    /// set 2 seconds.
    pub fn set_close_timeout(&mut self, timeout: Option<Duration>) {
        self.close_wait = timeout.map(|timeout| CloseWait {
            timeout: timeout.max(Duration::from_millis(1)),
            set_read_timeout: |s: &S, t| s.set_read_timeout(t),
            armed: false,
        });
    }
}
