//! Client side of the opening handshake (RFC 6455 §4.1).
//!
//! [`connect`] / [`connect_with`] connect over TCP and do the handshake;
//! [`client_handshake`] does it over a stream you connected; all three
//! block. [`ClientHandshake`] is the same handshake as a resumable state
//! machine for non-blocking streams.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::head::{parse_error, HeadReader, Pending, Response};
use super::{
    accept_key, blocked_error, check_header, drive_until, generate_key, is_blocked, is_token, open,
    require_token, HandshakeError, Negotiated, SetTimeouts,
};
use crate::config::{Config, Role};
use crate::error::{Error, Result};
use crate::stream::MaybeTlsStream;
use crate::websocket::WebSocket;

/// Longest error body kept from a non-101 answer.
const MAX_ERROR_BODY: usize = 4096;

/// A parsed `ws://` or `wss://` URL (RFC 6455 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: the connection runs over TLS (feature `tls`).
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 when not given, 443 for `wss://`).
    pub port: u16,
    /// Path and query, at least `/`, ready to be sent as the request
    /// target (non-ASCII characters percent-encoded).
    pub resource: String,
    /// The value for the `Host` header (with the port if one was given).
    pub host_header: String,
}

/// Characters RFC 3986 allows as they are in a path or query (unreserved,
/// sub-delims, `:`, `@`, `/`, `?`); `%` only as the start of an escape.
fn is_target_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b)
}

/// Characters allowed in a host name (RFC 3986 reg-name, without
/// percent-escapes and sub-delims, which no DNS name uses).
fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

impl WsUrl {
    /// Parse `ws://host[:port][/path][?query]` (or `wss://...`) strictly.
    /// Other schemes give [`Error::UnsupportedScheme`], and so does
    /// `wss://` without the feature `tls`; everything else wrong is
    /// [`Error::InvalidUrl`] saying what:
    ///
    /// - control characters (CR, LF, TAB, NUL, DEL, ...) and spaces are
    ///   refused anywhere (a space would end the request target; write it
    ///   as `%20`), and so are the ASCII characters RFC 3986 does not allow
    ///   in a URL (`"` `<` `>` `\` `^` `` ` `` `{` `|` `}`) and a `%` that
    ///   does not start a `%XX` escape;
    /// - non-ASCII characters in the path and query are percent-encoded as
    ///   UTF-8 (the IRI-to-URI mapping of RFC 3987 §3.1), so
    ///   `ws://h/?user=张三` sends `/?user=%E5%BC%A0%E4%B8%89`;
    /// - the host must be an ASCII name (letters, digits, `-`, `.`, `_`,
    ///   `~`; give an international name in its `xn--` form), an IPv4
    ///   address, or an IPv6 address in brackets (`ws://[::1]:9001/`);
    /// - user info (`user:password@`) is refused, as are fragments
    ///   (RFC 6455 §3); the port, if given, must be 1 to 65535 in digits.
    ///
    /// ```
    /// # use wsproto::WsUrl;
    /// let u = WsUrl::parse("ws://[::1]:9001/chat?user=Zoë").unwrap();
    /// assert_eq!((u.host.as_str(), u.port), ("::1", 9001));
    /// assert_eq!(u.resource, "/chat?user=Zo%C3%AB");
    /// assert_eq!(u.host_header, "[::1]:9001");
    /// assert!(WsUrl::parse("ws://h/a HTTP/1.1\r\nX-Injected: yes").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<WsUrl> {
        let bad = |reason| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        if url.bytes().any(|b| b.is_ascii_control()) {
            return Err(bad(
                "contains a control character (CR, LF, TAB, NUL, ...), never allowed in a URL",
            ));
        }
        if url.contains(' ') {
            return Err(bad("contains a space; write it as %20"));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let tls = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if cfg!(feature = "tls") && scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(Error::UnsupportedScheme(scheme.to_owned()));
        };
        if rest.contains('#') {
            return Err(bad("fragments are not allowed in WebSocket URLs"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "user info (user:password@) is not supported in WebSocket URLs; \
                 send credentials in a header",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in host"))?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(bad("invalid IPv6 address between '[' and ']'"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("unexpected characters after ']'"))?,
                ),
            };
            (host, port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(bad("missing host"));
            }
            if !host.is_ascii() {
                return Err(bad(
                    "non-ASCII host name; give it in its ASCII (punycode, xn--) form",
                ));
            }
            if !host.bytes().all(is_host_char) {
                return Err(bad(
                    "invalid character in host name (only letters, digits, '-', '.', '_', '~')",
                ));
            }
            (host, port)
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad("invalid port: must be a number from 1 to 65535")),
            },
            None if tls => 443,
            None => 80,
        };
        let resource = match resource {
            "" => "/".to_owned(),
            r if r.starts_with('?') => format!("/{r}"),
            r => r.to_owned(),
        };
        Ok(WsUrl {
            tls,
            host: host.to_owned(),
            port,
            resource: encode_target(&resource).map_err(bad)?,
            host_header: authority.to_owned(),
        })
    }

    /// Check the fields (public, so they may have been set by hand) before
    /// they go into a request head.
    fn check(&self) -> Result<()> {
        let bad = |url: &str, reason| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        if !self.resource.starts_with('/') {
            return Err(bad(&self.resource, "the resource must start with '/'"));
        }
        if encode_target(&self.resource).as_deref() != Ok(self.resource.as_str()) {
            return Err(bad(
                &self.resource,
                "the resource has characters not allowed in a request target",
            ));
        }
        let host_ok = !self.host_header.is_empty()
            && self
                .host_header
                .bytes()
                .all(|b| is_host_char(b) || b"[]:".contains(&b));
        if !host_ok {
            return Err(bad(&self.host_header, "invalid Host header value"));
        }
        Ok(())
    }
}

