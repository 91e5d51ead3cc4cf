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

use std::io::{Read, Write};

use base64::Engine as _;

use super::head::{parse_error, read_head, Response};
use super::{accept_key, has_token, require_token};
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
    /// # use wsproto::handshake::server::Request;
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
/// is negotiated when `config.deflate` allows it (RFC 7692 §7.1).
pub fn upgrade<S: Read + Write>(
    mut stream: S,
    request: &Request,
    accept: Accept,
    config: &Config,
    leftover: Vec<u8>,
) -> Result<WebSocket<S>> {
    match request.check_upgrade() {
        Ok(accept_value) => switch(stream, &accept_value, request, accept, config, leftover),
        Err(e) => {
            let _ = error_response(&e).write_to(&mut stream);
            Err(e)
        }
    }
}

/// Write the `101` answer for a checked request and build the connection.
fn switch<S: Read + Write>(
    mut stream: S,
    accept_value: &str,
    request: &Request,
    accept: Accept,
    config: &Config,
    leftover: Vec<u8>,
) -> Result<WebSocket<S>> {
    let mut response = Response::new(101)
        .with_header("Upgrade", "websocket")
        .with_header("Connection", "Upgrade")
        .with_header("Sec-WebSocket-Accept", accept_value);
    if let Some(protocol) = &accept.protocol {
        response = response.with_header("Sec-WebSocket-Protocol", protocol);
    }
    #[cfg(feature = "deflate")]
    let deflate = config.deflate.as_ref().and_then(|deflate_config| {
        let offers = request.header_values("sec-websocket-extensions");
        crate::deflate::negotiate_server(deflate_config, &offers)
            .map(|(params, header)| (params, header, deflate_config))
    });
    #[cfg(feature = "deflate")]
    if let Some((_, header, _)) = &deflate {
        response = response.with_header("Sec-WebSocket-Extensions", header);
    }
    #[cfg(not(feature = "deflate"))]
    let _ = request;
    response.headers.extend(accept.headers);
    response.write_to(&mut stream)?;
    #[allow(unused_mut)]
    let mut ws = WebSocket::from_partially_read(stream, Role::Server, config, leftover);
    #[cfg(feature = "deflate")]
    if let Some((params, _, deflate_config)) = deflate {
        ws.enable_deflate(params, deflate_config);
    }
    Ok(ws)
}

/// Accept a WebSocket connection on `stream`: read the request, check it
/// (answering 400/405/426/431 and returning the error if it is bad), and
/// switch protocols.
///
/// Set a read time-out on the stream first: a client that never finishes its
/// request head would otherwise hold this call forever (slowloris).
pub fn accept<S: Read + Write>(stream: S) -> Result<WebSocket<S>> {
    accept_with(stream, &Config::default(), |_| Ok(Accept::default()))
}

/// Like [`accept`], with `config` and a callback that decides: `Ok(Accept)`
/// to switch protocols, `Err(Response)` to refuse with that response (then
/// this returns [`Error::Rejected`] with its status).
///
/// ```no_run
/// use wsproto::handshake::server::{accept_with, Accept};
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
pub fn accept_with<S, F>(mut stream: S, config: &Config, decide: F) -> Result<WebSocket<S>>
where
    S: Read + Write,
    F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
{
    let checked = read_request(&mut stream, config)
        .and_then(|(request, leftover)| Ok((request.check_upgrade()?, request, leftover)));
    let (accept_value, request, leftover) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            if e.http_status().is_some() {
                let _ = error_response(&e).write_to(&mut stream);
            }
            return Err(e);
        }
    };
    match decide(&request) {
        Ok(accept) => switch(stream, &accept_value, &request, accept, config, leftover),
        Err(response) => {
            response.write_to(&mut stream)?;
            Err(Error::Rejected(response.status))
        }
    }
}
