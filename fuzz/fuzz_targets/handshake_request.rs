//! Arbitrary bytes as a client's HTTP head into the server handshake:
//! `read_request` + `Request::check_upgrade`, and `accept_with` over an
//! in-memory stream. No panic; the verdict agrees with an independent
//! RFC 6455 §4.2.1 check; every rejected request gets an HTTP status line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto::read_request;
use wsproto::{accept_with, Accept, Config, Error, Response};
use wsproto_fuzz::http::{check_request, head_end, parse_head, Kind};
use wsproto_fuzz::{head_chunk, FuzzStream};

fuzz_target!(|data: &[u8]| {
    let tight = Config {
        max_head_size: 200,
        max_headers: 6,
        ..Config::default()
    };
    for config in [Config::default(), tight] {
        check(data, &config);
    }
});

fn check(data: &[u8], config: &Config) {
    let chunk = head_chunk(data);
    let mut stream = FuzzStream::chunked(data, chunk);
    let verdict = read_request(&mut stream, config).and_then(|(req, leftover)| {
        // The leftover is exactly what was read past the head.
        let end = head_end(data).expect("a head was read");
        assert!(end <= config.max_head_size);
        assert_eq!(&leftover[..], &data[end..stream.consumed()]);
        let accept = req.check_upgrade()?;
        Ok((req, accept))
    });

    // Reading the head: errors follow from where the blank line is.
    let max = config.max_head_size;
    match (&verdict, head_end(data)) {
        (Err(Error::UnexpectedEof), _) => assert!(data.is_empty()),
        (Err(Error::HeadTooLarge(m)), end) => {
            assert_eq!(*m, max);
            assert!(end.map_or(data.len() > max, |e| e > max));
        }
        (Err(Error::MalformedHttp(_)), None) => {
            assert!(!data.is_empty() && data.len() <= max)
        }
        (_, None) => panic!("no blank line but {verdict:?}"),
        (_, Some(end)) => assert!(end <= max, "{verdict:?} for a head of {end} > {max}"),
    }

    // An accepted request really satisfies RFC 6455 §4.2.1.
    let ours = head_end(data)
        .filter(|&e| e <= max)
        .map(|e| parse_head(&data[..e], Kind::Request).map(|h| check_request(&h)));
    if let Ok((req, accept)) = &verdict {
        let Some(Some(Ok(key))) = &ours else {
            panic!("wsproto accepted {req:?}, the independent check says {ours:?}");
        };
        assert_eq!(*accept, wsproto::accept_key(key));
        assert_eq!(req.method(), "GET");
    }
    // And a request the RFC says to accept is accepted (unless over the
    // header-count limit).
    if let Some(Some(Ok(_))) = &ours {
        let n = parse_head(&data[..head_end(data).unwrap_or(0)], Kind::Request)
            .map_or(0, |h| h.headers.len());
        if n <= config.max_headers {
            assert!(verdict.is_ok(), "valid upgrade refused: {verdict:?}");
        }
    }
    if let Err(e) = &verdict {
        assert!(
            e.http_status().is_some() || matches!(e, Error::UnexpectedEof),
            "handshake error without an HTTP status: {e:?}"
        );
    }

    // accept_with over a stream: same verdict, and the answer on the wire.
    let mut stream = FuzzStream::chunked(data, chunk);
    let deny = data.windows(4).any(|w| w == b"deny");
    let result = accept_with(&mut stream, config, |_req| {
        if deny {
            Err(Response::text(403, "denied"))
        } else {
            Ok(Accept::default())
        }
    });
    let result = result.map(|mut ws| {
        // A pipelined first frame behind the head is read as client frames.
        for _ in 0..data.len() + 2 {
            if ws.read().is_err() {
                break;
            }
        }
    });
    let out = std::mem::take(&mut stream.written);
    let out = match (&result, head_end(&out)) {
        // Only the handshake answer is checked, not frames written after it.
        (Ok(()), Some(end)) => out[..end].to_vec(),
        _ => out,
    };
    match (&result, &verdict) {
        (Ok(_), Ok((_, accept))) => {
            assert!(!deny);
            assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            let line = format!("\r\nSec-WebSocket-Accept: {accept}\r\n");
            assert!(out.windows(line.len()).any(|w| w == line.as_bytes()));
            assert!(out.ends_with(b"\r\n\r\n"));
        }
        (Err(Error::Rejected(403)), Ok(_)) => {
            assert!(deny);
            assert!(
                out.starts_with(b"HTTP/1.1 403 "),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
        }
        (Err(e), Err(v)) => {
            assert_eq!(format!("{e:?}"), format!("{v:?}"));
            match e.http_status() {
                Some(status) => check_error_response(&out, status),
                None => assert!(out.is_empty(), "wrote {out:?} after {e:?}"),
            }
        }
        (r, v) => panic!("accept_with gave {r:?}, read_request+check_upgrade {v:?}"),
    }
}

/// A refusal is a complete HTTP response: status line, length, body.
fn check_error_response(out: &[u8], status: u16) {
    let text = String::from_utf8_lossy(out);
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text:?}");
    let end = head_end(out).expect("complete head");
    let head = parse_head(&out[..end], Kind::Response).expect("own response parses");
    let len = head.first("content-length").expect("Content-Length");
    assert_eq!(
        std::str::from_utf8(len).ok().and_then(|l| l.parse().ok()),
        Some(out.len() - end)
    );
    if status == 426 {
        assert_eq!(head.first("sec-websocket-version"), Some(&b"13"[..]));
    }
}