/// `resource` as a request target: non-ASCII percent-encoded as UTF-8,
/// anything else not allowed refused.
fn encode_target(resource: &str) -> std::result::Result<String, &'static str> {
    let bytes = resource.as_bytes();
    let mut out = String::with_capacity(resource.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => {
                let escape = bytes.get(i + 1..i + 3);
                if !escape.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err("'%' not followed by two hex digits; write a literal % as %25");
                }
                out.push('%');
            }
            b if is_target_char(b) => out.push(char::from(b)),
            b if !b.is_ascii() => out.push_str(&format!("%{b:02X}")),
            b' ' => return Err("contains a space; write it as %20"),
            _ if b.is_ascii_control() => {
                return Err("contains a control character, never allowed in a URL")
            }
            _ => {
                return Err(
                    "contains a character not allowed in a URL (one of \"<>\\^`{|}); \
                     percent-encode it",
                )
            }
        }
    }
    Ok(out)
}

/// What a client sends: the URL plus optional subprotocols and headers,
/// and the time limits of [`connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// Where to connect.
    pub url: WsUrl,
    /// Subprotocols to offer in `Sec-WebSocket-Protocol`, in preference
    /// order. Each must be an RFC 9110 token.
    pub protocols: Vec<String>,
    /// Extra header fields (e.g. `Origin`, `Cookie`). Names must be RFC
    /// 9110 tokens, values must not contain CR, LF, NUL or other control
    /// characters but tabs: the handshake refuses them with
    /// [`Error::InvalidHeaderName`] / [`Error::InvalidHeaderValue`] before
    /// writing anything.
    pub headers: Vec<(String, String)>,
    /// How long [`connect_with`] waits for the TCP connection to each
    /// address the host resolves to (`None`: the system's time-out).
    /// Running out is [`Error::ConnectTimedOut`].
    pub connect_timeout: Option<Duration>,
    /// How long [`connect_with`] waits, once connected, for the handshake
    /// to complete (`None`: forever). Running out is
    /// [`Error::HandshakeTimedOut`]; the stream of the returned connection
    /// has no read or write time-out either way.
    pub handshake_timeout: Option<Duration>,
}

impl ClientRequest {
    /// A request for `url` ([`WsUrl::parse`]) with no subprotocols, extra
    /// headers or time-outs.
    pub fn new(url: &str) -> Result<ClientRequest> {
        Ok(ClientRequest {
            url: WsUrl::parse(url)?,
            protocols: Vec::new(),
            headers: Vec::new(),
            connect_timeout: None,
            handshake_timeout: None,
        })
    }

