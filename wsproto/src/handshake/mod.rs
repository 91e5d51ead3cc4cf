//! The opening handshake (RFC 6455 §4): an HTTP/1.1 Upgrade request and a
//! `101 Switching Protocols` answer.
//!
//! `httparse` tokenizes the HTTP head; every WebSocket rule is checked here.
//!
//! # Blocking and resumable
//!
//! Both sides come in two forms:
//!
//! - blocking functions ([`server::accept_with`], [`client::client_handshake`],
//!   [`client::connect_with`], ...) that return [`crate::Result`]; on a
//!   stream that returns `WouldBlock` or `TimedOut` they give up with
//!   [`Error::Io`] of that kind (and drop the state; never an HTTP 400);
//! - resumable state machines, [`server::ServerHandshake`] and
//!   [`client::ClientHandshake`], for non-blocking streams: a call that meets
//!   `WouldBlock`/`TimedOut` returns [`HandshakeError::Interrupted`] with the
//!   handshake, which keeps the bytes read so far, the bytes not yet written
//!   and (client) the key; calling it again when the stream is ready goes
//!   on exactly where it stopped. `ErrorKind::Interrupted` is retried
//!   internally.
//!
//! With a deadline ([`server::accept_with_deadline`],
//! [`ClientRequest::handshake_timeout`](client::ClientRequest::handshake_timeout))
//! the stream's read and write time-outs are set to the time left before
//! every call, and restored to their original values afterwards, whether
//! the handshake succeeded or not ([`SetTimeouts`]).
//!
//! # Header syntax
//!
//! Nothing this crate writes can smuggle a header line: header names must be
//! RFC 9110 tokens, values RFC 9110 field values (no CR, LF, NUL or other
//! control character but HTAB), subprotocols tokens, and URLs are parsed
//! strictly ([`client::WsUrl::parse`]). A violation is an error
//! ([`Error::InvalidHeaderName`], [`Error::InvalidHeaderValue`],
//! [`Error::InvalidUrl`]) returned before anything is written.

pub mod client;
mod head;
pub mod server;

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha1::{Digest, Sha1};

pub use head::Response;

use crate::config::{Config, Role};
use crate::error::Error;
use crate::websocket::WebSocket;

/// The GUID appended to the client's key (RFC 6455 §1.3).
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Compute `Sec-WebSocket-Accept` from `Sec-WebSocket-Key` (RFC 6455 §4.2.2):
/// base64(SHA-1(key ++ GUID)).
///
/// ```
/// assert_eq!(
///     wsproto::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes (RFC 6455 §4.1).
pub fn generate_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

/// Whether a comma-separated header value contains `token`, compared
/// case-insensitively (RFC 7230 §7 lists, as used by `Connection` and `Upgrade`).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Check that the list-valued header `name` names `token` among `fields`
/// (a head's name/value pairs): a list may be split over several fields
/// (RFC 7230 §3.2.2). Used for `Upgrade` and `Connection` on both sides.
pub(crate) fn require_token<V: AsRef<[u8]>>(
    fields: &[(String, V)],
    name: &'static str,
    token: &str,
) -> crate::Result<()> {
    let mut values = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
        .peekable();
    let first = *values.peek().ok_or(crate::Error::MissingHeader(name))?;
    if values.any(|v| has_token(v, token)) {
        Ok(())
    } else {
        Err(crate::Error::InvalidHeader {
            name,
            value: String::from_utf8_lossy(first).into_owned(),
        })
    }
}

/// Why a resumable handshake call returned without a connection.
pub enum HandshakeError<H> {
    /// The stream returned `WouldBlock` or `TimedOut`. Nothing was lost:
    /// call the handshake again (e.g. [`server::ServerHandshake::handshake_with`]
    /// or [`client::ClientHandshake::handshake`]) when the stream is ready.
    Interrupted(H),
    /// The handshake failed; the connection is unusable.
    Failure(Error),
}

impl<H> HandshakeError<H> {
    /// The error, if this is a failure.
    pub fn failure(&self) -> Option<&Error> {
        match self {
            HandshakeError::Interrupted(_) => None,
            HandshakeError::Failure(e) => Some(e),
        }
    }
}

impl<H> fmt::Debug for HandshakeError<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Interrupted(_) => f.write_str("Interrupted(..)"),
            HandshakeError::Failure(e) => f.debug_tuple("Failure").field(e).finish(),
        }
    }
}

