//! Server side of the opening handshake (RFC 6455 §4.2).
//!
//! Three levels, pick one:
//! - [`accept`]: read and check the request, accept everything;
//! - [`accept_with`]: the same, but a callback sees the [`Request`] (path,
//!   query, headers) first and may accept with a subprotocol and extra
//!   headers, or refuse with any HTTP [`Response`];
//! - [`read_request`] + [`Request::is_upgrade`] + [`upgrade`]: for servers
//!   that also answer plain HTTP on the same port (the chat server serves
//!   its web page this way).
//!
//! These block; [`ServerHandshake`] is the same handshake as a resumable
//! state machine for non-blocking streams, and [`accept_with_deadline`]
//! bounds it in time on a blocking stream.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Instant;

use base64::Engine as _;

use super::head::{parse_error, read_head, HeadReader, Pending, Response};
use super::{
    accept_key, blocked_error, check_header, drive_until, has_token, is_blocked, is_token, open,
    require_token, HandshakeError, Negotiated, SetTimeouts,
};
use crate::config::{Config, Role};
use crate::error::{Error, Result};
use crate::websocket::WebSocket;

/// An HTTP request head, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    /// Minor HTTP version: 1 for HTTP/1.1.
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
}

/// How the application accepts an upgrade: what to add to the `101` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    /// The subprotocol selected from the client's `Sec-WebSocket-Protocol`
    /// offer, if any (RFC 6455 §4.2.2). It must be one the client offered.
    pub protocol: Option<String>,
    /// Extra header fields for the response (e.g. `Set-Cookie`).
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent, e.g. `/chat?user=ann`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The first value of query parameter `name`, percent-decoded
    /// (`+` as space), or `None` if absent or not valid UTF-8 once decoded.
    ///
    /// ```
    /// # use wsproto::Request;
    /// let req = Request::parse(b"GET /?user=%E5%BC%A0%E4%B8%89&x=1 HTTP/1.1\r\nHost: h\r\n\r\n", 100).unwrap();
    /// assert_eq!(req.query_param("user").as_deref(), Some("张三"));
    /// assert_eq!(req.query_param("nope"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k)? == name)
                .then(|| percent_decode(v))
                .flatten()
        })
    }

    /// The first header field called `name` (case-insensitive), if it is
    /// valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first header field called `name` (case-insensitive), as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of header field `name` (case-insensitive) that is valid
    /// UTF-8, in order (for list-valued fields sent more than once).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect()
    }

    /// All header fields in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Whether the client asks for a WebSocket upgrade at all (an `Upgrade`
    /// header naming `websocket`). A request without it is plain HTTP.
    pub fn is_upgrade(&self) -> bool {
        self.header_values("upgrade")
            .iter()
            .any(|v| has_token(v.as_bytes(), "websocket"))
    }

    /// The subprotocols the client offers in `Sec-WebSocket-Protocol`.
    pub fn protocols(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// Parse a complete request head (ending with CRLFCRLF).
    pub fn parse(head: &[u8], max_headers: usize) -> Result<Request> {
        let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head).map_err(|e| parse_error(e, max_headers))? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => {
                return Err(Error::MalformedHttp("incomplete request head".into()))
            }
        }
        Ok(Request {
            method: req.method.unwrap_or_default().to_owned(),
            target: req.path.unwrap_or_default().to_owned(),
            version: req.version.unwrap_or_default(),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_owned()))
                .collect(),
        })
    }

    /// Check every RFC 6455 §4.2.1 requirement and return the
    /// `Sec-WebSocket-Accept` value to answer with.
    ///
    /// GET, HTTP/1.1 or later, a `Host`, `Upgrade` naming `websocket`,
    /// `Connection` naming `upgrade`, `Sec-WebSocket-Version: 13`, and a
    /// `Sec-WebSocket-Key` that is base64 of exactly 16 bytes.
    pub fn check_upgrade(&self) -> Result<String> {
        if self.method != "GET" {
            return Err(Error::MethodNotGet(self.method.clone()));
        }
        if self.version < 1 {
            return Err(Error::WrongHttpVersion);
        }
        self.single_nonempty("Host", "host")?;
        require_token(&self.headers, "Upgrade", "websocket")?;
        require_token(&self.headers, "Connection", "upgrade")?;
        let version = self
            .header_bytes("sec-websocket-version")
            .ok_or(Error::MissingHeader("Sec-WebSocket-Version"))?;
        if version.trim_ascii() != b"13" {
            return Err(Error::UnsupportedVersion(
                String::from_utf8_lossy(version).into_owned(),
            ));
        }
        let key = self.single_nonempty("Sec-WebSocket-Key", "sec-websocket-key")?;
        let key =
            std::str::from_utf8(key.trim_ascii()).map_err(|_| invalid("Sec-WebSocket-Key", key))?;
        match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(raw) if raw.len() == 16 => Ok(accept_key(key)),
            _ => Err(invalid("Sec-WebSocket-Key", key.as_bytes())),
        }
    }

    /// The value of a header that must appear exactly once and not be empty.
    fn single_nonempty(&self, name: &'static str, lower: &str) -> Result<&[u8]> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(lower))
            .map(|(_, v)| v.as_slice());
        match (values.next(), values.next()) {
            (Some(v), None) if !v.trim_ascii().is_empty() => Ok(v),
            (Some(v), Some(_)) => Err(invalid(name, v)),
            _ => Err(Error::MissingHeader(name)),
        }
    }
}

