//! Reading and writing from two threads: [`WebSocket::split`] and its halves.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::close::CloseCode;
use crate::config::Role;
use crate::core::{self, ControlPayload, Reply, SharedState};
use crate::error::{Error, Result};
use crate::message::{Message, MessageRef};
use crate::outbox::is_retryable;
use crate::prepared::PreparedMessage;
use crate::reader::{Incoming, Reader};
use crate::websocket::WebSocket;
use crate::writer::Writer;

/// A stream that can be taken apart into a half to read from and a half
/// to write to, each usable from its own thread.
pub trait SplitStream: Read + Write + Sized {
    /// The half [`WsReader`] reads from.
    type ReadHalf: Read + Send;
    /// The half [`WsWriter`] writes to.
    type WriteHalf: Write + Send;
    /// Take the stream apart.
    fn split_stream(self) -> io::Result<(Self::ReadHalf, Self::WriteHalf)>;
}

/// Both halves share the one socket: no second file descriptor (a
/// `try_clone` would double the descriptors a server holds per client, and
/// the process's descriptor limit is often what bounds how many clients it
/// can hold). The socket closes when both halves are gone.
impl SplitStream for TcpStream {
    type ReadHalf = TcpHalf;
    type WriteHalf = TcpHalf;
    fn split_stream(self) -> io::Result<(TcpHalf, TcpHalf)> {
        let socket = Arc::new(self);
        Ok((TcpHalf(Arc::clone(&socket)), TcpHalf(socket)))
    }
}

/// One half of a split [`TcpStream`]: reads or writes the socket the
/// other half shares (system calls on a socket need no lock: a read and a
/// write may run at the same time from two threads).
#[derive(Debug, Clone)]
pub struct TcpHalf(Arc<TcpStream>);

impl TcpHalf {
    /// The socket both halves share (for its addresses, time-outs,
    /// `shutdown`, `set_nonblocking`; reading or writing it directly
    /// bypasses the WebSocket layer).
    pub fn get_ref(&self) -> &TcpStream {
        &self.0
    }
}

impl Read for TcpHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self.0).read_vectored(bufs)
    }
}

impl Write for TcpHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

crate::stream::socket_timeouts!(TcpHalf);

/// Replies the reader owes, waiting for the writing side.
#[derive(Debug, Default)]
struct Owed {
    pong: Option<ControlPayload>,
    close: Option<ControlPayload>,
}

/// The writing side: the write half and its frame queue.
#[derive(Debug)]
struct WriteSide<W> {
    stream: W,
    writer: Writer,
}

