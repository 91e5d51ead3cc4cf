//! Reading an HTTP head from a stream with limits, and the HTTP response
//! type both sides use.

use std::io::{self, Read, Write};

use crate::error::{Error, Result};

/// Read bytes until the blank line that ends an HTTP head.
///
/// Returns the head (including the final CRLFCRLF) and whatever was read
/// after it, which belongs to the next protocol layer and must not be lost.
/// At most `max` bytes of head are accepted. Blocking: on `WouldBlock` the
/// bytes read so far are lost; [`HeadReader`] keeps them.
pub(crate) fn read_head<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    HeadReader::default().read(r, max)
}

/// An HTTP head being read, resumable: the bytes read so far stay here when
/// the stream returns an error such as `WouldBlock`.
#[derive(Debug, Default)]
pub(crate) struct HeadReader {
    buf: Vec<u8>,
}

impl HeadReader {
    /// How many bytes have been read so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Read on until the blank line; see [`read_head`]. An I/O error
    /// (`WouldBlock`, `TimedOut`, ...) keeps what was read: call again to
    /// go on. `Interrupted` is retried.
    pub(crate) fn read<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        max: usize,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut chunk = [0u8; 1024];
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => return Err(Error::UnexpectedEof),
                Ok(0) => {
                    return Err(Error::MalformedHttp(
                        "connection closed before the end of the HTTP head".into(),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            let search_from = self.buf.len().saturating_sub(3);
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = find_blank_line(&self.buf[search_from..]) {
                let end = search_from + pos + 4;
                if end > max {
                    return Err(Error::HeadTooLarge(max));
                }
                let mut head = std::mem::take(&mut self.buf);
                let leftover = head.split_off(end);
                return Ok((head, leftover));
            }
            if self.buf.len() > max {
                return Err(Error::HeadTooLarge(max));
            }
        }
    }
}

/// Bytes to be written, resumable: what was written stays counted when the
/// stream returns an error such as `WouldBlock`.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    bytes: Vec<u8>,
    written: usize,
}

impl Pending {
    pub(crate) fn new(bytes: Vec<u8>) -> Pending {
        Pending { bytes, written: 0 }
    }

    /// How many bytes have been written so far.
    pub(crate) fn written(&self) -> usize {
        self.written
    }

    /// Write what is left, then flush. `Interrupted` is retried; any other
    /// error leaves the rest for the next call.
    pub(crate) fn write_to<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<()> {
        while self.written < self.bytes.len() {
            match w.write(&self.bytes[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            match w.flush() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
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
    ///
    /// Not checked here (the builder stays infallible): [`Response::encode`]
    /// and [`Response::write_to`], and the handshakes that send a response,
    /// refuse a name that is not an RFC 9110 token or a value with CR, LF,
    /// NUL or another control character with [`Error::InvalidHeaderName`] /
    /// [`Error::InvalidHeaderValue`], before writing anything.
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

    /// Check every header field: names must be RFC 9110 tokens, values
    /// field values (no CR, LF, NUL or other control character but HTAB).
    pub fn validate(&self) -> Result<()> {
        self.headers
            .iter()
            .try_for_each(|(name, value)| super::check_header(name, value))
    }

    /// The response as bytes: status line, headers and body. For a status
    /// other than 101, `Content-Length` and `Connection: close` are added
    /// unless present. Fails with [`Error::InvalidHeaderName`] or
    /// [`Error::InvalidHeaderValue`] if a header field could inject a line
    /// ([`Response::validate`]).
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
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
        Ok(out)
    }

    /// Write [`Response::encode`]'s bytes and flush. An invalid header field
    /// is an error before anything is written; an I/O error is
    /// [`Error::Io`]. Blocking: use the resumable handshakes on a
    /// non-blocking stream.
    pub fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> Result<()> {
        let out = self.encode()?;
        w.write_all(&out)?;
        w.flush()?;
        Ok(())
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

    #[test]
    fn injected_response_headers_are_refused_before_writing() {
        for (name, value) in [
            ("X-Ok", "a\r\nSet-Cookie: evil=1"),
            ("X-Ok", "a\nb"),
            ("X-Ok", "a\0b"),
            ("X Bad", "v"),
            ("X-Bad:", "v"),
            ("Set-Cookie: a=b\r\nX", "v"),
        ] {
            let mut out = Vec::new();
            let e = Response::new(403)
                .with_header(name, value)
                .write_to(&mut out)
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidHeaderName { .. } | Error::InvalidHeaderValue { .. }
                ),
                "{e:?}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn heads_resume_after_would_block() {
        struct Blocky(Vec<u8>, bool);
        impl Read for Blocky {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 || self.0.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                buf[0] = self.0.remove(0);
                Ok(1)
            }
        }
        let mut r = Blocky(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nX".to_vec(), false);
        let mut head = HeadReader::default();
        let mut blocked = 0;
        let (h, rest) = loop {
            match head.read(&mut r, 100) {
                Ok(done) => break done,
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => blocked += 1,
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(h, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(rest.is_empty());
        assert!(blocked > 20);
        assert_eq!(head.len(), 0);
    }
}
