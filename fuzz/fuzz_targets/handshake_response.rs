//! Arbitrary bytes as the server's answer to `client_handshake`. Every
//! `$ACCEPT` in the input is replaced by the correct Sec-WebSocket-Accept
//! for the key the client actually sent, so the success path is reachable.
//! No panic; success implies a 101 answer that satisfies RFC 6455 §4.1;
//! a non-101 answer gives `HttpStatus` with a bounded body.
#![no_main]

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use wsproto::{client_handshake, ClientRequest, Config, Error, Message};
use wsproto_fuzz::head_chunk;
use wsproto_fuzz::http::{check_request, check_response, head_end, parse_head, Kind};

const PLACEHOLDER: &[u8] = b"$ACCEPT";

/// What the fake server saw and served, shared with the target after the
/// stream has moved into the `WebSocket`.
#[derive(Default)]
struct Seen {
    request: Vec<u8>,
    key: Option<String>,
    offered_extensions: bool,
    response: Option<Vec<u8>>,
}

/// Plays the server: records the request, then serves the template with
/// the accept value spliced in.
struct Server<'a> {
    template: &'a [u8],
    chunk: usize,
    seen: Rc<RefCell<Seen>>,
    pos: usize,
}

impl Server<'_> {
    fn ensure_response(&self) {
        let mut seen = self.seen.borrow_mut();
        if seen.response.is_none() {
            let end = head_end(&seen.request).expect("client wrote its request before reading");
            let head =
                parse_head(&seen.request[..end], Kind::Request).expect("client request parses");
            let key = check_request(&head).expect("client request is a valid RFC 6455 upgrade");
            let accept = wsproto::accept_key(&key);
            seen.offered_extensions = !head.values("sec-websocket-extensions").is_empty();
            let mut out = Vec::with_capacity(self.template.len() + 32);
            let mut rest = self.template;
            while !rest.is_empty() {
                if rest.starts_with(PLACEHOLDER) {
                    out.extend_from_slice(accept.as_bytes());
                    rest = &rest[PLACEHOLDER.len()..];
                } else {
                    out.push(rest[0]);
                    rest = &rest[1..];
                }
            }
            seen.key = Some(key);
            seen.response = Some(out);
        }
    }
}

impl Read for Server<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.ensure_response();
        let seen = self.seen.borrow();
        let rest = &seen.response.as_deref().unwrap_or_default()[self.pos..];
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Server<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.seen.borrow_mut().request.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let request = ClientRequest::new("ws://h/").expect("valid URL");
    let seen = Rc::new(RefCell::new(Seen::default()));
    let server = Server {
        template: data,
        chunk: head_chunk(data),
        seen: Rc::clone(&seen),
        pos: 0,
    };
    let config = Config {
        max_frame_size: 1 << 16,
        max_message_size: 1 << 18,
        ..Config::default()
    };
    let result = client_handshake(server, &request, &config);
    let served = seen.borrow().response.clone().unwrap_or_default();
    let key = seen.borrow().key.clone().unwrap_or_default();
    let offered = seen.borrow().offered_extensions;
    let head = head_end(&served)
        .filter(|&e| e <= config.max_head_size)
        .map(|e| (e, parse_head(&served[..e], Kind::Response)));
    match result {
        Ok((mut ws, response)) => {
            assert_eq!(response.status, 101);
            let Some((_, Some(h))) = &head else {
                panic!("handshake succeeded on an unparsable answer {served:?}");
            };
            if let Err(why) = check_response(h, &key, offered) {
                panic!("client accepted an answer the RFC refuses ({why}): {h:?}");
            }
            // Whatever follows the head is read as server frames.
            for _ in 0..served.len() + 2 {
                match ws.read() {
                    Ok(Message::Text(t)) => assert!(t.len() <= config.max_message_size),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        Err(Error::HttpStatus { status, body }) => {
            assert_ne!(status, 101);
            assert!(body.len() <= 4096);
            let Some((end, Some(h))) = &head else {
                panic!("HttpStatus from an unparsable answer");
            };
            assert_eq!(
                std::str::from_utf8(h.start[1])
                    .ok()
                    .and_then(|s| s.parse().ok()),
                Some(status)
            );
            assert!(
                served[*end..].starts_with(&body),
                "body is not what followed the head"
            );
        }
        Err(e) => {
            // A 101 the RFC accepts must not be refused.
            if let Some((_, Some(h))) = &head {
                let n = h.headers.len();
                // (Extension parameters are RFC 7692's business: not judged here.)
                let ext = h.first("sec-websocket-extensions").is_some();
                if n <= config.max_headers && !ext && check_response(h, &key, offered).is_ok() {
                    panic!("client refused a valid 101 ({e:?}): {h:?}");
                }
            }
        }
    }
});
