//! The stalled-reader scenario, shared by the one-node and cluster tests:
//! a client that never reads, healthy readers that must get every line in
//! order, and a sender that floods until the server drops the stalled one.

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use wsproto::{ClientRequest, Config, MaybeTlsStream, Message, WebSocket};

use super::{read_text, Server, IO_TIMEOUT};

/// A client that completes the handshake and then never reads, with a
/// 4 KiB receive buffer and no compression, so that its kernel buffers
/// fill up quickly.
pub fn stalled_client(server: &Server, user: &str) -> WebSocket<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let request = ClientRequest::new(&server.url(user)).unwrap();
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let (ws, _) = wsproto::client_handshake(stream, &request, &config).unwrap();
    ws
}

/// A thread that reads ann's numbered lines (`"00042 ..."`) until her
/// `end`, checks they come in order, counts each in `received`, and
/// returns how many it got.
pub fn numbered_reader(
    mut ws: WebSocket<MaybeTlsStream>,
    received: Arc<AtomicUsize>,
) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut i = 0;
        loop {
            let text = read_text(&mut ws);
            if text == "end -- FROM ann" {
                return i;
            }
            assert!(text.starts_with(&format!("{i:05} ")), "out of order at {i}");
            assert!(text.ends_with(" -- FROM ann"));
            i += 1;
            received.fetch_add(1, Ordering::SeqCst);
        }
    })
}

/// How [`flood_until_dropped`] sends.
pub struct Flood {
    /// Healthy readers, each counting every line in the shared counter.
    pub readers: usize,
    /// How many lines each reader may be behind before the sender waits,
    /// so that only the stalled client can fill its queue.
    pub slack: usize,
    /// Lines at most.
    pub max: usize,
    /// Lines to send after the drop was logged.
    pub after_drop: usize,
    /// The readers must keep up within this.
    pub timeout: Duration,
}

/// Send 32 KiB numbered lines from `ann` until `dropped()` (checked every
/// 10 lines) says the server dropped the stalled client, then
/// `after_drop` more, then `end`. Returns the lines sent and after how
/// many the drop was seen.
pub fn flood_until_dropped(
    ann: &mut WebSocket<MaybeTlsStream>,
    received: &AtomicUsize,
    flood: &Flood,
    dropped: impl Fn() -> bool,
) -> (usize, Option<usize>) {
    let filler = "y".repeat(32 * 1024);
    let deadline = Instant::now() + flood.timeout;
    let mut sent = 0;
    let mut dropped_at = None;
    while sent < flood.max && dropped_at.is_none_or(|at| sent < at + flood.after_drop) {
        while received.load(Ordering::SeqCst) + flood.slack * flood.readers < flood.readers * sent {
            assert!(
                Instant::now() < deadline,
                "the healthy readers stopped receiving"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        ann.send(Message::text(format!("{sent:05} {filler}")))
            .unwrap();
        sent += 1;
        if dropped_at.is_none() && sent % 10 == 0 && dropped() {
            dropped_at = Some(sent);
        }
    }
    ann.send(Message::text("end")).unwrap();
    (sent, dropped_at)
}
