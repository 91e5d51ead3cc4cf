//! The receiving side: a few threads, each reading many connections through
//! one level-triggered epoll. A readiness event gets one `read` of up to
//! [`BUF`] bytes, which holds every frame that arrived since the last one;
//! the frames are parsed in place (server frames are unmasked) and only the
//! message's own `"<sender>:<seq>:<micros>"` prefix is looked at: no
//! allocation and no UTF-8 pass per message, so the generator's CPU per
//! delivery stays well below the server's on the shared cores.

use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use crate::hist::Histogram;
use crate::net::{write_all, Epoll};

/// Bytes one `read` may take: many frames of every connection's backlog.
const BUF: usize = 256 * 1024;

static START: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the process started (a monotonic clock that every
/// thread shares, so a timestamp in a message means the same to all).
pub fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// What the receiving threads, the sender and the controller share.
pub struct Shared {
    pub senders: usize,
    pub nodes: usize,
    /// Messages received (all connections), flushed once per epoll batch.
    pub received: AtomicU64,
    /// Per sender: its messages received by anyone, for the unpaced mode's
    /// in-flight window.
    pub delivered: Vec<AtomicU64>,
    /// When the last message arrived (µs, [`now_us`]).
    pub last_rx_us: AtomicU64,
    /// The measured window, µs: messages sent in it are timed; messages
    /// received in it count as its deliveries.
    pub window_start: AtomicU64,
    pub window_end: AtomicU64,
    /// Connections that ended (Close frame or EOF) so far.
    pub ended: AtomicU64,
    pub quit: AtomicBool,
    /// The unpaced sender sleeps while its window is full; the receivers
    /// wake it when they have counted deliveries.
    pub sender_waiting: AtomicBool,
    pub sender: OnceLock<std::thread::Thread>,
    /// Sleep this long after each epoll batch (0: never), see `--coalesce-us`.
    pub coalesce: std::time::Duration,
}

impl Shared {
    pub fn new(senders: usize, nodes: usize) -> Shared {
        Shared {
            senders,
            nodes,
            received: AtomicU64::new(0),
            delivered: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            last_rx_us: AtomicU64::new(0),
            window_start: AtomicU64::new(u64::MAX),
            window_end: AtomicU64::new(u64::MAX),
            ended: AtomicU64::new(0),
            quit: AtomicBool::new(false),
            sender_waiting: AtomicBool::new(false),
            sender: OnceLock::new(),
            coalesce: std::time::Duration::ZERO,
        }
    }
}

/// One receiving connection.
pub struct Conn {
    pub user: usize,
    pub stream: TcpStream,
    /// A frame cut by the end of the last read (rare), else empty.
    pub carry: Vec<u8>,
    pub dead: bool,
    /// Whether it got a Close frame (its EOF is then no extra error).
    pub closed: bool,
}

/// A receiving thread's counts, merged by the controller.
#[derive(Default)]
pub struct Stats {
    /// Send-to-receipt times (ns) of messages sent inside the window, from
    /// a sender on the recipient's node / on another node.
    pub same: Histogram,
    pub cross: Histogram,
    /// Messages received inside the window.
    pub rx_window: u64,
    pub received: u64,
    /// Sequence numbers skipped (a message lost in between) and repeated
    /// or out of order.
    pub gaps: u64,
    pub dups: u64,
    /// Frames that are not what the protocol sends (binary, fragmented,
    /// masked, unparsable text).
    pub bad: u64,
    /// Close frames received, by code.
    pub closes: std::collections::BTreeMap<u16, u64>,
    /// Connections that ended without a Close frame or with a read error.
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Stats {
    pub fn merge(&mut self, o: Stats) {
        self.same.merge(&o.same);
        self.cross.merge(&o.cross);
        self.rx_window += o.rx_window;
        self.received += o.received;
        self.gaps += o.gaps;
        self.dups += o.dups;
        self.bad += o.bad;
        for (k, v) in o.closes {
            *self.closes.entry(k).or_default() += v;
        }
        self.errors += o.errors;
        self.first_error = self.first_error.take().or(o.first_error);
    }
}

/// Parse a decimal number at the start of `b`; returns it and the rest
/// after the one separator byte that ended it.
fn number(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => v = v.wrapping_mul(10).wrapping_add(u64::from(c - b'0')),
            _ if i > 0 => return Some((v, &b[i + 1..])),
            _ => return None,
        }
    }
    (!b.is_empty()).then_some((v, &[]))
}

