//! Fault injection for the write-path tests (`tests/faults.rs`): an
//! in-memory duplex whose ends misbehave on a schedule (`WouldBlock`,
//! `Interrupted`, `TimedOut`, short writes, a broken pipe), a reference
//! decoder of the bytes on the wire written from RFC 6455 §5.2 and
//! RFC 7692 §7.2 independently of the crate under test, and drivers that
//! use the connection the way the write contract says a caller may.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::{Arc, Mutex};

use wsproto::{Error, Message, MessageRef, WebSocket};

// ---------------------------------------------------------------- faults

/// What one call on the stream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Behaves: takes (or gives) as many bytes as it can.
    Pass,
    /// `Err(WouldBlock)`, nothing taken.
    WouldBlock,
    /// `Err(Interrupted)`, nothing taken (callers must retry it).
    Interrupted,
    /// `Err(TimedOut)`, nothing taken (a blocking socket's time-out).
    TimedOut,
    /// Takes (or gives) at most this many bytes (at least 1).
    Short(usize),
    /// `Err(BrokenPipe)`, nothing taken: the connection is gone.
    Broken,
}

impl Fault {
    /// The error this fault returns, if it returns one.
    fn error(self) -> Option<io::Error> {
        let kind = match self {
            Fault::WouldBlock => ErrorKind::WouldBlock,
            Fault::Interrupted => ErrorKind::Interrupted,
            Fault::TimedOut => ErrorKind::TimedOut,
            Fault::Broken => ErrorKind::BrokenPipe,
            Fault::Pass | Fault::Short(_) => return None,
        };
        Some(io::Error::new(kind, format!("injected {kind:?}")))
    }
}

/// Which fault each successive call gets.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Every call behaves.
    Clean,
    /// The faults in turn, starting over at the end.
    Cycle(Vec<Fault>),
    /// Seeded pseudo-random: each call gets an error (`WouldBlock`,
    /// `Interrupted` or `TimedOut`) with probability `error_percent` %,
    /// otherwise it moves between 1 and `max_bytes` bytes.
    Random {
        seed: u64,
        error_percent: u32,
        max_bytes: usize,
    },
}

impl Plan {
    /// `fault` on every other call, starting with the first.
    pub fn every_other(fault: Fault) -> Plan {
        Plan::Cycle(vec![fault, Fault::Pass])
    }

    /// Random 1 to 7 bytes per call, and an error on about one call in four.
    pub fn random(seed: u64) -> Plan {
        Plan::Random {
            seed,
            error_percent: 25,
            max_bytes: 7,
        }
    }
}

/// A running [`Plan`].
#[derive(Debug, Clone)]
pub struct Schedule {
    plan: Plan,
    calls: u64,
    rng: u64,
}

