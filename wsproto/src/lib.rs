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
//!   no lock.
//!
//! The opening handshake lives in [`handshake`]: [`accept`] /
//! [`accept_with`] on the server, [`connect`] / [`client_handshake`] on the
//! client.
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
//! No input from a peer can make this crate panic or allocate without
//! bound: every violation becomes an [`Error`] that carries the HTTP status
//! ([`Error::http_status`]) or close code ([`Error::close_code`]) to answer
//! with.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod close;
mod config;
#[cfg(feature = "deflate")]
pub mod deflate;
mod error;
mod frame;
pub mod handshake;
mod header;
mod mask;
mod message;
mod payload;
mod reader;
mod split;
mod utf8;
mod websocket;
mod writer;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, Role};
#[cfg(feature = "deflate")]
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::{Error, Result};
pub use frame::{mask_frame_in_place, read_frame, write_frame, Frame};
pub use handshake::client::{client_handshake, connect, connect_with, ClientRequest, WsUrl};
pub use handshake::server::{accept, accept_with, Accept, Request};
pub use handshake::{accept_key, generate_key, Response};
pub use header::{read_header, Header, OpCode, Parsed, MAX_HEADER_LEN};
pub use mask::{apply_mask, apply_mask_naive, random_mask};
pub use message::{Message, MessageRef};
pub use split::{WsReader, WsWriter};
pub use websocket::WebSocket;