    /// Add an extra header field, checked now: [`Error::InvalidHeaderName`]
    /// or [`Error::InvalidHeaderValue`] if it could inject a line.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<ClientRequest> {
        check_header(name, value)?;
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Set [`ClientRequest::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ClientRequest {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Set [`ClientRequest::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ClientRequest {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// Check everything that goes into the request head.
    fn validate(&self) -> Result<()> {
        self.url.check()?;
        for protocol in &self.protocols {
            if !is_token(protocol) {
                return Err(Error::InvalidHeaderValue {
                    name: "Sec-WebSocket-Protocol".into(),
                    value: protocol.clone(),
                    reason: "is not a subprotocol name (an RFC 9110 token)",
                });
            }
        }
        self.headers
            .iter()
            .try_for_each(|(name, value)| check_header(name, value))
    }

    fn encode(&self, key: &str, extensions: Option<&str>) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            self.url.resource, self.url.host_header
        );
        if !self.protocols.is_empty() {
            out.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.protocols.join(", ")
            ));
        }
        if let Some(extensions) = extensions {
            out.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
        }
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        Ok(out.into_bytes())
    }
}

/// Connect over TCP to a `ws://` URL, or over TLS to a `wss://` URL
/// (feature `tls`: the server's certificate is checked against the WebPKI
/// roots, see `tls::default_client_config`), and do the handshake
/// with default limits. Returns the connection and the server's `101`
/// response.
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    connect_with(&ClientRequest::new(url)?, &Config::default())
}

/// Like [`connect`], with a full [`ClientRequest`] and [`Config`].
///
/// The request is checked before connecting. With
/// [`ClientRequest::connect_timeout`], each resolved address is tried in
/// turn for at most that long ([`Error::ConnectTimedOut`] if the last one
/// timed out); with [`ClientRequest::handshake_timeout`], the handshake
/// must complete within it once connected ([`Error::HandshakeTimedOut`]).
///
/// ```no_run
/// use std::time::Duration;
/// # fn main() -> wsproto::Result<()> {
/// let request = wsproto::ClientRequest::new("ws://127.0.0.1:9001/chat")?
///     .with_header("Origin", "http://127.0.0.1")?
///     .with_connect_timeout(Duration::from_secs(3))
///     .with_handshake_timeout(Duration::from_secs(5));
/// let (ws, _response) = wsproto::connect_with(&request, &wsproto::Config::default())?;
/// # Ok(()) }
/// ```
pub fn connect_with(
    request: &ClientRequest,
    config: &Config,
) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    #[cfg(feature = "tls")]
    if request.url.tls {
        return connect_tls_with(request, config, crate::tls::default_client_config());
    }
    connect_stream(request, config, MaybeTlsStream::Plain)
}

/// Like [`connect_with`], with your own TLS client config for a `wss://`
/// URL (your own CA, client certificates, ALPN, ...; see
/// [`crate::tls::client_config_with_ca_file`]). A `ws://` URL connects
/// without TLS. A certificate the config does not accept is
/// [`Error::Certificate`], saying what was wrong with it; any other TLS
/// failure is [`Error::Tls`]. The handshake time-out covers the TLS
/// handshake.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = wsproto::tls::client_config_with_ca_file("ca.pem".as_ref())?;
/// let request = wsproto::ClientRequest::new("wss://localhost:8443/?user=ann")?;
/// let (ws, _response) = wsproto::connect_tls_with(&request, &wsproto::Config::default(), tls)?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tls")]
pub fn connect_tls_with(
    request: &ClientRequest,
    config: &Config,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    if !request.url.tls {
        return connect_stream(request, config, MaybeTlsStream::Plain);
    }
    let host = request.url.host.clone();
    connect_stream(request, config, move |tcp| -> io::Result<MaybeTlsStream> {
        Ok(MaybeTlsStream::Tls(Box::new(
            crate::tls::TlsStream::connect(tcp, &host, tls)?,
        )))
    })
    .map_err(Error::classify)
}

/// Connect, wrap the socket, do the handshake.
fn connect_stream<S, R>(
    request: &ClientRequest,
    config: &Config,
    wrap: impl FnOnce(TcpStream) -> R,
) -> Result<(WebSocket<S>, Response)>
where
    S: Read + Write + SetTimeouts,
    R: IntoStream<S>,
{
    request.validate()?;
    let stream = tcp_connect(request)?;
    stream.set_nodelay(true)?;
    let stream = wrap(stream).into_stream()?;
    let handshake = ClientHandshake::new(stream, request, config)?;
    let (mut ws, response) = match request.handshake_timeout {
        Some(timeout) => handshake.handshake_with_deadline(Instant::now() + timeout)?,
        None => handshake.handshake().map_err(Error::from)?,
    };
    ws.set_close_timeout(Some(CLOSE_TIMEOUT));
    Ok((ws, response))
}

/// A stream or the error making it.
trait IntoStream<S> {
    fn into_stream(self) -> io::Result<S>;
}