impl<H> fmt::Display for HandshakeError<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Interrupted(_) => {
                f.write_str("the WebSocket handshake is waiting for the stream; resume it")
            }
            HandshakeError::Failure(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<H> std::error::Error for HandshakeError<H> {}

impl<H> From<Error> for HandshakeError<H> {
    fn from(e: Error) -> Self {
        HandshakeError::Failure(e)
    }
}

/// Read and set a stream's read and write time-outs, so that a handshake
/// deadline can be enforced and the original time-outs restored after.
///
/// Implemented for [`TcpStream`] (and references to it); implement it for
/// your own stream type (e.g. a TLS stream, delegating to its socket) to use
/// [`server::accept_with_deadline`] or
/// [`client::ClientHandshake::handshake_with_deadline`] with it.
pub trait SetTimeouts {
    /// The current read time-out (`None`: reads block forever).
    fn read_timeout(&self) -> io::Result<Option<Duration>>;
    /// The current write time-out (`None`: writes block forever).
    fn write_timeout(&self) -> io::Result<Option<Duration>>;
    /// Set the read time-out; never called with `Some(Duration::ZERO)`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Set the write time-out; never called with `Some(Duration::ZERO)`.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl SetTimeouts for TcpStream {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::read_timeout(self)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::write_timeout(self)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

impl<T: SetTimeouts + ?Sized> SetTimeouts for &T {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        (**self).read_timeout()
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        (**self).write_timeout()
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

impl<T: SetTimeouts + ?Sized> SetTimeouts for &mut T {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        (**self).read_timeout()
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        (**self).write_timeout()
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

/// Whether an I/O error means "not now" (a non-blocking stream with nothing
/// to do, or a read/write time-out), after which a handshake can resume.
pub(crate) fn is_blocked(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The `io::Error` kind an interrupted handshake hands back through the
/// blocking entry points.
pub(crate) fn blocked_error(kind: Option<io::ErrorKind>) -> Error {
    Error::Io(io::Error::from(kind.unwrap_or(io::ErrorKind::WouldBlock)))
}

/// Run `step` until it succeeds, fails for a reason other than a blocked
/// stream, or `deadline` passes; before each call the stream's time-outs
/// are set to the time left. The original time-outs are restored at the
/// end in every case (a failure to restore is reported only if the
/// handshake itself succeeded).
pub(crate) fn drive_until<H, T: SetTimeouts + ?Sized>(
    hs: &mut H,
    deadline: Instant,
    stream: impl Fn(&H) -> &T,
    mut step: impl FnMut(&mut H) -> crate::Result<()>,
) -> crate::Result<()> {
    let original = {
        let s = stream(hs);
        (s.read_timeout()?, s.write_timeout()?)
    };
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(Error::HandshakeTimedOut);
        }
        let s = stream(hs);
        if let Err(e) = s
            .set_read_timeout(Some(left))
            .and_then(|()| s.set_write_timeout(Some(left)))
        {
            break Err(e.into());
        }
        match step(hs) {
            Ok(()) => break Ok(()),
            Err(Error::Io(e)) if is_blocked(&e) => continue,
            Err(e) => break Err(e),
        }
    };
    let s = stream(hs);
    let restored = s
        .set_read_timeout(original.0)
        .and_then(|()| s.set_write_timeout(original.1));
    result.and(restored.map_err(Error::from))
}

/// Header names must be RFC 9110 tokens.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `s` is a non-empty RFC 9110 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Check a header field about to be written: the name an RFC 9110 token,
/// the value a field value (visible characters, spaces, tabs and
/// non-ASCII, but no CR, LF, NUL or other control character).
pub(crate) fn check_header(name: &str, value: &str) -> crate::Result<()> {
    if !is_token(name) {
        return Err(Error::InvalidHeaderName {
            name: name.to_owned(),
        });
    }
    check_value(name, value)
}

/// The value half of [`check_header`].
pub(crate) fn check_value(name: &str, value: &str) -> crate::Result<()> {
    let reason = match value
        .bytes()
        .find(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
    {
        None => return Ok(()),
        Some(b'\r') => "contains CR (\\r), which would end the header line; remove it",
        Some(b'\n') => "contains LF (\\n), which would end the header line; remove it",
        Some(0) => "contains NUL, which is not allowed in a header value; remove it",
        Some(_) => {
            "contains a control character, which is not allowed in a header value (only tabs are)"
        }
    };
    Err(Error::InvalidHeaderValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    })
}

/// The permessage-deflate parameters a handshake negotiated.
#[cfg(feature = "deflate")]
pub(crate) type Negotiated = crate::deflate::DeflateParams;
/// Without the `deflate` feature nothing is ever negotiated.
#[cfg(not(feature = "deflate"))]
pub(crate) type Negotiated = std::convert::Infallible;

/// Build the connection once the handshake is complete.
pub(crate) fn open<S: io::Read + io::Write>(
    stream: S,
    role: Role,
    config: &Config,
    leftover: Vec<u8>,
    negotiated: Option<Negotiated>,
) -> WebSocket<S> {
    #[allow(unused_mut)]
    let mut ws = WebSocket::from_partially_read(stream, role, config, leftover);
    #[cfg(feature = "deflate")]
    if let (Some(params), Some(deflate_config)) = (negotiated, config.deflate.as_ref()) {
        ws.enable_deflate(params, deflate_config);
    }
    #[cfg(not(feature = "deflate"))]
    let _ = negotiated;
    ws
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_accept_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn generated_keys_decode_to_16_bytes_and_differ() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .unwrap();
        assert_eq!(raw.len(), 16);
    }

    #[test]
    fn token_lists() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"UPGRADE", "upgrade"));
        assert!(!has_token(b"upgraded", "upgrade"));
        assert!(!has_token(b"", "upgrade"));
        assert!(has_token(b"websocket", "websocket"));
    }

    #[test]
    fn header_syntax() {
        assert!(check_header("X-Ok", "a b\tc é").is_ok());
        for name in ["", "X Bad", "X:Bad", "X\r\nY", "É"] {
            assert!(
                matches!(
                    check_header(name, "v"),
                    Err(Error::InvalidHeaderName { .. })
                ),
                "{name:?}"
            );
        }
        for value in ["a\rb", "a\nb", "a\0b", "a\x7fb", "a\x01"] {
            assert!(
                matches!(
                    check_header("X", value),
                    Err(Error::InvalidHeaderValue { .. })
                ),
                "{value:?}"
            );
        }
    }
}
