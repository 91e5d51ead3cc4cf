//! `wss://`: WebSocket over TLS with rustls (feature `tls`).
//!
//! [`TlsStream`] is a TLS connection over a [`TcpStream`], for either role.
//! It is an ordinary blocking (or time-out, or non-blocking)
//! `Read + Write` stream, so everything in this crate works over it:
//!
//! - **Server**: build a [`rustls::ServerConfig`] once (e.g. with
//!   [`server_config_from_pem_files`]), wrap each accepted socket with
//!   [`TlsStream::accept`] and hand it to [`accept_with_deadline`]
//!   (or any other server handshake). The TLS handshake runs inside the
//!   first read, so the WebSocket handshake's deadline covers it too: a
//!   client that sends half a ClientHello is cut at the deadline. To
//!   require client certificates, build the config yourself with
//!   `rustls::server::WebPkiClientVerifier` over your client CA (and
//!   [`crypto_provider`]); the handshake then fails for a client without
//!   one, and [`TlsStream::with_connection`] shows the certificates of one
//!   that had one (`peer_certificates`).
//! - **Client**: [`connect`] / [`connect_with`] take `wss://` URLs and
//!   verify the server against the WebPKI roots (Mozilla's list, compiled
//!   in; with the feature `tls-native-roots`, the operating system's
//!   store), with SNI and a host-name check; [`connect_tls_with`] takes
//!   your own [`rustls::ClientConfig`] (your CA, client certificates);
//!   [`client_config_with_ca_file`] builds one trusting a PEM file.
//! - **Two threads**: [`WebSocket::split`] works over a `TlsStream`
//!   ([`SplitStream`]). The halves share the TCP socket (each does its own
//!   system calls on it, without a lock) and the TLS state, whose lock is
//!   held only while records are encrypted or decrypted, never during
//!   socket I/O. Sealed records leave in the order they were sealed: the
//!   writing half holds the output lock while it writes them out, and the
//!   reading half only *tries* that lock to send what it produced itself
//!   (handshake messages, alerts, key-update answers); if the writer holds
//!   it, the writer sends them when its write ends. So a writer blocked on
//!   a peer that does not read never stops the reader.
//!
//! The crypto provider is rustls' `ring` provider, passed explicitly to
//! every config this module builds ([`crypto_provider`]); no process-level
//! default provider is installed or needed.
//!
//! # Resumable I/O
//!
//! The contract of the core ("Non-blocking streams and time-outs" in the
//! crate docs) holds over TLS: `write` either takes bytes (encrypts them;
//! the records then go out with this or a later `write` or `flush`) or
//! returns `WouldBlock`/`TimedOut` having taken none; `flush` writes out
//! every sealed record and resumes at the exact byte a `WouldBlock`
//! stopped it at; `read` loses nothing on `WouldBlock`.
//!
//! # End of stream
//!
//! A TCP close without TLS `close_notify` reads as an ordinary end of
//! stream: WebSocket has its own close handshake, so a cut connection is
//! still [`Error::UnexpectedEof`](crate::Error::UnexpectedEof) at the
//! WebSocket level. When the last half of a `TlsStream` is dropped, a
//! `close_notify` is sent if the socket takes it without blocking.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use std::time::{Duration, Instant};
//! use wsproto::tls::{server_config_from_pem_files, TlsStream};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = server_config_from_pem_files("chain.pem".as_ref(), "key.pem".as_ref())?;
//! let listener = TcpListener::bind("127.0.0.1:9443")?;
//! for socket in listener.incoming() {
//!     let tls = TlsStream::accept(socket?, config.clone())?;
//!     let deadline = Instant::now() + Duration::from_secs(5);
//!     let mut ws = wsproto::accept_with_deadline(tls, &wsproto::Config::default(), deadline, |_| {
//!         Ok(wsproto::Accept::default())
//!     })?;
//!     ws.send(wsproto::Message::text("hello over wss"))?;
//! }
//! # Ok(()) }
//! ```
//!
//! [`accept_with_deadline`]: crate::accept_with_deadline
//! [`connect`]: crate::connect
//! [`connect_with`]: crate::connect_with
//! [`connect_tls_with`]: crate::connect_tls_with
//! [`WebSocket::split`]: crate::WebSocket::split
//! [`SplitStream`]: crate::SplitStream

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

pub use rustls;
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, CommonState, ServerConfig};

use crate::split::SplitStream;

mod config;
mod copy;
mod engine;
mod problem;
mod read;
mod segments;