/// What the two halves share.
#[derive(Debug)]
struct Shared<W> {
    state: SharedState,
    /// Set while `owed` holds a reply.
    owed_flag: AtomicBool,
    owed: Mutex<Owed>,
    write: Mutex<WriteSide<W>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<W: Write> Shared<W> {
    /// Record a reply the reader owes.
    fn owe(&self, reply: Reply) {
        let mut owed = lock(&self.owed);
        match reply {
            Reply::Pong(p) => owed.pong = Some(p),
            Reply::Close(p) => owed.close = Some(p),
        }
        drop(owed);
        self.owed_flag.store(true, Ordering::SeqCst);
    }

    /// Move owed replies into the writer's queue (the caller holds the
    /// write lock).
    fn collect_owed(&self, side: &mut WriteSide<W>) {
        if self.owed_flag.swap(false, Ordering::SeqCst) {
            let owed = std::mem::take(&mut *lock(&self.owed));
            if let Some(pong) = owed.pong {
                side.writer.queue_reply(Reply::Pong(pong));
            }
            if let Some(close) = owed.close {
                side.writer.queue_reply(Reply::Close(close));
            }
        }
    }

    /// Send owed replies unless a write is in progress, in which case that
    /// write sends them when it ends. Both the reader (after `owe`) and the
    /// writer (after unlocking) call this; the fences make sure one of them
    /// sees the other: either the reader's `try_lock` finds the lock free,
    /// or the writer, after unlocking, finds the flag set.
    fn hand_off(&self) {
        fence(Ordering::SeqCst);
        while self.owed_flag.load(Ordering::SeqCst) {
            let mut side = match self.write.try_lock() {
                Ok(side) => side,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            self.collect_owed(&mut side);
            let WriteSide { stream, writer } = &mut *side;
            match writer.flush(stream) {
                Err(Error::Io(e)) if is_retryable(&e) => {}
                Err(_) => self.state.set_broken(),
                Ok(()) => {}
            }
            drop(side);
            fence(Ordering::SeqCst);
        }
    }
}

/// The reading half of a split connection. See [`WebSocket::split`].
#[derive(Debug)]
pub struct WsReader<S: SplitStream = TcpStream> {
    stream: S::ReadHalf,
    role: Role,
    reader: Reader,
    shared: Arc<Shared<S::WriteHalf>>,
}

/// The writing half of a split connection. See [`WebSocket::split`].
#[derive(Debug)]
pub struct WsWriter<S: SplitStream = TcpStream> {
    shared: Arc<Shared<S::WriteHalf>>,
}

impl<S: SplitStream> WebSocket<S> {
    /// Split into a reader and a writer that can live on different
    /// threads. Frames already queued stay queued in the writer.
    ///
    /// The tutorial this project grew from asks how to make `WriteFrame` safe
    /// without wrapping every read in a mutex. The answer: give each direction
    /// its own owner. A stream that can be split ([`SplitStream`]: a
    /// `TcpStream` is cloned with `try_clone`) gives its read half to a
    /// [`WsReader`] and its write half to a [`WsWriter`]. The reader never
    /// takes a lock while it reads.
    ///
    /// The protocol still obliges the reading side to send frames: a pong for
    /// every ping (RFC 6455 §5.5.2), the echo of a Close (§5.5.1), a Close that
    /// fails the connection (§7.1.7). [`WsReader::read`] hands these to the
    /// writing half itself, through a one-entry slot the halves share (a newer
    /// ping replaces an older unanswered one, as §5.5.3 allows, so the latest
    /// ping is always answered): if no write is in progress the reader writes
    /// them out at once; otherwise the write in progress sends them when it
    /// ends. Frames never interleave, because the writing state sits behind one
    /// lock that is held only by whoever is writing; the reader only ever
    /// *tries* that lock, so it never waits behind a blocked writer.
    ///
    /// ```no_run
    /// use wsproto::{Message, Error};
    /// # fn main() -> wsproto::Result<()> {
    /// let (ws, _) = wsproto::connect("ws://127.0.0.1:8000/?user=ann")?;
    /// let (mut reader, mut writer) = ws.split()?;
    /// let writer_thread = std::thread::spawn(move || -> wsproto::Result<()> {
    ///     writer.send(Message::text("hello"))?;
    ///     Ok(())
    /// });
    /// loop {
    ///     match reader.read() {
    ///         Ok(Message::Text(t)) => println!("{t}"),
    ///         Ok(_) => {} // pings and closes are answered by the library
    ///         Err(Error::ConnectionClosed) => break,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// writer_thread.join().ok();
    /// # Ok(()) }
    /// ```
    pub fn split(self) -> Result<(WsReader<S>, WsWriter<S>)> {
        let parts = self.into_parts();
        let (read, write) = parts.stream.split_stream()?;
        let shared = Arc::new(Shared {
            state: parts.state,
            owed_flag: AtomicBool::new(false),
            owed: Mutex::new(Owed::default()),
            write: Mutex::new(WriteSide {
                stream: write,
                writer: parts.writer,
            }),
        });
        Ok((
            WsReader {
                stream: read,
                role: parts.role,
                reader: parts.reader,
                shared: Arc::clone(&shared),
            },
            WsWriter { shared },
        ))
    }
}

impl<S: SplitStream> WsReader<S> {
    /// Read the next message, as [`WebSocket::read`] does: pings are
    /// answered, a Close is echoed and a protocol violation fails the
    /// connection with its close code, all through the writing half (see
    /// [`WebSocket::split`]); the Ping or Close is still returned, for
    /// information. After a Close or a failure, returns
    /// [`Error::ConnectionClosed`].
    pub fn read(&mut self) -> Result<Message> {
        Ok(match self.next()? {
            Incoming::Text => Message::Text(self.reader.take_text()),
            Incoming::Binary => Message::Binary(self.reader.take_data()),
            Incoming::Ping => Message::Ping(self.reader.control().to_vec()),
            Incoming::Pong => Message::Pong(self.reader.control().to_vec()),
            Incoming::Close(frame) => Message::Close(frame),
        })
    }

    /// Like [`WsReader::read`], borrowing the reader's buffers (see
    /// [`WebSocket::read_ref`]).
    pub fn read_ref(&mut self) -> Result<MessageRef<'_>> {
        let incoming = self.next()?;
        Ok(self.reader.view(incoming))
    }

    fn next(&mut self) -> Result<Incoming> {
        let (result, reply) = core::read_message(
            &mut self.reader,
            &mut self.stream,
            &self.shared.state,
            self.role,
        );
        if let Some(reply) = reply {
            self.shared.owe(reply);
            self.shared.hand_off();
        }
        result
    }

    /// Hand back a message's buffer for the next read, as
    /// [`WebSocket::recycle`] does.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.reader.recycle(buffer);
    }

