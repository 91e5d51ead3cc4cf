//! Plain HTTP on the WebSocket port: the chat page, 404s, and a reader that
//! enforces one deadline on the whole request head.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use wsproto::Request;
use wsproto::Response;
use wsproto::SetTimeouts;

/// The chat web page, built into the binary.
pub const PAGE: &str = include_str!("../static/index.html");

/// The answer to a request without `Upgrade: websocket`.
///
/// `GET /` (or `/index.html`) serves the page; other paths are 404 and
/// other methods 405 (RFC 9110 §15.5.6).
pub fn plain_response(request: &Request) -> Response {
    if request.method() != "GET" && request.method() != "HEAD" {
        return Response::text(405, "only GET is supported").with_header("Allow", "GET, HEAD");
    }
    match request.path() {
        "/" | "/index.html" => {
            let mut response = Response::new(200)
                .with_header("Content-Type", "text/html; charset=utf-8")
                .with_header("Cache-Control", "no-cache")
                .with_header("Content-Length", &PAGE.len().to_string());
            if request.method() == "GET" {
                response = response.with_body(PAGE);
            }
            response
        }
        _ => Response::text(404, "not found: the chat page is at /"),
    }
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
        let r = plain_response(&request("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("<html"));
        let r = plain_response(&request("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert_eq!(r.status, 404);
        let r = plain_response(&request("POST / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert_eq!(r.status, 405);
        let r = plain_response(&request("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"));
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