impl Schedule {
    pub fn new(plan: Plan) -> Schedule {
        let rng = match &plan {
            Plan::Random { seed, .. } => seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            _ => 1,
        };
        Schedule {
            plan,
            calls: 0,
            rng,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The fault of the next call.
    pub fn next(&mut self) -> Fault {
        let call = self.calls;
        self.calls += 1;
        match &self.plan {
            Plan::Clean => Fault::Pass,
            Plan::Cycle(faults) if faults.is_empty() => Fault::Pass,
            Plan::Cycle(faults) => faults[(call % faults.len() as u64) as usize],
            &Plan::Random {
                error_percent,
                max_bytes,
                ..
            } => {
                let r = self.next_random();
                if (r % 100) < u64::from(error_percent) {
                    [Fault::WouldBlock, Fault::Interrupted, Fault::TimedOut][(r >> 32) as usize % 3]
                } else {
                    Fault::Short(1 + (r >> 40) as usize % max_bytes.max(1))
                }
            }
        }
    }
}

// ---------------------------------------------------------------- duplex

/// One direction of the duplex: bytes written and not yet read, and every
/// byte ever written (the wire, for the reference decoder).
#[derive(Debug, Default)]
pub struct PipeState {
    pub unread: VecDeque<u8>,
    pub log: Vec<u8>,
    /// The writer hung up: reads of an empty pipe return 0 (EOF).
    pub closed: bool,
}

pub type Pipe = Arc<Mutex<PipeState>>;

/// Counters of what a [`FaultyStream`] did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub write_calls: u64,
    pub flush_calls: u64,
    pub read_calls: u64,
    pub write_errors: u64,
    pub read_errors: u64,
    /// Bytes taken by `write` after a `Broken` fault fired.
    pub written_after_broken: u64,
    pub broken: bool,
}

/// One end of an in-memory duplex whose calls fail on a schedule.
///
/// Reads of an empty pipe give `WouldBlock` (like a non-blocking socket)
/// unless the peer closed it. Writes never block on their own: only the
/// schedule makes them fail or fall short.
#[derive(Debug)]
pub struct FaultyStream {
    /// What this end reads.
    pub rx: Pipe,
    /// What this end writes.
    pub tx: Pipe,
    pub writes: Schedule,
    pub reads: Schedule,
    /// Whether `flush` takes its fault from the write schedule too.
    pub fault_flush: bool,
    /// Inject `Broken` at this write call (0-based) instead of the
    /// scheduled fault; later calls behave again, so that a library that
    /// keeps writing after a hard error shows on the wire.
    pub broken_at_write: Option<u64>,
    pub stats: Stats,
}

impl FaultyStream {
    fn new(rx: Pipe, tx: Pipe) -> FaultyStream {
        FaultyStream {
            rx,
            tx,
            writes: Schedule::new(Plan::Clean),
            reads: Schedule::new(Plan::Clean),
            fault_flush: false,
            broken_at_write: None,
            stats: Stats::default(),
        }
    }

    /// A stream whose writes follow `plan` and that has nothing to read.
    pub fn writer(plan: Plan) -> FaultyStream {
        let mut s = FaultyStream::new(Pipe::default(), Pipe::default());
        s.writes = Schedule::new(plan);
        s
    }

    /// A stream that reads `input` (then EOF) and writes per `plan`.
    pub fn with_input(input: Vec<u8>, read_plan: Plan, write_plan: Plan) -> FaultyStream {
        let rx = Pipe::default();
        {
            let mut p = rx.lock().unwrap();
            p.unread.extend(&input);
            p.log = input;
            p.closed = true;
        }
        let mut s = FaultyStream::new(rx, Pipe::default());
        s.reads = Schedule::new(read_plan);
        s.writes = Schedule::new(write_plan);
        s
    }

    /// Every byte this end has written.
    pub fn wire(&self) -> Vec<u8> {
        self.tx.lock().unwrap().log.clone()
    }

