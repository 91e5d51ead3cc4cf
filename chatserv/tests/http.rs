//! HTTP on the chat port: the page, refusals, limits, slowloris.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http, read_text, read_until_close, Server};
use wsproto::{Error, Message};

#[test]
fn missing_user_is_refused_with_400_and_a_reason() {
    let server = Server::start(&[]);
    for url in [
        format!("ws://{}/", server.addr),
        format!("ws://{}/chat?user=", server.addr),
        format!("ws://{}/?name=ann", server.addr),
    ] {
        match wsproto::connect(&url) {
            Err(Error::HttpStatus { status, body }) => {
                assert_eq!(status, 400, "{url}");
                let body = String::from_utf8(body).unwrap();
                assert!(body.contains("missing user name"), "{url}: {body:?}");
            }
            Err(e) => panic!("{url}: expected HTTP 400, got error {e}"),
            Ok(_) => panic!("{url}: expected HTTP 400, got a connection"),
        }
    }
}

#[test]
fn any_path_works_for_websocket() {
    let server = Server::start(&[]);
    let (mut a, _) = wsproto::connect(&format!("ws://{}/some/path?user=a", server.addr)).unwrap();
    a.get_mut()
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .unwrap();
    let mut b = server.connect("b");
    b.send(Message::text("x")).unwrap();
    assert_eq!(read_text(&mut a), "x -- FROM b");
}

#[test]
fn get_root_serves_the_chat_page() {
    let server = Server::start(&[]);
    let (status, head, body) = http(server.addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: text/html; charset=utf-8"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("<html"));
    assert!(page.contains("new WebSocket("));
    for id in ["name", "login", "msg", "send", "log"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "#{id} missing");
    }
}

#[test]
fn other_paths_are_404() {
    let server = Server::start(&[]);
    let (status, _, body) = http(
        server.addr,
        "GET /nothing-here.png HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("not found"));
}

#[test]
fn broken_upgrade_gets_the_protocol_status() {
    let server = Server::start(&[]);
    // Sec-WebSocket-Version 8: RFC 6455 §4.4 says 426 with the version we speak.
    let (status, head, _) = http(
        server.addr,
        "GET /?user=a HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert_eq!(status, 426);
    assert!(head.contains("Sec-WebSocket-Version: 13"));
}

#[test]
fn upgrades_beyond_max_connections_get_503() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut a = server.connect("a");
    let _b = server.connect("b");
    match wsproto::connect(&server.url("c")) {
        Err(Error::HttpStatus { status, body }) => {
            assert_eq!(status, 503);
            assert!(String::from_utf8_lossy(&body).contains("too many connections"));
        }
        Err(e) => panic!("expected HTTP 503, got error {e}"),
        Ok(_) => panic!("expected HTTP 503, got a connection"),
    }
    // The page is still served.
    let (status, _, _) = http(server.addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(status, 200);
    // A slot frees up when someone leaves.
    a.close(wsproto::CloseCode::Normal, "").unwrap();
    read_until_close(&mut a);
    server.wait_log("connection of a closed", 1);
    let deadline = Instant::now() + common::IO_TIMEOUT;
    loop {
        match wsproto::connect(&server.url("d")) {
            Ok(_) => break,
            Err(Error::HttpStatus { status: 503, .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("slot not released: {e}"),
        }
    }
}

#[test]
fn slowloris_is_cut_off_at_the_handshake_timeout() {
    let server = Server::start(&["--handshake-timeout", "1s"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    stream
        .write_all(b"GET /?user=slow HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n")
        .unwrap();
    // Trickle one header byte every 100 ms: every single read on the server
    // gets data, but the head never completes.
    let mut answer = Vec::new();
    let closed_at = loop {
        assert!(start.elapsed() < Duration::from_secs(8), "never closed");
        if stream.write_all(b"X").is_err() {
            break start.elapsed();
        }
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            Ok(0) => break start.elapsed(),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break start.elapsed(), // reset
        }
    };
    assert!(
        closed_at >= Duration::from_millis(900),
        "closed too early: {closed_at:?}"
    );
    assert!(
        closed_at < Duration::from_secs(4),
        "closed too late: {closed_at:?}"
    );
    if !answer.is_empty() {
        assert!(
            answer.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    server.wait_log("handshake time-out", 1);
}