    /// Whether a whole frame is buffered (see [`WebSocket::has_buffered_input`]).
    pub fn has_buffered_input(&self) -> bool {
        self.reader.has_buffered()
    }

    /// Whether this end has sent a Close frame: a Close read after that
    /// is the reply.
    pub fn close_sent(&self) -> bool {
        self.shared.state.get().close_sent()
    }

    /// The read half of the stream.
    pub fn get_ref(&self) -> &S::ReadHalf {
        &self.stream
    }
}

impl<S: SplitStream> WsWriter<S> {
    /// Run `op` on the writing side, after queueing the replies the reader
    /// owes; then let the reader's later replies through.
    fn with_side<T>(&mut self, op: impl FnOnce(&mut W<S>, &SharedState) -> Result<T>) -> Result<T> {
        let shared = &*self.shared;
        let mut side = lock(&shared.write);
        shared.collect_owed(&mut side);
        let result = op(&mut side, &shared.state);
        if side.writer.is_broken() {
            shared.state.set_broken();
        }
        drop(side);
        shared.hand_off();
        result
    }

    /// Queue a message without flushing (see [`WebSocket::write`] for what
    /// `Ok` and each error mean).
    pub fn write(&mut self, message: Message) -> Result<()> {
        self.write_ref(message.as_ref())
    }

    /// Queue a borrowed message without flushing (see [`WebSocket::write_ref`]).
    pub fn write_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        self.with_side(|side, state| {
            state.get().check_write()?;
            message.check_sendable()?;
            if let MessageRef::Close(_) = message {
                state.send_close()?;
                side.writer.queue_close(&message.payload());
                return Ok(());
            }
            let WriteSide { stream, writer } = side;
            writer.write(stream, message.opcode(), &message.payload())
        })
    }

    /// Write out everything queued and flush (see [`WebSocket::flush`]).
    pub fn flush(&mut self) -> Result<()> {
        self.with_side(|side, state| {
            if state.get() == core::CloseState::Broken {
                return Err(Error::StreamFailed);
            }
            let WriteSide { stream, writer } = side;
            writer.flush(stream)
        })
    }

    /// [`write`](WsWriter::write) then [`flush`](WsWriter::flush).
    pub fn send(&mut self, message: Message) -> Result<()> {
        self.write(message)?;
        self.flush()
    }

    /// [`write_ref`](WsWriter::write_ref) then [`flush`](WsWriter::flush).
    pub fn send_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        self.write_ref(message)?;
        self.flush()
    }

    /// Queue a [`PreparedMessage`] without flushing (see
    /// [`WebSocket::write_prepared`]).
    pub fn write_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.prepared(message, false)
    }

    /// Send a [`PreparedMessage`] and flush, straight from its shared
    /// bytes when nothing else is queued (see [`WebSocket::send_prepared`]).
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<()> {
        self.prepared(message, true)
    }

    fn prepared(&mut self, message: &PreparedMessage, send: bool) -> Result<()> {
        self.with_side(|side, state| {
            state.get().check_write()?;
            let WriteSide { stream, writer } = side;
            writer.write_prepared(stream, message, send)
        })
    }

    /// Send a Close frame with `code` and `reason`, unless one was sent.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        if self.shared.state.get().close_sent() {
            return Ok(());
        }
        self.send(Message::close(code, reason))
    }

    /// Whether the peer's Close has arrived or the connection is over.
    pub fn close_received(&self) -> bool {
        matches!(
            self.shared.state.get(),
            core::CloseState::Closed
                | core::CloseState::Failed
                | core::CloseState::Ended
                | core::CloseState::Finished
        )
    }

    /// Whether this end has sent a Close frame.
    pub fn close_sent(&self) -> bool {
        self.shared.state.get().close_sent()
    }

    /// Whether bytes are queued and not yet written.
    pub fn has_pending_output(&self) -> bool {
        self.buffered_amount() > 0
    }

    /// How many bytes are queued and not yet written (waits for a write in
    /// progress on the other half).
    pub fn buffered_amount(&self) -> usize {
        lock(&self.shared.write).writer.pending()
    }

    /// Run `f` on the write half of the stream (e.g. to set a write
    /// time-out). Waits while the reading half writes a reply.
    pub fn with_stream<T>(&self, f: impl FnOnce(&mut S::WriteHalf) -> T) -> T {
        f(&mut lock(&self.shared.write).stream)
    }
}

type W<S> = WriteSide<<S as SplitStream>::WriteHalf>;
