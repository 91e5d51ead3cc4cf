//! The load generator's client stream: plain, or rustls' own
//! `StreamOwned` over it for `wss://` URLs (the same for every server,
//! so no server's TLS code measures itself). Over a [`Duplex`] for the
//! load ([`crate::duplex::Wire`]), over a blocking socket for
//! `--handshakes` and `--idle` ([`Stream`]).
//!
//! [`Duplex`]: crate::duplex::Duplex

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use wsproto::ClientRequest;

/// A connection to the server over `S`, with TLS for a `wss://` URL.
#[derive(Debug)]
pub enum Link<S: Read + Write> {
    /// `ws://`.
    Plain(S),
    /// `wss://`.
    Tls(Box<StreamOwned<ClientConnection, S>>),
}

/// Over a blocking socket.
pub type Stream = Link<TcpStream>;

impl<S: Read + Write> Link<S> {
    /// `sock`, connected to `request`'s host, with TLS (not yet shaken
    /// hands: the first write does) when its URL is `wss://`.
    pub fn over(
        sock: S,
        request: &ClientRequest,
        tls: Option<&Arc<ClientConfig>>,
    ) -> io::Result<Link<S>> {
        match (request.url.tls, tls) {
            (false, _) => Ok(Link::Plain(sock)),
            (true, Some(tls)) => {
                let name = rustls::pki_types::ServerName::try_from(request.url.host.clone())
                    .map_err(io::Error::other)?;
                let conn =
                    ClientConnection::new(Arc::clone(tls), name).map_err(io::Error::other)?;
                Ok(Link::Tls(Box::new(StreamOwned::new(conn, sock))))
            }
            (true, None) => Err(io::Error::other("wss:// needs --ca-file")),
        }
    }

    /// The stream underneath.
    pub fn inner(&self) -> &S {
        match self {
            Link::Plain(s) => s,
            Link::Tls(s) => &s.sock,
        }
    }
}

impl<S: Read + Write> Read for Link<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Plain(s) => s.read(buf),
            Link::Tls(s) => s.read(buf),
        }
    }
}

impl<S: Read + Write> Write for Link<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Plain(s) => s.write(buf),
            Link::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Plain(s) => s.flush(),
            Link::Tls(s) => s.flush(),
        }
    }
}
