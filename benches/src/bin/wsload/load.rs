//! The closed-loop echo load of one connection: keep `inflight` messages
//! of `size` bytes outstanding, send one more for every echo, check every
//! echoed byte, time each message from send to echo, and count the bytes
//! that crossed the socket while measuring.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use wsproto::{CloseCode, Error, MessageRef, WebSocket};

use crate::duplex::Wire;
use crate::hist::Histogram;
use crate::payload::Payload;

/// Phases of a run, set by the main thread.
pub const WARMUP: u8 = 0;
pub const MEASURE: u8 = 1;
pub const STOP: u8 = 2;

/// At most this many bytes wait in a connection's send queue; further
/// sends wait for echoes (the rest of the window stays unsent a moment).
const QUEUE_LIMIT: usize = 256 * 1024;

/// A connection that receives nothing for this long has stalled: an error.
pub const STALL: Duration = Duration::from_secs(10);

/// What the threads share.
#[derive(Debug)]
pub struct Shared {
    pub phase: AtomicU8,
    pub start: Barrier,
    pub inflight: usize,
    pub size: usize,
    /// The messages, and the check of their echoes.
    pub payload: Payload,
}

impl Shared {
    pub fn new(connections: usize, inflight: usize, payload: Payload) -> Shared {
        Shared {
            phase: AtomicU8::new(WARMUP),
            start: Barrier::new(connections + 1),
            inflight,
            size: payload.size(),
            payload,
        }
    }
}

/// What one connection measured (during the MEASURE phase only).
#[derive(Debug, Default)]
pub struct ConnStats {
    pub messages: u64,
    /// Echoes received in every phase (warm-up included): with the
    /// server's CPU time over the whole run, its CPU cost per message.
    pub all_messages: u64,
    pub bytes: u64,
    pub rtt: Histogram,
    pub errors: u64,
    pub mismatched_messages: u64,
    pub mismatched_bytes: u64,
    /// Bytes handed to and taken from the kernel (TCP payload: WebSocket
    /// frames, compressed or not) during the MEASURE phase.
    pub wire_sent: u64,
    pub wire_received: u64,
    /// CPU time of the whole load generator while measuring, in seconds
    /// (set once, on the total).
    pub cpu_s: f64,
    /// Descriptions of the first errors, for the log.
    pub first_error: Option<String>,
}

impl ConnStats {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }

    pub fn merge(&mut self, o: &ConnStats) {
        self.messages += o.messages;
        self.all_messages += o.all_messages;
        self.bytes += o.bytes;
        self.rtt.merge(&o.rtt);
        self.errors += o.errors;
        self.mismatched_messages += o.mismatched_messages;
        self.mismatched_bytes += o.mismatched_bytes;
        self.wire_sent += o.wire_sent;
        self.wire_received += o.wire_received;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }
}

fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Io(io) if matches!(io.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// Run the load on `ws` until the phase is STOP, then close it.
pub fn run(mut ws: WebSocket<Wire>, shared: Arc<Shared>) -> ConnStats {
    let mut stats = ConnStats::default();
    // Socket byte counts when this thread first saw the MEASURE phase.
    let mut wire_start = None;
    shared.start.wait();
    let finished = pump(&mut ws, &shared, &mut stats, &mut wire_start);
    if let Some((sent, received)) = wire_start {
        let (now_sent, now_received) = ws.get_ref().wire_bytes();
        stats.wire_sent = now_sent - sent;
        stats.wire_received = now_received - received;
    }
    if finished {
        close(ws, &mut stats);
    }
    stats
}

/// The load loop: `true` when it ended because the phase became STOP,
/// `false` after an error (recorded in `stats`).
fn pump(
    ws: &mut WebSocket<Wire>,
    shared: &Shared,
    stats: &mut ConnStats,
    wire_start: &mut Option<(u64, u64)>,
) -> bool {
    let window = shared.inflight as u64;
    let text = shared.payload.is_text();
    let mut sent_at = vec![Instant::now(); shared.inflight];
    let mut msg = vec![0u8; shared.size];
    shared.payload.fill(0, &mut msg);
    let (mut next_send, mut next_recv) = (0u64, 0u64);
    let mut last_echo = Instant::now();
    loop {
        let phase = shared.phase.load(Ordering::Relaxed);
        if phase != WARMUP && wire_start.is_none() {
            *wire_start = Some(ws.get_ref().wire_bytes());
        }
        if phase == STOP {
            return true;
        }
        let mut wrote = false;
        while next_send - next_recv < window && ws.get_ref().pending() < QUEUE_LIMIT {
            shared.payload.refill(next_send, &mut msg);
            sent_at[(next_send % window) as usize] = Instant::now();
            let message = if text {
                match std::str::from_utf8(&msg) {
                    Ok(t) => MessageRef::Text(t),
                    Err(e) => {
                        stats.error(format!("generated text is not UTF-8: {e}"));
                        return false;
                    }
                }
            } else {
                MessageRef::Binary(&msg)
            };
            if let Err(e) = ws.write_ref(message) {
                stats.error(format!("write: {e}"));
                return false;
            }
            next_send += 1;
            wrote = true;
        }
        if (wrote || ws.has_pending_output()) && !ws.has_buffered_input() {
            if let Err(e) = ws.flush() {
                stats.error(format!("flush: {e}"));
                return false;
            }
        }
        let (data, was_text) = match ws.read_ref() {
            Ok(MessageRef::Binary(data)) => (data, false),
            Ok(MessageRef::Text(data)) => (data.as_bytes(), true),
            Ok(MessageRef::Ping(_) | MessageRef::Pong(_)) => continue,
            Ok(other) => {
                stats.error(format!("unexpected message: {other:?}"));
                return false;
            }
            Err(e) if is_timeout(&e) => {
                if last_echo.elapsed() > STALL {
                    stats.error(format!("no echo for {STALL:?}"));
                    return false;
                }
                continue;
            }
            Err(e) => {
                stats.error(format!("read: {e}"));
                return false;
            }
        };
        let now = Instant::now();
        last_echo = now;
        let mut bad = shared.payload.mismatched(next_recv, data);
        if was_text != text {
            // Right bytes, wrong opcode: still not the message sent.
            bad = bad.max(1);
        }
        let rtt = now.duration_since(sent_at[(next_recv % window) as usize]);
        next_recv += 1;
        stats.all_messages += 1;
        if phase == MEASURE {
            stats.messages += 1;
            stats.bytes += data.len() as u64;
            stats.rtt.record(rtt.as_nanos() as u64);
        }
        if bad > 0 {
            stats.mismatched_messages += 1;
            stats.mismatched_bytes += bad;
        }
    }
}

/// Close handshake (RFC 6455 §7.1.2), reading (and discarding) the echoes
/// still on their way until the server closes the connection.
fn close(mut ws: WebSocket<Wire>, stats: &mut ConnStats) {
    if let Err(e) = ws.close(CloseCode::Normal, "") {
        stats.error(format!("close: {e}"));
        return;
    }
    let deadline = Instant::now() + STALL;
    loop {
        match ws.read_ref() {
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return,
            Err(e) if is_timeout(&e) && Instant::now() < deadline => {}
            Err(e) => {
                stats.error(format!("closing: {e}"));
                return;
            }
        }
    }
}