use engine::{Conn, Op, Sealed};

pub(crate) use problem::{certificate_problem, describe};

pub use config::{
    client_config, client_config_with_ca_file, client_config_with_ca_pem, crypto_provider,
    default_client_config, server_config_from_pem, server_config_from_pem_files, TlsConfigError,
};

/// The read buffer: room for a whole record (16 KiB of plaintext plus
/// TLS 1.2's largest expansion and the header) with as much again for
/// what arrives behind it.
const READ_BUF: usize = 32 * 1024;

use read::ReadSide;
use segments::Segments;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Sealed records waiting for the socket, in the order they were sealed,
/// and the gathering buffer for small slices of a vectored write.
#[derive(Debug, Default)]
struct Out {
    bytes: Sealed,
    sent: usize,
    gather: Vec<u8>,
}

/// The TLS state both halves share (locked only to encrypt or decrypt).
struct Tls {
    conn: Conn,
    /// Socket bytes not yet processed: `incoming[start..]`. Every call
    /// into rustls' state machine must see the same buffer (its handshake
    /// deframer keeps offsets into it), so it lives here, not in a half.
    /// Its length is what arrived, never zero-filled room: an idle
    /// connection's buffer holds only the pages its bytes touched.
    incoming: Vec<u8>,
    start: usize,
    /// The socket reached its end.
    eof: bool,
    /// Records the reading side produced (handshake messages, alerts,
    /// key-update answers, tickets), waiting to join [`Out`] in order.
    sealed: Sealed,
    /// Plaintext a writer's pass decrypted (it has no read buffer to give
    /// it): the reader takes it first.
    backlog: Vec<u8>,
    /// The peer sent `close_notify`.
    peer_closed: bool,
}

impl Tls {
    /// One pass of the state machine over the buffered input; records it
    /// produces go to `out` (a writer's queue) or else to `self.sealed`.
    fn pass(
        &mut self,
        op: &Op<'_>,
        out: Option<&mut Sealed>,
        on_data: &mut dyn FnMut(&[u8]),
    ) -> Result<engine::Pass, rustls::Error> {
        let out = match out {
            Some(out) => out,
            None => &mut self.sealed,
        };
        let pass = self
            .conn
            .pass(&mut self.incoming[self.start..], op, out, on_data)?;
        self.start += pass.consumed;
        if self.start == self.incoming.len() {
            self.start = 0;
            self.incoming.clear();
            if self.incoming.capacity() > READ_BUF {
                // A bulk transfer's buffer: give it back once drained.
                self.incoming = Vec::new();
            }
        }
        self.peer_closed |= pass.peer_closed;
        Ok(pass)
    }

    /// A pass whose plaintext (if any: a writer's or the handshake's
    /// pass has no caller buffer for it) waits in `backlog` for the
    /// reader.
    fn pass_to_backlog(
        &mut self,
        op: &Op<'_>,
        out: Option<&mut Sealed>,
    ) -> Result<engine::Pass, rustls::Error> {
        let mut backlog = std::mem::take(&mut self.backlog);
        let result = self.pass(op, out, &mut |data| backlog.extend_from_slice(data));
        self.backlog = backlog;
        result
    }

    /// Move the records the reading side sealed to the end of `out`.
    fn move_sealed(&mut self, out: &mut Sealed) {
        if !self.sealed.is_empty() {
            out.append(self.sealed.bytes());
            self.sealed.clear();
        }
    }

    /// Append socket bytes behind the buffered ones.
    fn push_input(&mut self, bytes: &[u8]) {
        let room = self.incoming.capacity() - self.incoming.len();
        if self.start > 0 && room < bytes.len() {
            self.incoming.drain(..self.start);
            self.start = 0;
        }
        if self.incoming.capacity() == 0 {
            self.incoming.reserve(bytes.len().max(READ_BUF));
        }
        copy::extend(&mut self.incoming, bytes);
    }
}

/// What both halves share: the socket (each half makes its own system
/// calls on it), the TLS state, and the output queue (locked by whoever
/// writes records out).
struct Shared {
    sock: TcpStream,
    /// Lock order: `out` before `tls`, never the other way.
    tls: Mutex<Tls>,
    out: Mutex<Out>,
    /// The TLS failure that ended the connection, if any: every later
    /// call returns it (never block on a dead connection).
    failed: OnceLock<rustls::Error>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsShared")
            .field("sock", &self.sock)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Record a TLS failure and turn it into an I/O error.
    fn fail(&self, e: rustls::Error) -> io::Error {
        let _ = self.failed.set(e.clone());
        tls_io_error(e)
    }