fn invalid(name: &'static str, value: &[u8]) -> Error {
    Error::InvalidHeader {
        name,
        value: String::from_utf8_lossy(value).into_owned(),
    }
}

/// Decode `%XX` escapes and `+`; `None` on a bad escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Read a request head from `stream` with the limits in `config`.
///
/// Returns the request and the bytes read after its head (a pipelined
/// first frame, or an HTTP body), which must be handed on, e.g. to
/// [`upgrade`].
///
/// This blocks: on `WouldBlock` or `TimedOut` it returns [`Error::Io`] and
/// the bytes read so far are lost, so do not call it again on the same
/// stream (the rest of the head would be garbage); use [`ServerHandshake`]
/// on non-blocking streams.
pub fn read_request<R: Read + ?Sized>(
    stream: &mut R,
    config: &Config,
) -> Result<(Request, Vec<u8>)> {
    let (head, leftover) = read_head(stream, config.max_head_size)?;
    Ok((Request::parse(&head, config.max_headers)?, leftover))
}

/// The HTTP answer to a request that failed [`Request::check_upgrade`] or
/// could not be read: the status from [`Error::http_status`], the error as
/// the body, and `Sec-WebSocket-Version: 13` with 426 (RFC 6455 §4.4).
pub fn error_response(error: &Error) -> Response {
    let status = error.http_status().unwrap_or(400);
    let mut response = Response::text(status, &error.to_string());
    match status {
        426 => response = response.with_header("Sec-WebSocket-Version", "13"),
        405 => response = response.with_header("Allow", "GET"),
        _ => {}
    }
    response
}

/// Answer `request` with `101 Switching Protocols` and return the
/// connection; `leftover` comes from [`read_request`].
///
/// The request is checked first ([`Request::check_upgrade`]); a bad one is
/// answered with [`error_response`] and the error returned. permessage-deflate
/// is negotiated when `config.deflate` allows it (RFC 7692 §7.1). Invalid
/// `accept` fields ([`Accept`]) are an error before anything is written.
/// Blocking: a `WouldBlock` while writing the `101` is [`Error::Io`].
pub fn upgrade<S: Read + Write>(
    mut stream: S,
    request: &Request,
    accept: Accept,
    config: &Config,
    leftover: Vec<u8>,
) -> Result<WebSocket<S>> {
    match request.check_upgrade() {
        Ok(accept_value) => {
            let (response, negotiated) = switching(&accept_value, request, accept, config)?;
            response.write_to(&mut stream)?;
            Ok(open(stream, Role::Server, config, leftover, negotiated))
        }
        Err(e) => {
            let _ = error_response(&e).write_to(&mut stream);
            Err(e)
        }
    }
}

