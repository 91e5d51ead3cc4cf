//! The blocking client stream of `--handshakes` and `--idle`: plain TCP,
//! or rustls' own `StreamOwned` over it for `wss://` URLs (the same for
//! every server, so no server's TLS code measures itself).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use wsproto::ClientRequest;

/// A connected socket, with TLS for a `wss://` URL.
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// `sock`, connected to `request`'s host, with TLS (not yet shaken
    /// hands: the first write does) when its URL is `wss://`.
    pub fn over(
        sock: TcpStream,
        request: &ClientRequest,
        tls: Option<&Arc<ClientConfig>>,
    ) -> io::Result<Stream> {
        match (request.url.tls, tls) {
            (false, _) => Ok(Stream::Plain(sock)),
            (true, Some(tls)) => {
                let name = rustls::pki_types::ServerName::try_from(request.url.host.clone())
                    .map_err(io::Error::other)?;
                let conn =
                    ClientConnection::new(Arc::clone(tls), name).map_err(io::Error::other)?;
                Ok(Stream::Tls(Box::new(StreamOwned::new(conn, sock))))
            }
            (true, None) => Err(io::Error::other("wss:// needs --ca-file")),
        }
    }

    /// The socket underneath.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
