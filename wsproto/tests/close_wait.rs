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

/// Input bytes handed out one per read, each after a `WouldBlock`, as a
/// non-blocking socket might; writes are kept.
struct Trickle {
    input: Vec<u8>,
    at: usize,
    blocked: bool,
    written: Vec<u8>,
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.blocked = !self.blocked;
        if self.blocked {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        if self.at == self.input.len() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.input[self.at];
        self.at += 1;
        Ok(1)
    }
}

impl std::io::Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_non_blocking_client_keeps_waiting_then_stays_closed() {
    // The server's Close (1000), then the end of the stream.
    let stream = Trickle {
        input: vec![0x88, 0x02, 0x03, 0xe8],
        at: 0,
        blocked: false,
        written: Vec::new(),
    };
    let mut ws = wsproto::WebSocket::from_raw_socket(
        stream,
        wsproto::Role::Client,
        &wsproto::Config::default(),
    );
    let mut calls = 0;
    let close = loop {
        calls += 1;
        assert!(calls < 100);
        match ws.read() {
            Ok(m) => break m,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(matches!(close, Message::Close(Some(_))));
    // Waiting for the TCP close: WouldBlock means "not yet", then the end.
    let end = loop {
        match ws.read() {
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => break other,
        }
    };
    assert!(matches!(end, Err(Error::ConnectionClosed)), "{end:?}");
    // Once over, reads end at once, without touching the stream again
    // (found by the read_frames_client fuzz target).
    for _ in 0..3 {
        assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    }
    assert!(matches!(
        ws.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
}
