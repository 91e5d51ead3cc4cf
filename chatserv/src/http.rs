//! Plain HTTP on the WebSocket port: the chat page, 404s, and a reader that
//! enforces one deadline on the whole request head.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use wsproto::Request;
use wsproto::Response;
use wsproto::SetTimeouts;

/// The chat web page, built into the binary.
pub const PAGE: &str = include_str!("../static/index.html");

/// The page's icon (a speech bubble), served as `/favicon.ico` so that
/// browsers, which ask for it by themselves, get no 404.
pub const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
<path d=\"M2 2h12a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H7l-4 3v-3H2a1 1 0 0 1-1-1V3a1 1 0 0 1 1-1z\" \
fill=\"#2f6fdd\"/></svg>";

/// What the page needs to know about the server, served as `/config`:
/// the largest message it accepts (so the page refuses larger ones before
/// sending), whether logins need a token, and the name length limit.
pub fn config_json(max_message_size: usize, signed_logins: bool) -> String {
    format!(
        "{{\"max_message_size\":{max_message_size},\"signed_logins\":{signed_logins},\
         \"max_user_chars\":{}}}",
        chatcommon::MAX_USER_CHARS
    )
}

/// The answer to a request without `Upgrade: websocket`.
///
/// `GET /` (or `/index.html`) serves the page, `/config` the JSON
/// `config`, `/favicon.ico` the icon; other paths are 404 and other
/// methods 405 (RFC 9110 §15.5.6).
pub fn plain_response(request: &Request, config: &str) -> Response {
    if request.method() != "GET" && request.method() != "HEAD" {
        return Response::text(405, "only GET is supported").with_header("Allow", "GET, HEAD");
    }
    let (content_type, body, cache) = match request.path() {
        "/" | "/index.html" => ("text/html; charset=utf-8", PAGE, "no-cache"),
        "/config" => ("application/json", config, "no-cache"),
        "/favicon.ico" | "/favicon.svg" => ("image/svg+xml", FAVICON, "max-age=86400"),
        _ => return Response::text(404, "not found: the chat page is at /"),
    };
    let mut response = Response::new(200)
        .with_header("Content-Type", content_type)
        .with_header("Cache-Control", cache)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Content-Length", &body.len().to_string());
    if request.path() == "/" || request.path() == "/index.html" {
        // The page loads nothing from elsewhere and may not be framed
        // (clickjacking).
        response = response
            .with_header(
                "Content-Security-Policy",
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self' ws: wss:; frame-ancestors 'none'",
            )
            .with_header("X-Frame-Options", "DENY");
    }
    if request.method() == "GET" {
        response = response.with_body(body);
    }
    response
}

/// Reads from a stream (a socket, or TLS over one: the TLS handshake then
/// runs inside these reads and the deadline covers it) but fails with
/// `TimedOut` once `deadline` has passed, however slowly the bytes trickle
/// in.
///
/// A plain read time-out is per `read` call, so a slowloris client sending
/// one byte every few seconds would never hit it; this adapter shrinks the
/// time-out before every call so that the whole head must arrive in time.
#[derive(Debug)]
pub struct DeadlineReader<S> {
    stream: S,
    deadline: Instant,
}

impl<S: Read + SetTimeouts> DeadlineReader<S> {
    /// A reader that gives up `timeout` from now.
    pub fn new(stream: S, timeout: Duration) -> DeadlineReader<S> {
        DeadlineReader {
            stream,
            deadline: Instant::now() + timeout,
        }
    }
}

impl<S: Read + SetTimeouts> Read for DeadlineReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake deadline passed",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Whether an I/O error is a read or write time-out (`WouldBlock` on Unix,
/// `TimedOut` on Windows and from [`DeadlineReader`]).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    fn request(head: &str) -> Request {
        Request::parse(head.as_bytes(), 32).unwrap()
    }

    #[test]
    fn routes() {
        let config = config_json(1024, false);
        let r = plain_response(&request("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &config);
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("<html"));
        let r = plain_response(&request("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"), &config);
        assert_eq!(r.status, 404);
        let r = plain_response(&request("POST / HTTP/1.1\r\nHost: a\r\n\r\n"), &config);
        assert_eq!(r.status, 405);
        let r = plain_response(&request("GET /config HTTP/1.1\r\nHost: a\r\n\r\n"), &config);
        assert_eq!(r.body, config.as_bytes());
        let r = plain_response(
            &request("GET /favicon.ico HTTP/1.1\r\nHost: a\r\n\r\n"),
            &config,
        );
        assert_eq!(r.status, 200);
        let r = plain_response(&request("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), &config);
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
    }

    #[test]
    fn page_has_the_ids_tests_use() {
        for id in [
            "id=\"name\"",
            "id=\"login\"",
            "id=\"msg\"",
            "id=\"send\"",
            "id=\"log\"",
        ] {
            assert!(PAGE.contains(id), "{id}");
        }
    }

    #[test]
    fn deadline_covers_the_whole_head() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let start = Instant::now();
        let mut reader = DeadlineReader::new(&server, Duration::from_millis(300));
        let mut buf = [0u8; 16];
        let mut got = 0;
        let err = loop {
            // One byte every 100 ms: each read succeeds, the total does not.
            client.write_all(b"x").unwrap();
            match reader.read(&mut buf) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(is_timeout(&err), "{err}");
        assert!(got >= 2);
        assert!(start.elapsed() >= Duration::from_millis(300));
    }
}
