//! The closed-loop echo load of one connection: keep `inflight` binary
//! messages of `size` bytes outstanding, send one more for every echo, check
//! every echoed byte, and time each message from send to echo.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use wsproto::{CloseCode, Error, MessageRef, WebSocket};

use crate::duplex::Duplex;
use crate::hist::Histogram;

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
    /// `size + 256` bytes of pseudo-random data; message `seq` carries its
    /// sequence number then `pattern[seq % 251..]`, so a lost, duplicated,
    /// reordered or altered message cannot go unnoticed.
    pub pattern: Vec<u8>,
}

impl Shared {
    pub fn new(connections: usize, inflight: usize, size: usize) -> Shared {
        let pattern = (0..size + 256)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        Shared {
            phase: AtomicU8::new(WARMUP),
            start: Barrier::new(connections + 1),
            inflight,
            size,
            pattern,
        }
    }

    /// Write message `seq` into `out` (which has `size` bytes).
    fn fill(&self, seq: u64, out: &mut [u8]) {
        let head = out.len().min(8);
        out[..head].copy_from_slice(&seq.to_le_bytes()[..head]);
        let off = (seq % 251) as usize;
        let rest = out.len() - head;
        out[head..].copy_from_slice(&self.pattern[off..off + rest]);
    }

    /// Number of bytes of `got` that differ from message `seq`
    /// (a length difference counts as that many bytes); 0 when it matches.
    fn mismatched(&self, seq: u64, got: &[u8]) -> u64 {
        let head = self.size.min(8);
        let off = (seq % 251) as usize;
        let seq_bytes = seq.to_le_bytes();
        let expected = seq_bytes[..head]
            .iter()
            .chain(&self.pattern[off..off + self.size - head]);
        if got.len() == self.size
            && got[..head] == seq_bytes[..head]
            && got[head..] == self.pattern[off..off + self.size - head]
        {
            return 0;
        }
        let differing = got.iter().zip(expected).filter(|(a, b)| a != b).count();
        (differing + got.len().abs_diff(self.size)) as u64
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
pub fn run(mut ws: WebSocket<Duplex>, shared: Arc<Shared>) -> ConnStats {
    let mut stats = ConnStats::default();
    let window = shared.inflight as u64;
    let mut sent_at = vec![Instant::now(); shared.inflight];
    let mut msg = vec![0u8; shared.size];
    let (mut next_send, mut next_recv) = (0u64, 0u64);
    let mut last_echo = Instant::now();
    shared.start.wait();
    loop {
        let phase = shared.phase.load(Ordering::Relaxed);
        if phase == STOP {
            break;
        }
        let mut wrote = false;
        while next_send - next_recv < window && ws.get_ref().pending() < QUEUE_LIMIT {
            shared.fill(next_send, &mut msg);
            sent_at[(next_send % window) as usize] = Instant::now();
            if let Err(e) = ws.write_ref(MessageRef::Binary(&msg)) {
                stats.error(format!("write: {e}"));
                return stats;
            }
            next_send += 1;
            wrote = true;
        }
        if (wrote || ws.has_pending_output()) && !ws.has_buffered_input() {
            if let Err(e) = ws.flush() {
                stats.error(format!("flush: {e}"));
                return stats;
            }
        }
        match ws.read_ref() {
            Ok(MessageRef::Binary(data)) => {
                let now = Instant::now();
                last_echo = now;
                let bad = shared.mismatched(next_recv, data);
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
            Ok(MessageRef::Ping(_) | MessageRef::Pong(_)) => {}
            Ok(other) => {
                stats.error(format!("unexpected message: {other:?}"));
                return stats;
            }
            Err(e) if is_timeout(&e) => {
                if last_echo.elapsed() > STALL {
                    stats.error(format!("no echo for {STALL:?}"));
                    return stats;
                }
            }
            Err(e) => {
                stats.error(format!("read: {e}"));
                return stats;
            }
        }
    }
    close(ws, &mut stats);
    stats
}

/// Close handshake (RFC 6455 §7.1.2), reading (and discarding) the echoes
/// still on their way until the server closes the connection.
fn close(mut ws: WebSocket<Duplex>, stats: &mut ConnStats) {
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
