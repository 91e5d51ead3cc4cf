//! The stream [`connect`](crate::connect) returns: plain TCP for `ws://`,
//! TLS for `wss://` (feature `tls`).

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::split::{SplitStream, TcpHalf};
#[cfg(feature = "tls")]
use crate::tls::{TlsReadHalf, TlsStream, TlsWriteHalf};

/// A client connection's stream: [`connect`](crate::connect) and
/// [`connect_with`](crate::connect_with) give `Plain` for `ws://` and
/// (feature `tls`) `Tls` for `wss://`. It reads, writes, splits
/// ([`SplitStream`]) and sets time-outs ([`SetTimeouts`](crate::SetTimeouts)) like either.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

/// The reading half of a split [`MaybeTlsStream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsReadHalf {
    /// `ws://`: plain TCP.
    Plain(TcpHalf),
    /// `wss://`: TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(TlsReadHalf),
}

/// The writing half of a split [`MaybeTlsStream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsWriteHalf {
    /// `ws://`: plain TCP.
    Plain(TcpHalf),
    /// `wss://`: TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(TlsWriteHalf),
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Self::Plain($s) => $e,
            #[cfg(feature = "tls")]
            Self::Tls($s) => $e,
        }
    };
}

impl MaybeTlsStream {
    /// The TCP socket (under TLS, reading or writing through it breaks
    /// the connection).
    pub fn get_ref(&self) -> &TcpStream {
        each!(self, s => s.get_ref())
    }

    /// The socket's read time-out ([`TcpStream::read_timeout`]).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.get_ref().read_timeout()
    }

    /// The socket's write time-out ([`TcpStream::write_timeout`]).
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.get_ref().write_timeout()
    }

    /// Set the socket's read time-out ([`TcpStream::set_read_timeout`]).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.get_ref().set_read_timeout(timeout)
    }

    /// Set the socket's write time-out ([`TcpStream::set_write_timeout`]).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.get_ref().set_write_timeout(timeout)
    }

    /// Whether this is a `wss://` (TLS) connection.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl MaybeTlsReadHalf {
    /// The TCP socket.
    pub fn get_ref(&self) -> &TcpStream {
        each!(self, s => s.get_ref())
    }
}

impl MaybeTlsWriteHalf {
    /// The TCP socket.
    pub fn get_ref(&self) -> &TcpStream {
        each!(self, s => s.get_ref())
    }
}

/// A `TcpStream` is its own socket, so the macro above works for it.
trait GetRef {
    fn get_ref(&self) -> &TcpStream;
}

impl GetRef for TcpStream {
    fn get_ref(&self) -> &TcpStream {
        self
    }
}

impl GetRef for TcpHalf {
    fn get_ref(&self) -> &TcpStream {
        TcpHalf::get_ref(self)
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

impl Read for MaybeTlsReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl Write for MaybeTlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

impl SplitStream for MaybeTlsStream {
    type ReadHalf = MaybeTlsReadHalf;
    type WriteHalf = MaybeTlsWriteHalf;
    fn split_stream(self) -> io::Result<(MaybeTlsReadHalf, MaybeTlsWriteHalf)> {
        Ok(match self {
            Self::Plain(s) => {
                let (r, w) = s.split_stream()?;
                (MaybeTlsReadHalf::Plain(r), MaybeTlsWriteHalf::Plain(w))
            }
            #[cfg(feature = "tls")]
            Self::Tls(s) => {
                let (r, w) = s.split_stream()?;
                (MaybeTlsReadHalf::Tls(r), MaybeTlsWriteHalf::Tls(w))
            }
        })
    }
}

/// `SetTimeouts` for stream types with `get_ref() -> &TcpStream`: the
/// socket's time-outs, shared by both halves of a split stream. Also used
/// by the TLS stream types.
macro_rules! socket_timeouts {
    ($($t:ty),*) => {$(
        /// The socket's time-outs (shared by both halves of a split stream).
        impl $crate::handshake::SetTimeouts for $t {
            fn read_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                self.get_ref().read_timeout()
            }
            fn write_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                self.get_ref().write_timeout()
            }
            fn set_read_timeout(&self, timeout: Option<::std::time::Duration>) -> ::std::io::Result<()> {
                self.get_ref().set_read_timeout(timeout)
            }
            fn set_write_timeout(&self, timeout: Option<::std::time::Duration>) -> ::std::io::Result<()> {
                self.get_ref().set_write_timeout(timeout)
            }
        }
    )*};
}

pub(crate) use socket_timeouts;

socket_timeouts!(MaybeTlsStream, MaybeTlsReadHalf, MaybeTlsWriteHalf);