/// The `101` answer for a checked request, and the permessage-deflate
/// parameters it agrees to. Fails if `accept` holds a subprotocol that is
/// not a token or a header field that could inject a line.
fn switching(
    accept_value: &str,
    request: &Request,
    accept: Accept,
    config: &Config,
) -> Result<(Response, Option<Negotiated>)> {
    let mut response = Response::new(101)
        .with_header("Upgrade", "websocket")
        .with_header("Connection", "Upgrade")
        .with_header("Sec-WebSocket-Accept", accept_value);
    if let Some(protocol) = &accept.protocol {
        if !is_token(protocol) {
            return Err(Error::InvalidHeaderValue {
                name: "Sec-WebSocket-Protocol".into(),
                value: protocol.clone(),
                reason: "is not a subprotocol name (an RFC 9110 token)",
            });
        }
        response = response.with_header("Sec-WebSocket-Protocol", protocol);
    }
    #[allow(unused_mut)]
    let mut negotiated = None;
    #[cfg(feature = "deflate")]
    if let Some(deflate_config) = &config.deflate {
        let offers = request.header_values("sec-websocket-extensions");
        if let Some((params, header)) = crate::deflate::negotiate_server(deflate_config, &offers) {
            response = response.with_header("Sec-WebSocket-Extensions", &header);
            negotiated = Some(params);
        }
    }
    #[cfg(not(feature = "deflate"))]
    let _ = (request, config);
    for (name, value) in &accept.headers {
        check_header(name, value)?;
    }
    response.headers.extend(accept.headers);
    Ok((response, negotiated))
}

/// Accept a WebSocket connection on `stream`: read the request, check it
/// (answering 400/405/426/431 and returning the error if it is bad), and
/// switch protocols.
///
/// Set a read time-out on the stream first, or use
/// [`accept_with_deadline`]: a client that never finishes its request head
/// would otherwise hold this call forever (slowloris).
pub fn accept<S: Read + Write>(stream: S) -> Result<WebSocket<S>> {
    accept_with(stream, &Config::default(), |_| Ok(Accept::default()))
}

/// Like [`accept`], with `config` and a callback that decides: `Ok(Accept)`
/// to switch protocols, `Err(Response)` to refuse with that response (then
/// this returns [`Error::Rejected`] with its status). The callback runs
/// once, when the request head is complete and valid.
///
/// This blocks. On a stream that returns `WouldBlock` or `TimedOut` it
/// returns [`Error::Io`] of that kind, and what was read is lost (nothing
/// is answered; in particular never a 400): use [`ServerHandshake`] on
/// non-blocking streams, [`accept_with_deadline`] for a time limit.
///
/// ```no_run
/// use wsproto::{accept_with, Accept};
/// use wsproto::Response;
/// # fn main() -> wsproto::Result<()> {
/// let listener = std::net::TcpListener::bind("127.0.0.1:8000")?;
/// let (stream, _) = listener.accept()?;
/// let mut user = None;
/// let ws = accept_with(stream, &wsproto::Config::default(), |req| {
///     user = req.query_param("user").filter(|u| !u.is_empty());
///     match user {
///         Some(_) => Ok(Accept::default()),
///         None => Err(Response::text(400, "missing ?user=NAME")),
///     }
/// })?;
/// # Ok(()) }
/// ```
pub fn accept_with<S, F>(stream: S, config: &Config, decide: F) -> Result<WebSocket<S>>
where
    S: Read + Write,
    F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
{
    ServerHandshake::new(stream, config)
        .handshake_with(decide)
        .map_err(Error::from)
}

