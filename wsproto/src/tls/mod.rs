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
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

pub use rustls;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig};

use crate::split::SplitStream;

mod config;
mod copy;
mod problem;

pub(crate) use problem::{certificate_problem, describe};

pub use config::{
    client_config, client_config_with_ca_file, client_config_with_ca_pem, crypto_provider,
    default_client_config, server_config_from_pem, server_config_from_pem_files, TlsConfigError,
};

/// Bytes read from the socket at a time: one full TLS record and its
/// header.
const READ_CHUNK: usize = 16 * 1024 + 512;
/// Keep at most this much capacity in the output buffer between writes.
const KEEP_OUT_CAPACITY: usize = 128 * 1024;

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

/// Sealed records waiting for the socket, in the order they were sealed.
#[derive(Debug, Default)]
struct Out {
    buf: Vec<u8>,
    sent: usize,
}

/// What both halves share: the socket (each half makes its own system
/// calls on it), the TLS state (locked only to encrypt or decrypt), and
/// the output queue (locked by whoever writes records out).
struct Shared {
    sock: TcpStream,
    /// Lock order: `out` before `conn`, never the other way.
    conn: Mutex<Connection>,
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

    /// Move the records rustls has sealed into `out` (the caller holds
    /// the `out` lock).
    fn collect(&self, out: &mut Out) {
        let mut conn = lock(&self.conn);
        while conn.wants_write() {
            // Writing into a Vec never fails.
            if conn.write_tls(&mut copy::VecSink(&mut out.buf)).is_err() {
                break;
            }
        }
    }

