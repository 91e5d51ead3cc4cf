//! # wsproto
//!
//! A strict, synchronous WebSocket (RFC 6455) protocol library over any
//! blocking `std::io::Read + Write` stream.
//!
//! Two levels, like gobwas/ws under a tungstenite-style message layer; pick
//! the one you need:
//!
//! - **Frames**: [`Header`] / [`OpCode`] / [`Frame`] are plain data;
//!   [`Header::parse`] works on a byte slice and reports how many more bytes
//!   it needs; [`read_header`], [`read_frame`] and [`write_frame`] move them
//!   over a stream; [`apply_mask`] is the cipher and [`mask_frame_in_place`]
//!   masks a client frame with a fresh random key.
//! - **Messages**: [`WebSocket`] reassembles fragments, validates UTF-8 as it
//!   arrives, answers pings, runs the close handshake and fails the
//!   connection with the right close code on any protocol violation.
//!   [`WebSocket::split`] gives a reader and a writer for two threads with
//!   no lock (over TCP, both halves share the one socket descriptor).
//!   [`PreparedMessage`] frames a broadcast once; [`WebSocket::send_prepared`]
//!   writes the shared bytes to each server connection without a copy.
//!
//! The opening handshake: [`accept`] /
//! [`accept_with`] on the server, [`connect`] / [`client_handshake`] on the
//! client; [`ServerHandshake`] / [`ClientHandshake`] are the same
//! handshakes as resumable state machines for non-blocking streams, and
//! [`accept_with_deadline`] / [`ClientRequest::handshake_timeout`] bound
//! them in time.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use wsproto::{Message, Error};
//!
//! # fn main() -> wsproto::Result<()> {
//! // An echo server, one thread per connection.
//! let listener = TcpListener::bind("127.0.0.1:9001")?;
//! for stream in listener.incoming() {
//!     std::thread::spawn(move || -> wsproto::Result<()> {
//!         let mut ws = wsproto::accept(stream?)?;
//!         loop {
//!             match ws.read() {
//!                 Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m)?,
//!                 Ok(_) => {}
//!                 Err(Error::ConnectionClosed) => return Ok(()),
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!     });
//! }
//! # Ok(()) }
//! ```
//!
//! A client: connect, send, read until the server closes.
//!
//! ```no_run
//! use wsproto::{CloseCode, Error, Message};
//!
//! # fn main() -> wsproto::Result<()> {
//! let (mut ws, _response) = wsproto::connect("ws://127.0.0.1:9001/chat")?;
//! ws.send(Message::text("hello"))?;
//! ws.send(Message::binary(vec![1, 2, 3]))?;
//! loop {
//!     match ws.read() {
//!         Ok(Message::Text(t)) => {
//!             println!("{t}");
//!             // Starts the close handshake (RFC 6455 §7.1.2); keep reading
//!             // until the server's reply ends it.
//!             ws.close(CloseCode::Normal, "done")?;
//!         }
//!         Ok(_) => {} // pings are answered for you, the Close reply too
//!         Err(Error::ConnectionClosed) => break,
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! No input from a peer can make this crate panic or allocate without
//! bound: every violation becomes an [`Error`] that carries the HTTP status
//! ([`Error::http_status`]) or close code ([`Error::close_code`]) to answer
//! with.
//!
//! # Limits
//!
//! A [`Config`] bounds what a peer can make a connection hold; pass it to
//! [`accept_with`], [`connect_with`], [`client_handshake`] or
//! [`WebSocket::from_raw_socket`]. Every field is public: start from
//! `Config::default()`.
//!
//! | field | default | what happens past it |
//! |---|---|---|
//! | `max_frame_size` | 16 MiB | a frame declaring a larger payload fails the connection with close 1009 ([`Error::FrameTooBig`]) before its payload is read |
//! | `max_message_size` | 64 MiB | a message growing past it over its fragments: close 1009 ([`Error::MessageTooBig`]), checked as each frame header arrives |
//! | `read_buffer_size` | 64 KiB | not a limit on the peer: the largest the read buffer grows (from 2 KiB, doubling when one read fills it) |
//! | `max_head_size` | 8 KiB | the opening handshake's HTTP head: [`Error::HeadTooLarge`], HTTP 431 |
//! | `max_headers` | 100 | header fields in that head: [`Error::TooManyHeaders`], HTTP 431 |
//! | `max_write_buffer_size` | 1 MiB | the most unsent bytes queued: past it `write` refuses a message with `Error::WriteBufferFull` (see below) |
//!
//! ```no_run
//! # fn main() -> wsproto::Result<()> {
//! let config = wsproto::Config {
//!     max_message_size: 1 << 20,
//!     max_frame_size: 1 << 20,
//!     ..wsproto::Config::default()
//! };
//! let listener = std::net::TcpListener::bind("127.0.0.1:9001")?;
//! let (stream, _) = listener.accept()?;
//! let ws = wsproto::accept_with(stream, &config, |_request| Ok(wsproto::Accept::default()))?;
//! # drop(ws); Ok(()) }
//! ```
//!
//! A Ping, Pong or Close carries at most 125 bytes (RFC 6455 §5.5), so a
//! close reason at most [`CloseFrame::MAX_REASON`] (123): a longer one is
//! refused with [`Error::ControlFrameTooLong`] before anything is written,
//! never cut silently; [`CloseFrame::truncated`] cuts one on purpose.
//!
//! # Feature flags
//!
//! - `tls` (off by default): `wss://` for both roles over rustls with its
//!   `ring` crypto provider, passed explicitly (no process-level default
//!   needed): [`connect`] takes `wss://` URLs and trusts the WebPKI roots;
//!   `connect_tls_with` takes your `rustls::ClientConfig`; the `tls`
//!   module has the server side (`tls::TlsStream::accept`, configs from PEM
//!   files) and [`WebSocket::split`] over TLS. `tls-native-roots` trusts
//!   the operating system's store instead of the WebPKI roots.
//! - `deflate` (on by default): permessage-deflate (RFC 7692) through
//!   `flate2`'s zlib-rs backend: `DeflateConfig`, `DeflateParams`, `Config::deflate`
//!   (offered by a client and accepted by a server unless set to `None`)
//!   and [`WebSocket::enable_deflate`]. Without it (`default-features =
//!   false`) the crate has no compression code and refuses the extension.
//!
//! # Non-blocking streams and time-outs
//!
//! A stream may be non-blocking or have read/write time-outs (set them
//! through [`WebSocket::get_mut`]). Then:
//!
//! - `write` / `write_ref`: `Ok` means the whole message is queued as one
//!   frame and will reach the wire, in order. [`Err(Error::WriteBufferFull)`](Error::WriteBufferFull)
//!   means it was not queued, because more than
//!   [`Config::max_write_buffer_size`]
//!   bytes are still unsent: call [`WebSocket::flush`] when the stream is
//!   writable, then write the message again.
//! - [`WebSocket::flush`]: `Ok` means everything queued is on the wire.
//!   `Err(Error::Io(e))` with `e.kind()` `WouldBlock` or `TimedOut` means
//!   nothing is lost: call `flush` again (when the stream is writable) and
//!   the output resumes exactly where it stopped. `Interrupted` is retried
//!   internally.
//! - [`WebSocket::send`] is `write` then `flush`.
//! - [`WebSocket::read`]: `WouldBlock` or `TimedOut` means retry; nothing is
//!   lost. Pings and Closes are answered automatically (queued and
//!   flushed); if that flush would block, [`WebSocket::has_pending_output`]
//!   is true and the caller flushes when the stream is writable.
//!   [`WebSocket::buffered_amount`] tells how many bytes are still unsent.
//! - Any other I/O error fails the connection: later calls return
//!   [`Error::StreamFailed`], never a "successful" write onto a stream
//!   that may end in half a frame.
//! - Memory: at most `max_write_buffer_size` plus the last message accepted
//!   plus one pong wait to be written; a newer ping replaces an unanswered
//!   older one (RFC 6455 §5.5.3), so the latest is always answered.
//! - Handshakes on such streams: [`ServerHandshake`] and
//!   [`ClientHandshake`] resume where a `WouldBlock` stopped them
//!   ([`HandshakeError::Interrupted`]).
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod close;
mod config;
mod core;
mod deflate;
mod error;
mod frame;
mod handshake;
mod header;
mod mask;
mod message;
mod outbox;
mod payload;
mod prepared;
mod read_buf;
mod reader;
mod role;
mod split;
mod stream;
#[cfg(feature = "tls")]
pub mod tls;
mod utf8;
mod websocket;
mod writer;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, Role};
#[cfg(feature = "deflate")]
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::{CertificateProblem, Error, Result};
pub use frame::{mask_frame_in_place, read_frame, write_frame, Frame};
#[cfg(feature = "tls")]
pub use handshake::client::connect_tls_with;
pub use handshake::client::{
    client_handshake, connect, connect_with, ClientHandshake, ClientRequest, WsUrl,
};
pub use handshake::server::{
    accept, accept_with, accept_with_deadline, error_response, read_request, upgrade, Accept,
    Request, ServerHandshake,
};
pub use handshake::{accept_key, generate_key, HandshakeError, Response, SetTimeouts};
pub use header::{read_header, Header, OpCode, Parsed, MAX_HEADER_LEN};
pub use mask::{apply_mask, apply_mask_naive, random_mask};
pub use message::{Message, MessageRef};
pub use prepared::PreparedMessage;
pub use split::{SplitStream, TcpHalf, WsReader, WsWriter};
pub use stream::{MaybeTlsReadHalf, MaybeTlsStream, MaybeTlsWriteHalf};
pub use websocket::WebSocket;