/// Like [`accept_with`], but the whole handshake (reading the request,
/// writing the answer) must end before `deadline`, or this fails with
/// [`Error::HandshakeTimedOut`] (nothing more is written; answer
/// `error_response(&e)`, a 408, yourself if you want to).
///
/// The stream must be blocking: its read and write time-outs are set to
/// the time left before each read and write, and restored to what they
/// were before returning, on success and on failure.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use wsproto::{accept_with_deadline, Accept};
/// # fn main() -> wsproto::Result<()> {
/// let listener = std::net::TcpListener::bind("127.0.0.1:8000")?;
/// let (stream, _) = listener.accept()?;
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let ws = accept_with_deadline(stream, &wsproto::Config::default(), deadline, |_| {
///     Ok(Accept::default())
/// })?;
/// # Ok(()) }
/// ```
pub fn accept_with_deadline<S, F>(
    stream: S,
    config: &Config,
    deadline: Instant,
    decide: F,
) -> Result<WebSocket<S>>
where
    S: Read + Write + SetTimeouts,
    F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
{
    ServerHandshake::new(stream, config).handshake_with_deadline(deadline, decide)
}

/// The server handshake as a resumable state machine, for non-blocking
/// streams: it keeps the bytes of the request head read so far and the
/// bytes of the answer not yet written.
///
/// Create it with [`ServerHandshake::new`] when a connection is accepted,
/// and call [`ServerHandshake::handshake_with`] (or
/// [`ServerHandshake::handshake`]) whenever the stream may be ready. Each
/// call reads and writes as far as the stream allows; on `WouldBlock` (or
/// `TimedOut`) it returns [`HandshakeError::Interrupted`] with the
/// handshake, to be called again on the next readiness event. The decision
/// callback runs exactly once, in the call during which the request head
/// becomes complete and passes [`Request::check_upgrade`]; later calls
/// ignore the callback they are given. A malformed request or a refusal is
/// answered first (resumably too) and then reported as
/// [`HandshakeError::Failure`].
///
/// ```no_run
/// use std::collections::HashMap;
/// use std::net::{TcpListener, TcpStream};
/// use wsproto::{Accept, ServerHandshake};
/// use wsproto::HandshakeError;
/// use wsproto::{Config, WebSocket};
///
/// # fn main() -> std::io::Result<()> {
/// let listener = TcpListener::bind("127.0.0.1:9001")?;
/// listener.set_nonblocking(true)?;
/// let config = Config::default();
/// let mut pending: Vec<ServerHandshake<TcpStream>> = Vec::new();
/// let mut open: Vec<WebSocket<TcpStream>> = Vec::new();
/// loop {
///     // An event loop (mio, polling, ...) would wake up on readiness;
///     // this one just polls everything.
///     if let Ok((stream, _)) = listener.accept() {
///         stream.set_nonblocking(true)?;
///         pending.push(ServerHandshake::new(stream, &config));
///     }
///     for hs in std::mem::take(&mut pending) {
///         match hs.handshake_with(|req| match req.path() {
///             "/chat" => Ok(Accept::default()),
///             _ => Err(wsproto::Response::text(404, "try /chat")),
///         }) {
///             Ok(ws) => open.push(ws),
///             Err(HandshakeError::Interrupted(hs)) => pending.push(hs),
///             Err(HandshakeError::Failure(e)) => eprintln!("handshake failed: {e}"),
///         }
///     }
///     # break;
/// }
/// # Ok(()) }
/// ```
pub struct ServerHandshake<S> {
    stream: S,
    config: Box<Config>,
    state: Box<ServerState>,
    /// The kind of the last `WouldBlock`/`TimedOut` error.
    blocked_by: Option<io::ErrorKind>,
}

enum ServerState {
    /// Reading the request head.
    Reading(HeadReader),
    /// Writing the `101`; then the connection opens.
    Switching {
        out: Pending,
        leftover: Vec<u8>,
        negotiated: Option<Negotiated>,
    },
    /// Writing a refusal; then the handshake fails with `error`.
    Refusing { out: Pending, error: Error },
    /// Failed or finished; nothing more to do.
    Over,
}

impl<S> fmt::Debug for ServerHandshake<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ServerHandshake");
        match &*self.state {
            ServerState::Reading(head) => d.field("state", &"reading").field("read", &head.len()),
            ServerState::Switching { out, .. } => d
                .field("state", &"writing 101")
                .field("written", &out.written()),
            ServerState::Refusing { out, error } => d
                .field("state", &"refusing")
                .field("written", &out.written())
                .field("error", error),
            ServerState::Over => d.field("state", &"over"),
        };
        d.finish_non_exhaustive()
    }
}

