//! Reading and writing from two threads without a lock.
//!
//! The tutorial this project grew from asks how to make `WriteFrame` safe
//! without a mutex. The answer: give each direction its own owner. A
//! `TcpStream` can be cloned (`try_clone`) into two handles on the same
//! socket; [`WebSocket::split`] gives one to a [`WsReader`] and one to a
//! [`WsWriter`]. Exactly one thread writes frames, so frames never
//! interleave, and the only state the halves share is two atomic flags for
//! the close handshake.
//!
//! The reader cannot write, so it hands pings, closes and protocol errors to
//! whoever owns the writer (typically through a channel):
//!
//! ```no_run
//! use std::sync::mpsc;
//! use wsproto::{Message, Error};
//! # fn main() -> wsproto::Result<()> {
//! let (ws, _) = wsproto::connect("ws://127.0.0.1:8000/?user=ann")?;
//! let (mut reader, mut writer) = ws.split()?;
//! let (tx, rx) = mpsc::sync_channel::<Message>(64);
//! let writer_thread = std::thread::spawn(move || {
//!     for message in rx {
//!         if writer.send(message).is_err() { break; }
//!     }
//! });
//! tx.send(Message::text("hello")).ok();
//! loop {
//!     match reader.read() {
//!         Ok(Message::Ping(p)) => { tx.send(Message::Pong(p)).ok(); }
//!         Ok(Message::Close(frame)) => { tx.send(Message::Close(frame)).ok(); }
//!         Ok(Message::Text(t)) => println!("{t}"),
//!         Ok(_) => {}
//!         Err(Error::ConnectionClosed) => break,
//!         Err(e) => {
//!             if let Some(code) = e.close_code() {
//!                 tx.send(Message::close(code, &e.to_string())).ok();
//!             }
//!             break;
//!         }
//!     }
//! }
//! drop(tx);
//! writer_thread.join().ok();
//! # Ok(()) }
//! ```

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::close::CloseCode;
use crate::error::{Error, Result};
use crate::message::{Message, MessageRef};
use crate::reader::{Incoming, Reader};
use crate::websocket::WebSocket;
use crate::writer::Writer;

#[derive(Debug, Default)]
struct CloseState {
    sent: AtomicBool,
    received: AtomicBool,
}

/// The reading half of a split connection. See the [module docs](self).
#[derive(Debug)]
pub struct WsReader {
    stream: TcpStream,
    reader: Reader,
    close: Arc<CloseState>,
    ended: bool,
}

/// The writing half of a split connection. See the [module docs](self).
#[derive(Debug)]
pub struct WsWriter {
    stream: TcpStream,
    writer: Writer,
    close: Arc<CloseState>,
}

impl WebSocket<TcpStream> {
    /// Split into a reader and a writer that can live on different threads,
    /// with no lock between them (the socket is cloned with `try_clone`).
    pub fn split(self) -> Result<(WsReader, WsWriter)> {
        let (stream, reader, writer, sent, received) = self.into_parts();
        let write_stream = stream.try_clone()?;
        let close = Arc::new(CloseState {
            sent: AtomicBool::new(sent),
            received: AtomicBool::new(received),
        });
        Ok((
            WsReader {
                stream,
                reader,
                close: Arc::clone(&close),
                ended: received,
            },
            WsWriter {
                stream: write_stream,
                writer,
                close,
            },
        ))
    }
}

impl WsReader {
    /// Read the next message. Unlike [`WebSocket::read`], nothing is answered
    /// automatically: send `Message::Pong` for a ping, echo a Close, and send
    /// a Close with [`Error::close_code`] after a protocol error, through the
    /// [`WsWriter`]. After a Close or an error, returns
    /// [`Error::ConnectionClosed`].
    pub fn read(&mut self) -> Result<Message> {
        if self.ended {
            return Err(Error::ConnectionClosed);
        }
        match self.reader.read(&mut self.stream) {
            Ok(Incoming::Text) => Ok(Message::Text(self.reader.take_text())),
            Ok(Incoming::Binary) => Ok(Message::Binary(self.reader.take_data())),
            Ok(Incoming::Ping) => Ok(Message::Ping(self.reader.control().to_vec())),
            Ok(Incoming::Pong) => Ok(Message::Pong(self.reader.control().to_vec())),
            Ok(Incoming::Close(frame)) => {
                self.close.received.store(true, Ordering::Release);
                self.ended = true;
                Ok(Message::Close(frame))
            }
            Err(e) => {
                if e.close_code().is_some() || matches!(e, Error::UnexpectedEof) {
                    self.ended = true;
                }
                Err(e)
            }
        }
    }

    /// Hand back a message's buffer for the next read, as
    /// [`WebSocket::recycle`] does.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.reader.recycle(buffer);
    }

    /// Whether the writer half has sent a Close frame: a Close read after
    /// that is the reply, and needs no echo.
    pub fn close_sent(&self) -> bool {
        self.close.sent.load(Ordering::Acquire)
    }

    /// The socket.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }
}

impl WsWriter {
    /// Queue a message without flushing (see [`WebSocket::write`]).
    pub fn write(&mut self, message: Message) -> Result<()> {
        self.write_ref(message.as_ref())
    }

    /// Queue a borrowed message without flushing (see [`WebSocket::write_ref`]).
    pub fn write_ref(&mut self, message: MessageRef<'_>) -> Result<()> {
        if self.close.sent.load(Ordering::Acquire) {
            return Err(Error::AlreadyClosed);
        }
        message.check_sendable()?;
        if let MessageRef::Close(_) = message {
            self.close.sent.store(true, Ordering::Release);
        }
        self.writer
            .write(&mut self.stream, message.opcode(), &message.payload())?;
        Ok(())
    }

    /// Write out queued frames and flush.
    pub fn flush(&mut self) -> Result<()> {
        self.writer.flush(&mut self.stream)?;
        Ok(())
    }

    /// [`write`](WsWriter::write) then [`flush`](WsWriter::flush).
    pub fn send(&mut self, message: Message) -> Result<()> {
        self.write(message)?;
        self.flush()
    }

    /// Send a Close frame with `code` and `reason`, unless one was sent.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        if self.close.sent.load(Ordering::Acquire) {
            return Ok(());
        }
        self.send(Message::close(code, reason))
    }

    /// Whether the reader half has received a Close frame.
    pub fn close_received(&self) -> bool {
        self.close.received.load(Ordering::Acquire)
    }

    /// The socket (e.g. to `shutdown` it or set a write time-out).
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }
}
