//! After the close handshake a client waits for the server's TCP close
//! (RFC 6455 §7.1.1), but not forever: `connect` bounds the wait.

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use wsproto::{CloseCode, Error, Message};

#[test]
fn a_server_that_never_closes_tcp_does_not_hang_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (keep_tx, keep_rx) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = wsproto::accept(stream).unwrap();
        // Answer the Close, then keep the socket open.
        assert!(matches!(ws.read().unwrap(), Message::Close(_)));
        keep_rx.recv_timeout(Duration::from_secs(20)).ok();
        drop(ws);
    });
    let (mut ws, _) = wsproto::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    ws.close(CloseCode::Normal, "bye").unwrap();
    assert!(matches!(ws.read().unwrap(), Message::Close(_)));
    let started = Instant::now();
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "waited {waited:?}"
    );
    // And it stays closed, at once.
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    keep_tx.send(()).unwrap();
    server.join().unwrap();
}