impl<S> ServerHandshake<S> {
    /// A handshake on a freshly accepted `stream` (blocking or not), with
    /// the limits and permessage-deflate settings of `config`. Nothing is
    /// read or written yet.
    pub fn new(stream: S, config: &Config) -> ServerHandshake<S> {
        ServerHandshake {
            stream,
            config: Box::new(config.clone()),
            state: Box::new(ServerState::Reading(HeadReader::default())),
            blocked_by: None,
        }
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

    /// Whether the handshake is waiting to read (the request head) rather
    /// than to write (the answer): which readiness to wait for.
    pub fn wants_read(&self) -> bool {
        matches!(*self.state, ServerState::Reading(_))
    }
}

impl<S: Read + Write> ServerHandshake<S> {
    /// Go on with the handshake, accepting any valid upgrade with no
    /// subprotocol and no extra headers.
    pub fn handshake(self) -> std::result::Result<WebSocket<S>, HandshakeError<Self>> {
        self.handshake_with(|_| Ok(Accept::default()))
    }

    /// Go on with the handshake; `decide` (see [`accept_with`]) runs once,
    /// when the request head is complete and valid. Returns the connection,
    /// or [`HandshakeError::Interrupted`] to be resumed when the stream is
    /// ready, or [`HandshakeError::Failure`].
    pub fn handshake_with<F>(
        mut self,
        decide: F,
    ) -> std::result::Result<WebSocket<S>, HandshakeError<Self>>
    where
        F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
    {
        let mut decide = Some(decide);
        match self.advance(&mut decide) {
            Ok(()) => self.finish().map_err(HandshakeError::Failure),
            Err(Error::Io(e)) if is_blocked(&e) => {
                self.blocked_by = Some(e.kind());
                Err(HandshakeError::Interrupted(self))
            }
            Err(e) => Err(HandshakeError::Failure(e)),
        }
    }

    /// Complete the handshake before `deadline` on a blocking stream, or
    /// fail with [`Error::HandshakeTimedOut`]; see [`accept_with_deadline`].
    /// The stream's read and write time-outs are restored in every case.
    pub fn handshake_with_deadline<F>(
        mut self,
        deadline: Instant,
        decide: F,
    ) -> Result<WebSocket<S>>
    where
        S: SetTimeouts,
        F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
    {
        let mut decide = Some(decide);
        drive_until(
            &mut self,
            deadline,
            |hs| &hs.stream,
            |hs| hs.advance(&mut decide),
        )?;
        self.finish()
    }