/// A masked client frame of opcode `op` with `payload` (< 126 bytes) into
/// `out`; returns its length.
pub fn client_frame(op: u8, payload: &[u8], key: u32, out: &mut [u8; 136]) -> usize {
    let n = payload.len().min(125);
    out[0] = 0x80 | op;
    out[1] = 0x80 | n as u8;
    let mask = key.to_be_bytes();
    out[2..6].copy_from_slice(&mask);
    for (i, &b) in payload[..n].iter().enumerate() {
        out[6 + i] = b ^ mask[i & 3];
    }
    6 + n
}

struct Worker<'a> {
    shared: &'a Shared,
    stats: Stats,
    /// Next expected sequence number, per connection and sender.
    next_seq: Vec<u32>,
    /// This batch's receipts, per sender (flushed to `Shared`).
    batch: Vec<u64>,
    window: (u64, u64),
}

impl Worker<'_> {
    /// Handle the frames at the start of `buf` for connection `k`; returns
    /// how many bytes were whole frames (the rest is a cut frame).
    fn frames(&mut self, k: usize, conn: &mut Conn, buf: &[u8], now: u64) -> usize {
        let mut p = 0;
        while buf.len() - p >= 2 {
            let (b0, b1) = (buf[p], buf[p + 1]);
            let (len, head) = match b1 & 0x7f {
                126 if buf.len() - p >= 4 => {
                    (u64::from(u16::from_be_bytes([buf[p + 2], buf[p + 3]])), 4)
                }
                127 if buf.len() - p >= 10 => (
                    u64::from_be_bytes(buf[p + 2..p + 10].try_into().unwrap()),
                    10,
                ),
                126 | 127 => break,
                n => (u64::from(n), 2),
            };
            if len > (BUF / 2) as u64 || b1 & 0x80 != 0 {
                self.stats.bad += 1;
                self.fail(conn, "oversized or masked frame from the server".into());
                return buf.len();
            }
            let end = p + head + len as usize;
            if end > buf.len() {
                break;
            }
            let payload = &buf[p + head..end];
            match b0 & 0x0f {
                0x1 if b0 & 0x80 != 0 => self.text(k, conn.user, payload, now),
                0x8 => {
                    let code = payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    *self.stats.closes.entry(code).or_default() += 1;
                    conn.closed = true;
                }
                0x9 => {
                    let mut frame = [0u8; 136];
                    let n = client_frame(0xA, payload, 0x5eed_1234, &mut frame);
                    if let Err(e) = write_all(&conn.stream, &frame[..n]) {
                        self.fail(conn, format!("pong: {e}"));
                    }
                }
                0xA => {}
                _ => self.stats.bad += 1,
            }
            p = end;
        }
        p
    }

    fn text(&mut self, k: usize, user: usize, payload: &[u8], now: u64) {
        let parsed = number(payload).and_then(|(s, rest)| {
            let (q, rest) = number(rest)?;
            let (t, _) = number(rest)?;
            Some((s as usize, q as u32, t))
        });
        let Some((s, q, t)) = parsed.filter(|&(s, _, _)| s < self.shared.senders) else {
            self.stats.bad += 1;
            return;
        };
        self.stats.received += 1;
        self.batch[s] += 1;
        let next = &mut self.next_seq[k * self.shared.senders + s];
        if q == *next {
            *next += 1;
        } else if q > *next {
            self.stats.gaps += u64::from(q - *next);
            *next = q + 1;
        } else {
            self.stats.dups += 1;
        }
        let (start, end) = self.window;
        if now >= start && now < end {
            self.stats.rx_window += 1;
        }
        if t >= start && t < end {
            let lat = now.saturating_sub(t) * 1000;
            let nodes = self.shared.nodes;
            if s % nodes == user % nodes {
                self.stats.same.record(lat);
            } else {
                self.stats.cross.record(lat);
            }
        }
    }

    fn fail(&mut self, conn: &mut Conn, why: String) {
        if !conn.dead {
            conn.dead = true;
            self.shared.ended.fetch_add(1, Ordering::Relaxed);
            if !conn.closed {
                self.stats.errors += 1;
                self.stats
                    .first_error
                    .get_or_insert_with(|| format!("user {}: {why}", conn.user));
            }
        }
    }

    fn flush(&mut self, now: u64) {
        let mut total = 0;
        for (s, n) in self.batch.iter_mut().enumerate() {
            if *n > 0 {
                self.shared.delivered[s].fetch_add(*n, Ordering::Relaxed);
                total += *n;
                *n = 0;
            }
        }
        if total > 0 {
            self.shared.received.fetch_add(total, Ordering::Release);
            self.shared.last_rx_us.fetch_max(now, Ordering::Relaxed);
            if self.shared.sender_waiting.load(Ordering::Acquire) {
                if let Some(t) = self.shared.sender.get() {
                    t.unpark();
                }
            }
        }
    }
}