    /// Write `out` to the socket until it is empty. `WouldBlock` and
    /// time-outs leave the rest queued, to resume at the same byte.
    fn drain(&self, out: &mut Out) -> io::Result<()> {
        while out.sent < out.buf.len() {
            match (&self.sock).write(&out.buf[out.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => out.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        out.buf.clear();
        out.sent = 0;
        if out.buf.capacity() > KEEP_OUT_CAPACITY {
            out.buf.shrink_to(KEEP_OUT_CAPACITY / 4);
        }
        Ok(())
    }

    /// Collect and write out everything sealed so far (blocking as the
    /// socket does).
    fn flush_out(&self) -> io::Result<()> {
        let mut out = lock(&self.out);
        self.collect(&mut out);
        self.drain(&mut out)
    }

    /// Send the records the TLS state holds unless someone else is
    /// writing, in which case that writer sends them when its write ends
    /// (it checks again after releasing the lock). Errors are left for the
    /// next write or flush to report.
    fn hand_off(&self) {
        loop {
            if !lock(&self.conn).wants_write() {
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

    /// `write` (or `write_vectored`, through `seal`): push out what is
    /// queued first; if the socket takes none of it, refuse the new bytes
    /// with the socket's error; otherwise seal them and start writing.
    fn write_with(
        &self,
        seal: impl FnOnce(&mut rustls::Writer<'_>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.check()?;
        let mut out = lock(&self.out);
        self.collect(&mut out);
        self.drain(&mut out)?;
        let n = {
            let mut conn = lock(&self.conn);
            let n = seal(&mut conn.writer())?;
            while conn.wants_write() {
                if conn.write_tls(&mut copy::VecSink(&mut out.buf)).is_err() {
                    break;
                }
            }
            n
        };
        let result = match self.drain(&mut out) {
            // Taken: the records stay queued for the next write or flush.
            Err(e) if is_retryable(&e) => Ok(n),
            Err(e) => Err(e),
            Ok(()) => Ok(n),
        };
        drop(out);
        self.hand_off();
        result
    }

    fn flush(&self) -> io::Result<()> {
        self.check()?;
        self.flush_out()?;
        self.hand_off();
        Ok(())
    }

    fn is_handshaking(&self) -> bool {
        lock(&self.conn).is_handshaking()
    }
}

impl Drop for Shared {
    /// Both halves are gone: send `close_notify` if the socket takes it
    /// at once (never block here).
    fn drop(&mut self) {
        let out = self.out.get_mut().unwrap_or_else(|p| p.into_inner());
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if out.sent < out.buf.len() || conn.is_handshaking() || self.failed.get().is_some() {
            return;
        }
        conn.send_close_notify();
        let mut bytes = Vec::new();
        while conn.wants_write() {
            if conn.write_tls(&mut bytes).is_err() {
                return;
            }
        }
        if self.sock.set_nonblocking(true).is_ok() {
            let _ = (&self.sock).write(&bytes);
        }
    }
}

/// Decrypted bytes into `dst`, like rustls' `Reader::read` but copied
/// with [`copy::copy`] (see there): `WouldBlock` when there are none yet,
/// `Ok(0)` after a `close_notify`, `UnexpectedEof` after a TCP close
/// without one.
fn read_plaintext(conn: &mut Connection, dst: &mut [u8]) -> io::Result<usize> {
    let mut reader = conn.reader();
    let mut n = 0;
    while n < dst.len() {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            // Reported by the next call.
            Err(_) if n > 0 => break,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let k = chunk.len().min(dst.len() - n);
        copy::copy(&mut dst[n..n + k], &chunk[..k]);
        reader.consume(k);
        n += k;
    }
    Ok(n)
}

/// The reading side's own state: bytes read from the socket and not yet
/// given to rustls.
#[derive(Debug, Default)]
struct ReadSide {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadSide {
    /// Read decrypted bytes into `dst`, reading the socket (without any
    /// lock) when rustls has none.
    fn read(&mut self, shared: &Shared, dst: &mut [u8]) -> io::Result<usize> {
        shared.check()?;
        if dst.is_empty() {
            return Ok(0);
        }
        loop {
            let mut produced = false;
            let result = {
                let mut conn = lock(&shared.conn);
                let result = loop {
                    match read_plaintext(&mut conn, dst) {
                        Ok(n) => break Some(Ok(n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // TCP closed without close_notify: the end of the
                        // stream (see the module docs).
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Some(Ok(0)),
                        Err(e) => break Some(Err(e)),
                    }
                    if self.start == self.end {
                        break None;
                    }
                    if let Err(e) = self.feed(shared, &mut conn) {
                        break Some(Err(e));
                    }
                };
                produced |= conn.wants_write();
                result
            };
            if produced {
                shared.hand_off();
            }
            if let Some(result) = result {
                return result;
            }
            self.fill(shared)?;
        }
    }

    /// Give rustls the buffered socket bytes and decrypt them.
    fn feed(&mut self, shared: &Shared, conn: &mut Connection) -> io::Result<()> {
        let n = conn.read_tls(&mut copy::SliceSource(&self.buf[self.start..self.end]))?;
        self.start += n;
        conn.process_new_packets().map_err(|e| shared.fail(e))?;
        Ok(())
    }

    /// Read from the socket (no lock held). At the end of the stream,
    /// tell rustls.
    fn fill(&mut self, shared: &Shared) -> io::Result<()> {
        if self.buf.is_empty() {
            self.buf = vec![0; READ_CHUNK];
        }
        let n = loop {
            match (&shared.sock).read(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.start = 0;
        self.end = n;
        if n == 0 {
            let mut conn = lock(&shared.conn);
            conn.read_tls(&mut io::empty())?;
            conn.process_new_packets().map_err(|e| shared.fail(e))?;
        }
        Ok(())
    }

    /// One step of the handshake's reading: read the socket if nothing is
    /// buffered, then feed rustls.
    fn pump(&mut self, shared: &Shared) -> io::Result<()> {
        shared.check()?;
        if self.start == self.end {
            self.fill(shared)?;
            if self.end == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
        }
        let result = self.feed(shared, &mut lock(&shared.conn));
        // Alerts or handshake messages the input produced.
        shared.hand_off();
        result
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
        let conn = rustls::ServerConnection::new(config).map_err(tls_io_error)?;
        Ok(TlsStream::new(sock, conn.into()))
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
        let conn = ClientConnection::new(config, name).map_err(tls_io_error)?;
        Ok(TlsStream::new(sock, conn.into()))
    }

    fn new(sock: TcpStream, conn: Connection) -> TlsStream {
        TlsStream {
            shared: Arc::new(Shared {
                sock,
                conn: Mutex::new(conn),
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
    pub fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(&lock(&self.shared.conn))
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(&self.shared, buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.shared.is_handshaking() {
            self.complete_handshake()?;
        }
        self.shared
            .write_with(|w| copy::with_pieces(&[IoSlice::new(buf)], |p| w.write_vectored(p)))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.shared.is_handshaking() {
            self.complete_handshake()?;
        }
        self.shared
            .write_with(|w| copy::with_pieces(bufs, |p| w.write_vectored(p)))
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
        self.read.read(&self.shared, buf)
    }
}

impl Write for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared
            .write_with(|w| copy::with_pieces(&[IoSlice::new(buf)], |p| w.write_vectored(p)))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.shared
            .write_with(|w| copy::with_pieces(bufs, |p| w.write_vectored(p)))
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