    /// Read and write as far as the stream allows. `Ok` once the `101` is
    /// written; a blocked stream is `Err(Error::Io)` with the state kept.
    fn advance<F>(&mut self, decide: &mut Option<F>) -> Result<()>
    where
        F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
    {
        loop {
            match &mut *self.state {
                ServerState::Reading(head) => {
                    let next = match head.read(&mut self.stream, self.config.max_head_size) {
                        Ok((head, leftover)) => self.decide(&head, leftover, decide),
                        Err(Error::Io(e)) => return Err(Error::Io(e)),
                        Err(e) => refusal(e),
                    };
                    *self.state = next;
                }
                ServerState::Switching { out, .. } => {
                    out.write_to(&mut self.stream)?;
                    return Ok(());
                }
                ServerState::Refusing { out, .. } => {
                    let written = out.write_to(&mut self.stream);
                    if let Err(e) = &written {
                        if is_blocked(e) {
                            return written.map_err(Error::from);
                        }
                    }
                    // Written or not (the peer may be gone): the refusal's
                    // reason is the error.
                    let ServerState::Refusing { error, .. } =
                        std::mem::replace(&mut *self.state, ServerState::Over)
                    else {
                        unreachable!()
                    };
                    return Err(error);
                }
                ServerState::Over => {
                    return Err(Error::Io(io::Error::other("the handshake already ended")))
                }
            }
        }
    }

    /// The state after a complete request head.
    fn decide<F>(&self, head: &[u8], leftover: Vec<u8>, decide: &mut Option<F>) -> ServerState
    where
        F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
    {
        let request = match Request::parse(head, self.config.max_headers) {
            Ok(request) => request,
            Err(e) => return refusal(e),
        };
        let accept_value = match request.check_upgrade() {
            Ok(value) => value,
            Err(e) => return refusal(e),
        };
        let Some(decide) = decide.take() else {
            return ServerState::Over;
        };
        let answer = match decide(&request) {
            Ok(accept) => switching(&accept_value, &request, accept, &self.config),
            Err(response) => {
                return match response.encode() {
                    Ok(bytes) => ServerState::Refusing {
                        out: Pending::new(bytes),
                        error: Error::Rejected(response.status),
                    },
                    // An invalid refusal from the application: nothing written.
                    Err(e) => refuse_silently(e),
                };
            }
        };
        match answer.and_then(|(response, negotiated)| Ok((response.encode()?, negotiated))) {
            Ok((bytes, negotiated)) => ServerState::Switching {
                out: Pending::new(bytes),
                leftover,
                negotiated,
            },
            Err(e) => refuse_silently(e),
        }
    }

    /// Build the connection once the `101` is written.
    fn finish(self) -> Result<WebSocket<S>> {
        match *self.state {
            ServerState::Switching {
                leftover,
                negotiated,
                ..
            } => Ok(open(
                self.stream,
                Role::Server,
                &self.config,
                leftover,
                negotiated,
            )),
            _ => Err(Error::Io(io::Error::other("the handshake is not complete"))),
        }
    }
}

/// The state that answers a bad request with [`error_response`] (when the
/// error has an HTTP status) and then fails with `error`.
fn refusal(error: Error) -> ServerState {
    match error.http_status() {
        Some(_) => match error_response(&error).encode() {
            Ok(bytes) => ServerState::Refusing {
                out: Pending::new(bytes),
                error,
            },
            Err(e) => refuse_silently(e),
        },
        None => refuse_silently(error),
    }
}

/// The state that fails with `error` without writing anything.
fn refuse_silently(error: Error) -> ServerState {
    ServerState::Refusing {
        out: Pending::default(),
        error,
    }
}

/// What the blocking entry points return for an interrupted handshake:
/// [`Error::Io`] of the kind that interrupted it (`WouldBlock` or
/// `TimedOut`), or, if it was interrupted while writing a refusal, the
/// reason for the refusal.
impl<S> From<HandshakeError<ServerHandshake<S>>> for Error {
    fn from(e: HandshakeError<ServerHandshake<S>>) -> Error {
        match e {
            HandshakeError::Failure(e) => e,
            HandshakeError::Interrupted(hs) => match *hs.state {
                ServerState::Refusing { error, .. } => error,
                _ => blocked_error(hs.blocked_by),
            },
        }
    }
}