impl IntoStream<MaybeTlsStream> for MaybeTlsStream {
    fn into_stream(self) -> io::Result<MaybeTlsStream> {
        Ok(self)
    }
}

impl<S> IntoStream<S> for io::Result<S> {
    fn into_stream(self) -> io::Result<S> {
        self
    }
}

/// How long a client from [`connect_with`] waits for the server's TCP
/// close after the close handshake (RFC 6455 §7.1.1).
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Connect to the request's host and port, within its connect time-out.
fn tcp_connect(request: &ClientRequest) -> Result<TcpStream> {
    let target = (request.url.host.as_str(), request.url.port);
    let Some(timeout) = request.connect_timeout else {
        return Ok(TcpStream::connect(target)?);
    };
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} resolves to no address", request.url.host),
    );
    for addr in target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(if is_blocked(&last) {
        Error::ConnectTimedOut {
            addr: request.url.host_header.clone(),
            timeout,
        }
    } else {
        Error::Io(last)
    })
}

/// Do the client handshake over an already connected stream: send the
/// request with a fresh random key, then check the answer: status 101,
/// `Upgrade: websocket`, `Connection: upgrade`, the right
/// `Sec-WebSocket-Accept`, a subprotocol only if offered, no extension.
/// A non-101 status becomes [`Error::HttpStatus`] with the body.
///
/// This blocks. On a stream that returns `WouldBlock` or `TimedOut` it
/// returns [`Error::Io`] of that kind and the handshake is lost: use
/// [`ClientHandshake`] on non-blocking streams.
pub fn client_handshake<S: Read + Write>(
    stream: S,
    request: &ClientRequest,
    config: &Config,
) -> Result<(WebSocket<S>, Response)> {
    ClientHandshake::new(stream, request, config)?
        .handshake()
        .map_err(Error::from)
}

/// The client handshake as a resumable state machine, for non-blocking
/// streams: it keeps the key, the part of the request not yet written and
/// the part of the answer read so far, so that a retry goes on with the
/// same request (one GET, one key) instead of starting over.
///
/// ```no_run
/// use std::net::TcpStream;
/// use wsproto::ClientHandshake;
/// use wsproto::HandshakeError;
/// # fn main() -> wsproto::Result<()> {
/// let request = wsproto::ClientRequest::new("ws://127.0.0.1:9001/")?;
/// let stream = TcpStream::connect("127.0.0.1:9001")?;
/// stream.set_nonblocking(true)?;
/// let mut hs = ClientHandshake::new(stream, &request, &wsproto::Config::default())?;
/// let (ws, response) = loop {
///     match hs.handshake() {
///         Ok(done) => break done,
///         // Wait for readiness (mio, poll, ...) and go on.
///         Err(HandshakeError::Interrupted(more)) => hs = more,
///         Err(HandshakeError::Failure(e)) => return Err(e),
///     }
/// };
/// # Ok(()) }
/// ```
pub struct ClientHandshake<S> {
    stream: S,
    config: Box<Config>,
    key: String,
    protocols: Vec<String>,
    state: Box<ClientState>,
    /// The kind of the last `WouldBlock`/`TimedOut` error.
    blocked_by: Option<io::ErrorKind>,
}

enum ClientState {
    /// Writing the request.
    Sending(Pending),
    /// Reading the response head.
    Reading(HeadReader),
    /// Reading the body of a refusal (at most `wanted` bytes).
    RefusalBody {
        status: u16,
        body: Vec<u8>,
        wanted: usize,
        declared: bool,
    },
    /// The `101` was checked; the connection can open.
    Done {
        response: Response,
        leftover: Vec<u8>,
        negotiated: Option<Negotiated>,
    },
    /// Failed or finished.
    Over,
}

impl<S> fmt::Debug for ClientHandshake<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientHandshake");
        d.field("key", &self.key);
        match &*self.state {
            ClientState::Sending(out) => d
                .field("state", &"sending")
                .field("written", &out.written()),
            ClientState::Reading(head) => d.field("state", &"reading").field("read", &head.len()),
            ClientState::RefusalBody { status, body, .. } => d
                .field("state", &"reading refusal body")
                .field("status", status)
                .field("read", &body.len()),
            ClientState::Done { .. } => d.field("state", &"done"),
            ClientState::Over => d.field("state", &"over"),
        };
        d.finish_non_exhaustive()
    }
}