/// Read `conns` until `shared.quit`; returns this thread's counts.
pub fn run(mut conns: Vec<Conn>, shared: &Shared) -> Stats {
    let ep = Epoll::new().expect("epoll");
    for (k, c) in conns.iter().enumerate() {
        ep.add(c.stream.as_raw_fd(), libc::EPOLLIN as u32, k as u64)
            .expect("epoll_ctl");
    }
    let mut w = Worker {
        shared,
        stats: Stats::default(),
        next_seq: vec![0; conns.len() * shared.senders],
        batch: vec![0; shared.senders],
        window: (u64::MAX, u64::MAX),
    };
    let mut buf = vec![0u8; BUF];
    // Frames that came with the 101 response.
    let now = now_us();
    for (k, c) in conns.iter_mut().enumerate() {
        let first = std::mem::take(&mut c.carry);
        let used = w.frames(k, c, &first, now);
        c.carry.extend_from_slice(&first[used..]);
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    while !shared.quit.load(Ordering::Acquire) {
        let n = ep.wait(&mut events, 50);
        w.window = (
            shared.window_start.load(Ordering::Relaxed),
            shared.window_end.load(Ordering::Relaxed),
        );
        let mut now = 0;
        for ev in &events[..n] {
            let k = ev.u64 as usize;
            let c = &mut conns[k];
            if c.dead {
                continue;
            }
            let carried = c.carry.len();
            buf[..carried].copy_from_slice(&c.carry);
            c.carry.clear();
            let got = match (&c.stream).read(&mut buf[carried..]) {
                Ok(0) => {
                    w.fail(c, "EOF".into());
                    let _ = ep.delete(c.stream.as_raw_fd());
                    continue;
                }
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.carry.extend_from_slice(&buf[..carried]);
                    continue;
                }
                Err(e) => {
                    w.fail(c, format!("read: {e}"));
                    let _ = ep.delete(c.stream.as_raw_fd());
                    continue;
                }
            };
            now = now_us();
            let total = carried + got;
            let used = w.frames(k, c, &buf[..total], now);
            c.carry.extend_from_slice(&buf[used..total]);
            if c.dead {
                let _ = ep.delete(c.stream.as_raw_fd());
            }
        }
        w.flush(now);
        if n > 0 && !shared.coalesce.is_zero() {
            std::thread::sleep(shared.coalesce);
        }
    }
    w.stats
}