    /// The recorded failure, if any.
    fn check(&self) -> io::Result<()> {
        match self.failed.get() {
            Some(e) => Err(tls_io_error(e.clone())),
            None => Ok(()),
        }
    }

    /// Move the records the reading side sealed into `out` (the caller
    /// holds the `out` lock).
    fn collect(&self, out: &mut Out) {
        lock(&self.tls).move_sealed(&mut out.bytes);
    }

    /// Write `out` to the socket until it is empty. `WouldBlock` and
    /// time-outs leave the rest queued, to resume at the same byte.
    fn drain(&self, out: &mut Out) -> io::Result<()> {
        while out.sent < out.bytes.bytes().len() {
            match (&self.sock).write(&out.bytes.bytes()[out.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => out.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        out.bytes.clear();
        out.sent = 0;
        Ok(())
    }

    /// Collect and write out everything sealed so far (blocking as the
    /// socket does).
    fn flush_out(&self) -> io::Result<()> {
        let mut out = lock(&self.out);
        self.collect(&mut out);
        self.drain(&mut out)
    }

    /// Send the records the reading side sealed unless someone else is
    /// writing, in which case that writer sends them when its write ends
    /// (it checks again after releasing the lock). Errors are left for the
    /// next write or flush to report.
    fn hand_off(&self) {
        loop {
            if lock(&self.tls).sealed.is_empty() {
                return;
            }
            let mut out = match self.out.try_lock() {
                Ok(out) => out,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            self.collect(&mut out);
            let result = self.drain(&mut out);
            drop(out);
            if result.is_err() {
                return;
            }
        }
    }

    /// `write` / `write_vectored`: push out what is queued first; if the
    /// socket takes none of it, refuse the new bytes with the socket's
    /// error; otherwise seal them ([`Segments::plan`]) and start writing.
    /// (Sending each record as soon as it is sealed, for the peer to open
    /// the first while the next is sealed, was measured: a 64 KiB echo
    /// came back no sooner, for a third more CPU in the kernel.)
    fn write_with(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.check()?;
        let mut out = lock(&self.out);
        self.collect(&mut out);
        self.drain(&mut out)?;
        let mut gather = std::mem::take(&mut out.gather);
        let segments = Segments::plan(bufs, &mut gather);
        let taken = segments.len();
        self.seal(&mut lock(&self.tls), segments.as_slice(), &mut out)?;
        let result = self.drain(&mut out);
        out.gather = gather;
        drop(out);
        self.hand_off();
        match result {
            // Taken: the records stay queued for the next write or flush.
            Err(e) if is_retryable(&e) => Ok(taken),
            Err(e) => Err(e),
            Ok(()) => Ok(taken),
        }
    }

    /// Seal `segments` behind what `out` holds (records the reader sealed
    /// since `collect` go first).
    fn seal(&self, tls: &mut Tls, segments: &[&[u8]], out: &mut Out) -> io::Result<()> {
        tls.move_sealed(&mut out.bytes);
        let pass = tls
            .pass_to_backlog(&Op::Write(segments), Some(&mut out.bytes))
            .map_err(|e| self.fail(e))?;
        if !pass.sealed {
            return Err(io::Error::other("the TLS handshake is not complete"));
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.check()?;
        self.flush_out()?;
        self.hand_off();
        Ok(())
    }

    fn is_handshaking(&self) -> bool {
        lock(&self.tls).conn.common().is_handshaking()
    }
}

impl Drop for Shared {
    /// Both halves are gone: send `close_notify` if the socket takes it
    /// at once (never block here).
    fn drop(&mut self) {
        let out = self.out.get_mut().unwrap_or_else(|p| p.into_inner());
        let tls = self.tls.get_mut().unwrap_or_else(|p| p.into_inner());
        if out.sent < out.bytes.bytes().len()
            || tls.conn.common().is_handshaking()
            || self.failed.get().is_some()
        {
            return;
        }
        let mut bytes = Sealed::default();
        let sealed = tls
            .pass(&Op::CloseNotify, Some(&mut bytes), &mut |_| {})
            .is_ok_and(|pass| pass.sealed);
        if sealed && self.sock.set_nonblocking(true).is_ok() {
            let _ = (&self.sock).write(bytes.bytes());
        }
    }
}

/// A TLS connection over a [`TcpStream`], client or server (see the
/// [module docs](self)).
///
/// The TLS handshake runs inside the first reads and writes (so the time
/// limits of the WebSocket handshake cover it); [`TlsStream::complete_handshake`]
/// runs it on its own. Its [`SetTimeouts`](crate::SetTimeouts) set the socket's time-outs.
#[derive(Debug)]
pub struct TlsStream {
    shared: Arc<Shared>,
    read: ReadSide,
}

impl TlsStream {
    /// Wrap an accepted socket as the server side of a TLS connection.
    /// Nothing is read or written yet.
    pub fn accept(sock: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_io_error)?;
        Ok(TlsStream::new(sock, Conn::Server(Box::new(conn))))
    }

    /// Wrap a connected socket as the client side of a TLS connection to
    /// `server_name` (a DNS name or an IP address: sent as SNI if it is a
    /// name, and checked against the server's certificate). Nothing is
    /// written yet.
    pub fn connect(
        sock: TcpStream,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{server_name:?} is not a valid TLS server name"),
            )
        })?;
        let conn = UnbufferedClientConnection::new(config, name).map_err(tls_io_error)?;
        Ok(TlsStream::new(sock, Conn::Client(Box::new(conn))))
    }

    fn new(sock: TcpStream, conn: Conn) -> TlsStream {
        TlsStream {
            shared: Arc::new(Shared {
                sock,
                tls: Mutex::new(Tls {
                    conn,
                    incoming: Vec::new(),
                    start: 0,
                    eof: false,
                    sealed: Sealed::default(),
                    backlog: Vec::new(),
                    peer_closed: false,
                }),
                out: Mutex::new(Out::default()),
                failed: OnceLock::new(),
            }),
            read: ReadSide::default(),
        }
    }

    /// Run the TLS handshake to its end (blocking as the socket does;
    /// resumable on `WouldBlock`). Reads and writes do this by themselves.
    pub fn complete_handshake(&mut self) -> io::Result<()> {
        loop {
            self.shared.flush_out()?;
            if !self.shared.is_handshaking() {
                return Ok(());
            }
            self.read.pump(&self.shared)?;
        }
    }

    /// Whether the TLS handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.shared.is_handshaking()
    }