impl<S> ClientHandshake<S> {
    /// Prepare the handshake on a connected `stream`: generate the key and
    /// encode the request. Nothing is written yet; an invalid request
    /// (URL fields, header fields, subprotocols) is an error here.
    pub fn new(stream: S, request: &ClientRequest, config: &Config) -> Result<ClientHandshake<S>> {
        let key = generate_key();
        #[cfg(feature = "deflate")]
        let offer = config.deflate.as_ref().map(crate::deflate::client_offer);
        #[cfg(not(feature = "deflate"))]
        let offer: Option<String> = None;
        let bytes = request.encode(&key, offer.as_deref())?;
        Ok(ClientHandshake {
            stream,
            config: Box::new(config.clone()),
            key,
            protocols: request.protocols.clone(),
            state: Box::new(ClientState::Sending(Pending::new(bytes))),
            blocked_by: None,
        })
    }

    /// The `Sec-WebSocket-Key` sent (the same across resumptions).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stream (e.g. to register it with an event loop).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably. Reading or writing through it directly breaks
    /// the handshake.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Whether the handshake is waiting to write (the request) rather than
    /// to read (the answer): which readiness to wait for.
    pub fn wants_write(&self) -> bool {
        matches!(*self.state, ClientState::Sending(_))
    }
}

impl<S: Read + Write> ClientHandshake<S> {
    /// Go on with the handshake: returns the connection and the `101`
    /// response, or [`HandshakeError::Interrupted`] to be resumed when the
    /// stream is ready, or [`HandshakeError::Failure`] (see
    /// [`client_handshake`] for the checks).
    pub fn handshake(
        mut self,
    ) -> std::result::Result<(WebSocket<S>, Response), HandshakeError<Self>> {
        match self.advance() {
            Ok(()) => self.finish().map_err(HandshakeError::Failure),
            Err(Error::Io(e)) if is_blocked(&e) => {
                self.blocked_by = Some(e.kind());
                Err(HandshakeError::Interrupted(self))
            }
            Err(e) => Err(HandshakeError::Failure(e)),
        }
    }

    /// Complete the handshake before `deadline` on a blocking stream, or
    /// fail with [`Error::HandshakeTimedOut`]. The stream's read and write
    /// time-outs are set to the time left before each call and restored to
    /// their original values afterwards, on success and on failure.
    pub fn handshake_with_deadline(mut self, deadline: Instant) -> Result<(WebSocket<S>, Response)>
    where
        S: SetTimeouts,
    {
        drive_until(&mut self, deadline, |hs| &hs.stream, Self::advance)?;
        self.finish()
    }

    /// Write and read as far as the stream allows; `Ok` once a `101` was
    /// received and checked.
    fn advance(&mut self) -> Result<()> {
        loop {
            let next = match &mut *self.state {
                ClientState::Sending(out) => {
                    out.write_to(&mut self.stream)?;
                    ClientState::Reading(HeadReader::default())
                }
                ClientState::Reading(head) => {
                    let (head, leftover) =
                        head.read(&mut self.stream, self.config.max_head_size)?;
                    *self.state = ClientState::Over;
                    self.answer(&head, leftover)?
                }
                ClientState::RefusalBody {
                    status,
                    body,
                    wanted,
                    declared,
                } => {
                    let mut chunk = [0u8; 1024];
                    while body.len() < *wanted {
                        let room = (*wanted - body.len()).min(chunk.len());
                        match self.stream.read(&mut chunk[..room]) {
                            Ok(0) => break,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) if is_blocked(&e) => return Err(e.into()),
                            // The status is the news; a broken body is not.
                            Err(_) => break,
                        }
                    }
                    let mut body = std::mem::take(body);
                    body.truncate(if *declared { *wanted } else { MAX_ERROR_BODY });
                    let status = *status;
                    *self.state = ClientState::Over;
                    return Err(Error::HttpStatus { status, body });
                }
                ClientState::Done { .. } => return Ok(()),
                ClientState::Over => {
                    return Err(Error::Io(io::Error::other("the handshake already ended")))
                }
            };
            *self.state = next;
        }
    }

    /// The state after a complete response head.
    fn answer(&self, head: &[u8], leftover: Vec<u8>) -> Result<ClientState> {
        let response = parse_response(head, self.config.max_headers)?;
        if response.status != 101 {
            // Keep the body that explains the refusal, bounded, reading no
            // further than the declared length.
            let declared = response
                .header("content-length")
                .and_then(|v| v.trim().parse::<usize>().ok());
            return Ok(ClientState::RefusalBody {
                status: response.status,
                body: leftover,
                wanted: declared.unwrap_or(0).min(MAX_ERROR_BODY),
                declared: declared.is_some(),
            });
        }
        check_response(&response, &self.protocols, &self.key)?;
        let extensions: Vec<&str> = response
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
            .map(|(_, v)| v.as_str())
            .collect();
        let negotiated: Option<Negotiated> = match config_deflate(&self.config) {
            #[cfg(feature = "deflate")]
            Some(deflate_config) => {
                crate::deflate::check_client_response(deflate_config, &extensions)?
            }
            _ if !extensions.is_empty() => {
                return Err(Error::UnexpectedExtension(extensions.join(", ")))
            }
            _ => None,
        };
        Ok(ClientState::Done {
            response,
            leftover,
            negotiated,
        })
    }

    /// Build the connection once the `101` is checked.
    fn finish(self) -> Result<(WebSocket<S>, Response)> {
        match *self.state {
            ClientState::Done {
                response,
                leftover,
                negotiated,
            } => Ok((
                open(
                    self.stream,
                    Role::Client,
                    &self.config,
                    leftover,
                    negotiated,
                ),
                response,
            )),
            _ => Err(Error::Io(io::Error::other("the handshake is not complete"))),
        }
    }
}