    /// Hang up the write direction: the peer reads EOF once it drained it.
    pub fn hang_up(&self) {
        self.tx.lock().unwrap().closed = true;
    }
}

/// Two connected ends (a, b): what a writes, b reads, and back.
pub fn duplex() -> (FaultyStream, FaultyStream) {
    let (ab, ba) = (Pipe::default(), Pipe::default());
    (
        FaultyStream::new(ba.clone(), ab.clone()),
        FaultyStream::new(ab, ba),
    )
}

/// The read half keeps the read schedule, the write half the write
/// schedule; both keep the pipes (so the `tx` log still shows the wire).
impl wsproto::SplitStream for FaultyStream {
    type ReadHalf = FaultyStream;
    type WriteHalf = FaultyStream;
    fn split_stream(self) -> io::Result<(FaultyStream, FaultyStream)> {
        let mut read = FaultyStream::new(self.rx.clone(), self.tx.clone());
        read.reads = self.reads.clone();
        // The read half must not write: make any write show.
        read.writes = Schedule::new(Plan::Cycle(vec![Fault::Broken]));
        let mut write = self;
        write.reads = Schedule::new(Plan::Cycle(vec![Fault::Broken]));
        Ok((read, write))
    }
}

impl Read for FaultyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stats.read_calls += 1;
        let fault = self.reads.next();
        if let Some(e) = fault.error() {
            self.stats.read_errors += 1;
            return Err(e);
        }
        let mut pipe = self.rx.lock().unwrap();
        if pipe.unread.is_empty() {
            return if pipe.closed || buf.is_empty() {
                Ok(0)
            } else {
                Err(io::Error::new(ErrorKind::WouldBlock, "pipe empty"))
            };
        }
        let limit = match fault {
            Fault::Short(n) => n.max(1),
            _ => usize::MAX,
        };
        let n = buf.len().min(limit).min(pipe.unread.len());
        for (slot, b) in buf[..n].iter_mut().zip(pipe.unread.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl Write for FaultyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let call = self.stats.write_calls;
        self.stats.write_calls += 1;
        let fault = if self.broken_at_write == Some(call) {
            self.stats.broken = true;
            Fault::Broken
        } else {
            self.writes.next()
        };
        if let Some(e) = fault.error() {
            self.stats.write_errors += 1;
            return Err(e);
        }
        let n = match fault {
            Fault::Short(n) => buf.len().min(n.max(1)),
            _ => buf.len(),
        };
        if self.stats.broken {
            self.stats.written_after_broken += n as u64;
        }
        let mut pipe = self.tx.lock().unwrap();
        pipe.unread.extend(&buf[..n]);
        pipe.log.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stats.flush_calls += 1;
        if self.fault_flush {
            if let Some(e) = self.writes.next().error() {
                self.stats.write_errors += 1;
                return Err(e);
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------ reference decoder

/// Opcodes (RFC 6455 §11.8).
pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// One frame as decoded by [`RefDecoder`]: payload unmasked and, for an
/// RSV1 frame, inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefFrame {
    pub opcode: u8,
    pub compressed: bool,
    pub payload: Vec<u8>,
}

impl RefFrame {
    /// The frame a message is expected to become.
    pub fn of(message: &Message) -> RefFrame {
        let (opcode, payload) = match message {
            Message::Text(t) => (OP_TEXT, t.as_bytes().to_vec()),
            Message::Binary(b) => (OP_BINARY, b.clone()),
            Message::Ping(p) => (OP_PING, p.clone()),
            Message::Pong(p) => (OP_PONG, p.clone()),
            Message::Close(None) => (OP_CLOSE, Vec::new()),
            Message::Close(Some(f)) => {
                let mut p = u16::from(f.code).to_be_bytes().to_vec();
                p.extend_from_slice(f.reason.as_bytes());
                (OP_CLOSE, p)
            }
        };
        RefFrame {
            opcode,
            compressed: false,
            payload,
        }
    }

    /// Same opcode and payload (compression aside).
    pub fn same_message(&self, other: &RefFrame) -> bool {
        self.opcode == other.opcode && self.payload == other.payload
    }
}

/// A short description of a frame for assertion messages.
pub fn describe(f: &RefFrame) -> String {
    let head: Vec<u8> = f.payload.iter().take(12).copied().collect();
    format!(
        "op {:#x}{} len {} starting {:02x?}",
        f.opcode,
        if f.compressed { " (deflated)" } else { "" },
        f.payload.len(),
        head
    )
}

/// A decoder of one direction of a connection, written from RFC 6455 §5.2
/// (base framing), §5.3 (masking), §5.5 (control frames) and RFC 7692 §7.2
/// (permessage-deflate) without using the crate under test. Strict about
/// what the write contract promises: every frame whole, final (one frame
/// per message), minimally encoded, masked exactly when the sender is a
/// client.
#[derive(Debug)]
pub struct RefDecoder {
    pub masked: bool,
    /// Inflater for RSV1 frames (None: RSV1 is a protocol error).
    inflate: Option<flate2::Decompress>,
    /// The sender resets its compressor after each message.
    pub no_context_takeover: bool,
}

impl RefDecoder {
    /// For frames from a client (`masked`) or a server, with or without
    /// permessage-deflate.
    pub fn new(masked: bool, deflate: bool) -> RefDecoder {
        RefDecoder {
            masked,
            inflate: deflate.then(|| flate2::Decompress::new(false)),
            no_context_takeover: false,
        }
    }

    /// Decode every frame in `wire`; an error names the frame and what is
    /// wrong with it (including a partial frame at the end).
    pub fn decode_all(&mut self, wire: &[u8]) -> Result<Vec<RefFrame>, String> {
        let mut frames = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let (frame, used) = self.decode_one(&wire[at..]).map_err(|e| {
                format!("frame {} at byte {at} of {}: {e}", frames.len(), wire.len())
            })?;
            frames.push(frame);
            at += used;
        }
        Ok(frames)
    }

    /// Decode the frame at the start of `b`: the frame and its length.
    pub fn decode_one(&mut self, b: &[u8]) -> Result<(RefFrame, usize), String> {
        let need = |n: usize| {
            if b.len() < n {
                Err(format!("truncated: {} bytes, the frame needs {n}", b.len()))
            } else {
                Ok(())
            }
        };
        need(2)?;
        let fin = b[0] & 0x80 != 0;
        let rsv1 = b[0] & 0x40 != 0;
        let rsv23 = b[0] & 0x30;
        let opcode = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let len7 = (b[1] & 0x7f) as u64;
        let mut at = 2;
        let len = match len7 {
            126 => {
                need(4)?;
                let l = u16::from_be_bytes([b[2], b[3]]) as u64;
                if l < 126 {
                    return Err(format!("16-bit length {l} not minimal"));
                }
                at = 4;
                l
            }
            127 => {
                need(10)?;
                let l = u64::from_be_bytes(b[2..10].try_into().unwrap());
                if l >> 63 != 0 {
                    return Err("64-bit length with its high bit set".into());
                }
                if l <= 0xffff {
                    return Err(format!("64-bit length {l} not minimal"));
                }
                at = 10;
                l
            }
            l => l,
        };
        if rsv23 != 0 {
            return Err(format!("RSV2/RSV3 set: {:#x}", b[0]));
        }
        if !matches!(opcode, 0x0..=0x2 | 0x8..=0xa) {
            return Err(format!("reserved opcode {opcode:#x}"));
        }
        if opcode == OP_CONT {
            return Err("continuation frame: messages must be sent as one frame".into());
        }
        if !fin {
            return Err(format!(
                "FIN clear on op {opcode:#x}: messages must be one frame"
            ));
        }
        let control = opcode >= 0x8;
        if control && len > 125 {
            return Err(format!(
                "control frame op {opcode:#x} with {len} bytes (max 125)"
            ));
        }
        if rsv1 && (control || self.inflate.is_none()) {
            return Err(format!(
                "RSV1 on op {opcode:#x} (deflate {})",
                if self.inflate.is_some() { "on" } else { "off" }
            ));
        }
        if masked != self.masked {
            return Err(format!(
                "frame is {}masked, expected {}masked",
                if masked { "" } else { "un" },
                if self.masked { "" } else { "un" }
            ));
        }
        let key = if masked {
            need(at + 4)?;
            let k = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(k)
        } else {
            None
        };
        let len = usize::try_from(len).map_err(|_| "length overflows usize".to_string())?;
        need(at + len)?;
        let mut payload = b[at..at + len].to_vec();
        if let Some(k) = key {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= k[i % 4];
            }
        }
        if rsv1 {
            payload = self.inflate(&payload)?;
        }
        if opcode == OP_TEXT && std::str::from_utf8(&payload).is_err() {
            return Err("text frame is not UTF-8".into());
        }
        Ok((
            RefFrame {
                opcode,
                compressed: rsv1,
                payload,
            },
            at + len,
        ))
    }

    /// RFC 7692 §7.2.2: append `00 00 ff ff` and inflate.
    fn inflate(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        let d = self.inflate.as_mut().expect("checked by the caller");
        let mut input = data.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(data.len() * 4 + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 4096 {
                out.reserve(out.capacity().max(4096));
            }
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(&input[pos..], &mut out, flate2::FlushDecompress::Sync)
                .map_err(|e| format!("inflate: {e}"))?;
            pos += (d.total_in() - in0) as usize;
            let progressed = d.total_in() != in0 || d.total_out() != out0;
            if status == flate2::Status::StreamEnd {
                return Err("deflate stream ended (BFINAL set)".into());
            }
            if pos >= input.len() && out.len() < out.capacity() {
                break;
            }
            if !progressed {
                return Err(format!(
                    "inflate stuck at input byte {pos} of {}",
                    input.len()
                ));
            }
        }
        if self.no_context_takeover {
            d.reset(false);
        }
        Ok(out)
    }
}

/// Decode `wire` and check it is exactly `sent`, in order, each frame
/// whole; panics with the first difference.
pub fn assert_wire(label: &str, wire: &[u8], masked: bool, deflate: bool, sent: &[Message]) {
    let frames = RefDecoder::new(masked, deflate)
        .decode_all(wire)
        .unwrap_or_else(|e| panic!("{label}: bad wire: {e}"));
    let want: Vec<RefFrame> = sent.iter().map(RefFrame::of).collect();
    for (i, (got, want)) in frames.iter().zip(&want).enumerate() {
        assert!(
            got.same_message(want),
            "{label}: frame {i} differs: got {}, sent {}",
            describe(got),
            describe(want)
        );
    }
    assert_eq!(
        frames.len(),
        want.len(),
        "{label}: {} frames on the wire, {} messages sent (last frames: {:?})",
        frames.len(),
        want.len(),
        frames
            .iter()
            .rev()
            .take(3)
            .map(describe)
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------- drivers

/// A retryable time-out per the write contract.
pub fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// `Error::WriteBufferFull`: the message was not queued.
pub fn is_buffer_full(e: &Error) -> bool {
    matches!(e, Error::WriteBufferFull)
}

/// `Error::StreamFailed`: an earlier hard I/O error failed the connection.
pub fn is_stream_failed(e: &Error) -> bool {
    matches!(e, Error::StreamFailed)
}

/// The writing side of a connection: [`WebSocket`] or the split writer.
pub trait Sink {
    fn sink_write(&mut self, m: MessageRef<'_>) -> wsproto::Result<()>;
    fn sink_flush(&mut self) -> wsproto::Result<()>;
}

impl<S: Read + Write> Sink for WebSocket<S> {
    fn sink_write(&mut self, m: MessageRef<'_>) -> wsproto::Result<()> {
        self.write_ref(m)
    }
    fn sink_flush(&mut self) -> wsproto::Result<()> {
        self.flush()
    }
}

impl<S: wsproto::SplitStream> Sink for wsproto::WsWriter<S> {
    fn sink_write(&mut self, m: MessageRef<'_>) -> wsproto::Result<()> {
        self.write_ref(m)
    }
    fn sink_flush(&mut self) -> wsproto::Result<()> {
        self.flush()
    }
}

/// Call `flush` until it returns `Ok`, as the contract allows after a
/// `WouldBlock`/`TimedOut`; returns how many calls it took. Panics on any
/// other error (an `Interrupted` must have been retried inside) and when
/// `max_calls` calls make no end of it.
pub fn flush_until_ok(ws: &mut impl Sink, max_calls: usize, label: &str) -> usize {
    for call in 1..=max_calls {
        match ws.sink_flush() {
            Ok(()) => return call,
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("{label}: flush call {call} failed: {e:?}"),
        }
    }
    panic!("{label}: flush still not done after {max_calls} calls")
}

/// Queue `m` as the contract allows: on `WriteBufferFull`, flush until
/// done and retry the same message. Panics if `write` reports anything
/// else (a time-out in `write` is not for `write` to report).
pub fn write_queued(ws: &mut impl Sink, m: MessageRef<'_>, max_calls: usize, label: &str) {
    for attempt in 0..3 {
        match ws.sink_write(m.clone()) {
            Ok(()) => return,
            Err(e) if is_buffer_full(&e) => {
                flush_until_ok(ws, max_calls, label);
            }
            Err(e) => panic!("{label}: write (attempt {attempt}) failed: {e:?}"),
        }
    }
    panic!("{label}: write still refused with WriteBufferFull after an Ok flush")
}