    /// The socket (e.g. for its addresses). Reading or writing through it
    /// breaks the TLS connection.
    pub fn get_ref(&self) -> &TcpStream {
        &self.shared.sock
    }

    /// Look at the TLS connection: negotiated version and cipher suite,
    /// ALPN, the peer's certificates, ...
    pub fn with_connection<T>(&self, f: impl FnOnce(&CommonState) -> T) -> T {
        f(lock(&self.shared.tls).conn.common())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(&self.shared, &mut [IoSliceMut::new(buf)])
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read.read(&self.shared, bufs)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.shared.is_handshaking() {
            self.complete_handshake()?;
        }
        self.shared.write_with(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.shared.is_handshaking() {
            self.complete_handshake()?;
        }
        self.shared.flush()
    }
}

/// The reading half of a split [`TlsStream`].
#[derive(Debug)]
pub struct TlsReadHalf {
    shared: Arc<Shared>,
    read: ReadSide,
}

/// The writing half of a split [`TlsStream`].
#[derive(Debug)]
pub struct TlsWriteHalf {
    shared: Arc<Shared>,
}

impl Read for TlsReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(&self.shared, &mut [IoSliceMut::new(buf)])
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read.read(&self.shared, bufs)
    }
}

impl Write for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.write_with(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.shared.write_with(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.shared.flush()
    }
}

impl TlsReadHalf {
    /// The socket both halves share.
    pub fn get_ref(&self) -> &TcpStream {
        &self.shared.sock
    }
}

impl TlsWriteHalf {
    /// The socket both halves share.
    pub fn get_ref(&self) -> &TcpStream {
        &self.shared.sock
    }
}

/// Finishes the TLS handshake first (it needs both directions), then
/// shares the socket and the TLS state between the halves.
impl SplitStream for TlsStream {
    type ReadHalf = TlsReadHalf;
    type WriteHalf = TlsWriteHalf;
    fn split_stream(mut self) -> io::Result<(TlsReadHalf, TlsWriteHalf)> {
        self.complete_handshake()?;
        Ok((
            TlsReadHalf {
                shared: Arc::clone(&self.shared),
                read: self.read,
            },
            TlsWriteHalf {
                shared: self.shared,
            },
        ))
    }
}

crate::stream::socket_timeouts!(TlsStream, TlsReadHalf, TlsWriteHalf);