/// What the blocking entry points return for an interrupted handshake:
/// [`Error::Io`] of the kind that interrupted it (`WouldBlock` or
/// `TimedOut`).
impl<S> From<HandshakeError<ClientHandshake<S>>> for Error {
    fn from(e: HandshakeError<ClientHandshake<S>>) -> Error {
        match e {
            HandshakeError::Failure(e) => e,
            HandshakeError::Interrupted(hs) => blocked_error(hs.blocked_by),
        }
    }
}

fn parse_response(head: &[u8], max_headers: usize) -> Result<Response> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head).map_err(|e| parse_error(e, max_headers))? {
        httparse::Status::Complete(_) => {}
        httparse::Status::Partial => {
            return Err(Error::MalformedHttp("incomplete response head".into()))
        }
    }
    Ok(Response {
        status: resp.code.unwrap_or_default(),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    })
}

fn check_response(response: &Response, protocols: &[String], key: &str) -> Result<()> {
    require_token(&response.headers, "Upgrade", "websocket")?;
    require_token(&response.headers, "Connection", "upgrade")?;
    let accept = response
        .header("sec-websocket-accept")
        .ok_or(Error::MissingHeader("Sec-WebSocket-Accept"))?;
    if accept.trim() != accept_key(key) {
        return Err(Error::WrongAccept);
    }
    if let Some(protocol) = response.header("sec-websocket-protocol") {
        if !protocols.iter().any(|p| p == protocol.trim()) {
            return Err(Error::UnexpectedProtocol(protocol.to_owned()));
        }
    }
    Ok(())
}

/// The permessage-deflate settings, when the feature is compiled in and on.
#[cfg(feature = "deflate")]
fn config_deflate(config: &Config) -> Option<&crate::deflate::DeflateConfig> {
    config.deflate.as_ref()
}

#[cfg(not(feature = "deflate"))]
fn config_deflate(_: &Config) -> Option<&()> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://127.0.0.1:8000/?user=ann").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.resource.as_str()),
            ("127.0.0.1", 8000, "/?user=ann")
        );
        assert_eq!(u.host_header, "127.0.0.1:8000");
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!((u.port, u.resource.as_str()), (80, "/"));
        let u = WsUrl::parse("ws://[::1]:9001?x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.resource.as_str()),
            ("::1", 9001, "/?x")
        );
        #[cfg(not(feature = "tls"))]
        assert!(matches!(WsUrl::parse("wss://a/"), Err(Error::UnsupportedScheme(s)) if s == "wss"));
        #[cfg(feature = "tls")]
        {
            let u = WsUrl::parse("wss://a/").unwrap();
            assert!(u.tls);
            assert_eq!(u.port, 443);
        }
        assert!(matches!(
            WsUrl::parse("http://a/"),
            Err(Error::UnsupportedScheme(_))
        ));
        for bad in [
            "127.0.0.1:80",
            "ws://",
            "ws://:80/",
            "ws://a:x/",
            "ws://a/#frag",
            "ws://a:99999/",
        ] {
            assert!(
                matches!(WsUrl::parse(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
