//! Client side of the opening handshake (RFC 6455 §4.1).

use std::io::{Read, Write};
use std::net::TcpStream;

use super::head::{parse_error, read_head, Response};
use super::{accept_key, generate_key, require_token};
use crate::config::{Config, Role};
use crate::error::{Error, Result};
use crate::websocket::WebSocket;

/// Longest error body kept from a non-101 answer.
const MAX_ERROR_BODY: usize = 4096;

/// A parsed `ws://` URL (RFC 6455 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 when not given).
    pub port: u16,
    /// Path and query, at least `/`.
    pub resource: String,
    /// The value for the `Host` header (with the port if one was given).
    pub host_header: String,
}

impl WsUrl {
    /// Parse `ws://host[:port][/path][?query]`. `wss://` and other schemes
    /// give [`Error::UnsupportedScheme`]; fragments are refused (RFC 6455 §3).
    pub fn parse(url: &str) -> Result<WsUrl> {
        let bad = |reason| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        if !scheme.eq_ignore_ascii_case("ws") {
            return Err(Error::UnsupportedScheme(scheme.to_owned()));
        }
        if rest.contains('#') {
            return Err(bad("fragments are not allowed in WebSocket URLs"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        let resource = match resource {
            "" => "/".to_owned(),
            r if r.starts_with('?') => format!("/{r}"),
            r => r.to_owned(),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("missing host or unsupported user info"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
            None => 80,
        };
        Ok(WsUrl {
            host: host.to_owned(),
            port,
            resource,
            host_header: authority.to_owned(),
        })
    }
}

/// What a client sends: the URL plus optional subprotocols and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// Where to connect.
    pub url: WsUrl,
    /// Subprotocols to offer in `Sec-WebSocket-Protocol`, in preference order.
    pub protocols: Vec<String>,
    /// Extra header fields (e.g. `Origin`, `Cookie`).
    pub headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// A request for `url` with no subprotocols or extra headers.
    pub fn new(url: &str) -> Result<ClientRequest> {
        Ok(ClientRequest {
            url: WsUrl::parse(url)?,
            protocols: Vec::new(),
            headers: Vec::new(),
        })
    }

    fn encode(&self, key: &str, extensions: Option<&str>) -> Vec<u8> {
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
        out.into_bytes()
    }
}

/// Connect over TCP to a `ws://` URL and do the handshake with default limits.
/// Returns the connection and the server's `101` response.
pub fn connect(url: &str) -> Result<(WebSocket<TcpStream>, Response)> {
    connect_with(&ClientRequest::new(url)?, &Config::default())
}

/// Like [`connect`], with a full [`ClientRequest`] and [`Config`].
pub fn connect_with(
    request: &ClientRequest,
    config: &Config,
) -> Result<(WebSocket<TcpStream>, Response)> {
    let stream = TcpStream::connect((request.url.host.as_str(), request.url.port))?;
    stream.set_nodelay(true)?;
    client_handshake(stream, request, config)
}

/// Do the client handshake over an already connected stream: send the
/// request with a fresh random key, then check the answer: status 101,
/// `Upgrade: websocket`, `Connection: upgrade`, the right
/// `Sec-WebSocket-Accept`, a subprotocol only if offered, no extension.
/// A non-101 status becomes [`Error::HttpStatus`] with the body.
pub fn client_handshake<S: Read + Write>(
    mut stream: S,
    request: &ClientRequest,
    config: &Config,
) -> Result<(WebSocket<S>, Response)> {
    let key = generate_key();
    #[cfg(feature = "deflate")]
    let offer = config.deflate.as_ref().map(crate::deflate::client_offer);
    #[cfg(not(feature = "deflate"))]
    let offer: Option<String> = None;
    stream.write_all(&request.encode(&key, offer.as_deref()))?;
    stream.flush()?;
    let (head, mut leftover) = read_head(&mut stream, config.max_head_size)?;
    let response = parse_response(&head, config.max_headers)?;
    if response.status != 101 {
        // Keep the body that explains the refusal, bounded, reading no
        // further than the declared length.
        let declared = response
            .header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok());
        let wanted = declared.unwrap_or(0).min(MAX_ERROR_BODY);
        if leftover.len() < wanted {
            let mut rest = (&mut stream).take((wanted - leftover.len()) as u64);
            let _ = rest.read_to_end(&mut leftover);
        }
        leftover.truncate(declared.map_or(MAX_ERROR_BODY, |_| wanted));
        return Err(Error::HttpStatus {
            status: response.status,
            body: leftover,
        });
    }
    check_response(&response, request, &key)?;
    #[allow(unused_mut)]
    let mut ws = WebSocket::from_partially_read(stream, Role::Client, config, leftover);
    let extensions: Vec<&str> = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, v)| v.as_str())
        .collect();
    match config_deflate(config) {
        #[cfg(feature = "deflate")]
        Some(deflate_config) => {
            if let Some(params) =
                crate::deflate::check_client_response(deflate_config, &extensions)?
            {
                ws.enable_deflate(params, deflate_config);
            }
        }
        _ if !extensions.is_empty() => {
            return Err(Error::UnexpectedExtension(extensions.join(", ")))
        }
        _ => {}
    }
    Ok((ws, response))
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

fn check_response(response: &Response, request: &ClientRequest, key: &str) -> Result<()> {
    require_token(&response.headers, "Upgrade", "websocket")?;
    require_token(&response.headers, "Connection", "upgrade")?;
    let accept = response
        .header("sec-websocket-accept")
        .ok_or(Error::MissingHeader("Sec-WebSocket-Accept"))?;
    if accept.trim() != accept_key(key) {
        return Err(Error::WrongAccept);
    }
    if let Some(protocol) = response.header("sec-websocket-protocol") {
        if !request.protocols.iter().any(|p| p == protocol.trim()) {
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
        assert!(matches!(WsUrl::parse("wss://a/"), Err(Error::UnsupportedScheme(s)) if s == "wss"));
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
