//! Reading an HTTP head from a stream with limits, and the HTTP response
//! type both sides use.

use std::io::{self, Read, Write};

use crate::error::{Error, Result};

/// Read bytes until the blank line that ends an HTTP head.
///
/// Returns the head (including the final CRLFCRLF) and whatever was read
/// after it, which belongs to the next protocol layer and must not be lost.
/// At most `max` bytes of head are accepted.
pub(crate) fn read_head<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024.min(max + 4));
    let mut chunk = [0u8; 1024];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err(Error::UnexpectedEof),
            Ok(0) => {
                return Err(Error::MalformedHttp(
                    "connection closed before the end of the HTTP head".into(),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let search_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = find_blank_line(&buf[search_from..]) {
            let end = search_from + pos + 4;
            if end > max {
                return Err(Error::HeadTooLarge(max));
            }
            let leftover = buf.split_off(end);
            return Ok((buf, leftover));
        }
        if buf.len() > max {
            return Err(Error::HeadTooLarge(max));
        }
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Map an `httparse` error to ours.
pub(crate) fn parse_error(e: httparse::Error, max_headers: usize) -> Error {
    match e {
        httparse::Error::TooManyHeaders => Error::TooManyHeaders(max_headers),
        other => Error::MalformedHttp(other.to_string()),
    }
}

/// An HTTP response: what a server sends to refuse (or accept) an upgrade,
/// and what a client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 101, 400, 503.
    pub status: u16,
    /// Header fields in order (names as given).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A plain-text error response: `status` with `message` as the body.
    pub fn text(status: u16, message: &str) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("{message}\n"))
    }

    /// Add a header field.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Set the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Write status line, headers and body. For a status other than 101,
    /// `Content-Length` and `Connection: close` are added unless present.
    pub fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\n",
                self.status,
                reason_phrase(self.status)
            )
            .as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.status != 101 {
            if self.header("Content-Length").is_none() {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n", self.body.len()).as_bytes(),
                );
            }
            if self.header("Connection").is_none() {
                out.extend_from_slice(b"Connection: close\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        w.write_all(&out)?;
        w.flush()
    }
}

/// The standard reason phrase of common statuses.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_leftover_are_split_at_the_blank_line() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x05Hello";
        let (head, rest) = read_head(&mut &input[..], 8192).unwrap();
        assert!(head.ends_with(b"\r\n\r\n"));
        assert_eq!(rest, b"\x81\x05Hello");
    }

    #[test]
    fn head_limit_is_enforced_even_without_terminator() {
        let input = vec![b'a'; 10_000];
        assert!(matches!(
            read_head(&mut &input[..], 8192),
            Err(Error::HeadTooLarge(8192))
        ));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(vec![b'a'; 9000]);
        big.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            read_head(&mut &big[..], 8192),
            Err(Error::HeadTooLarge(_))
        ));
    }

    #[test]
    fn truncated_heads_are_errors() {
        assert!(matches!(
            read_head(&mut &b""[..], 100),
            Err(Error::UnexpectedEof)
        ));
        assert!(matches!(
            read_head(&mut &b"GET / HTTP/1.1\r\n"[..], 100),
            Err(Error::MalformedHttp(_))
        ));
    }

    #[test]
    fn error_responses_carry_length_and_close() {
        let mut out = Vec::new();
        Response::text(400, "missing ?user=")
            .write_to(&mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(text.contains("Content-Length: 15\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nmissing ?user=\n"));
    }
}
