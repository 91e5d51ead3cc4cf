//! Steady-state reading and writing allocate nothing: a counting global
//! allocator watches 10 000 messages go through `read_ref` / `write_ref`,
//! and through `read` / `write_ref` / `recycle`.
//!
//! This file is its own test binary, so the counter sees only these tests,
//! which take turns (`SERIAL`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Cursor, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use wsproto::{apply_mask, Config, Message, MessageRef, Role, WebSocket};

/// One test at a time, so each counts only its own allocations.
static SERIAL: Mutex<()> = Mutex::new(());

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Reads from a prepared buffer, throws writes away (without allocating).
struct Pipe {
    input: Cursor<Vec<u8>>,
    written: usize,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `count` masked client frames: text and binary of 16 to 300 bytes, with
/// a fragmented message and a ping every 100 messages.
fn client_traffic(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |first: u8, payload: &[u8]| {
        let mask = [0x5a, 0x17, 0xc3, 0x81];
        out.push(first);
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        let at = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[at..], mask, 0);
    };
    for i in 0..count {
        let len = 16 + (i * 37) % 285;
        let payload: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        if i % 100 == 50 {
            push(0x01, &payload[..len / 2]);
            push(0x89, b"ping");
            push(0x80, &payload[len / 2..]);
        } else if i % 2 == 0 {
            push(0x81, &payload);
        } else {
            push(0x82, &payload);
        }
    }
    out
}

/// Warm-up: every message size occurs (37 and 285 are coprime, so 300
/// messages cover them) and the read buffer grows to its cap (64 KiB, after
/// about 62 KiB of input, some 400 messages).
const WARMUP: usize = 1_000;
const MESSAGES: usize = 10_000;

/// A server reading the client traffic, and the data messages it echoed.
fn server() -> WebSocket<Pipe> {
    let input = client_traffic(WARMUP + MESSAGES);
    let pipe = Pipe {
        input: Cursor::new(input),
        written: 0,
    };
    let config = Config {
        #[cfg(feature = "deflate")]
        deflate: None,
        ..Config::default()
    };
    WebSocket::from_raw_socket(pipe, Role::Server, &config)
}

/// Run `echo_one` (which echoes one data message and returns its length,
/// or `None` after a control frame) over the warm-up, then count the
/// allocations of the next `MESSAGES` data messages.
fn allocations_in_steady_state(
    ws: &mut WebSocket<Pipe>,
    mut echo_one: impl FnMut(&mut WebSocket<Pipe>) -> Option<usize>,
) -> usize {
    let mut run = |ws: &mut WebSocket<Pipe>, messages: usize| -> usize {
        let (mut data, mut bytes) = (0, 0);
        while data < messages {
            if let Some(len) = echo_one(ws) {
                data += 1;
                bytes += len;
            }
            if !ws.has_buffered_input() {
                ws.flush().expect("flush");
            }
        }
        bytes
    };
    run(ws, WARMUP);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let bytes = run(ws, MESSAGES);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    ws.flush().unwrap();
    assert!(bytes > MESSAGES * 16);
    assert!(
        ws.get_ref().written > bytes,
        "echoes and pongs were written"
    );
    allocations
}

#[test]
fn reading_and_echoing_10_000_messages_allocates_nothing_in_steady_state() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ws = server();
    let mut echo = Vec::with_capacity(1024);
    let allocations = allocations_in_steady_state(&mut ws, |ws| {
        let (binary, text) = match ws.read_ref().expect("valid traffic") {
            MessageRef::Text(t) => (false, t.as_bytes()),
            MessageRef::Binary(b) => (true, b),
            _ => return None,
        };
        echo.clear();
        echo.extend_from_slice(text);
        let reply = if binary {
            MessageRef::Binary(&echo)
        } else {
            MessageRef::Text(std::str::from_utf8(&echo).expect("text is UTF-8"))
        };
        ws.write_ref(reply).expect("write");
        Some(echo.len())
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while reading and echoing {MESSAGES} messages"
    );
}

#[test]
fn owned_messages_with_recycled_buffers_allocate_nothing_in_steady_state() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ws = server();
    let allocations = allocations_in_steady_state(&mut ws, |ws| {
        let data = match ws.read().expect("valid traffic") {
            Message::Text(t) => {
                ws.write_ref(MessageRef::Text(&t)).expect("write");
                t.into_bytes()
            }
            Message::Binary(b) => {
                ws.write_ref(MessageRef::Binary(&b)).expect("write");
                b
            }
            _ => return None,
        };
        let len = data.len();
        ws.recycle(data);
        Some(len)
    });
    // The traffic has a ping every 100 messages, and `read` returns a
    // ping's payload in a Vec of its own: those are the only allocations.
    assert_eq!(
        allocations,
        MESSAGES / 100,
        "{allocations} allocations while reading, echoing and recycling {MESSAGES} messages \
         (expected one per ping)"
    );
}

#[test]
fn owned_messages_without_recycling_allocate_one_buffer_each() {
    // The counter-check of the test above: `read` alone allocates.
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ws = server();
    let allocations = allocations_in_steady_state(&mut ws, |ws| match ws.read() {
        Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
            ws.write_ref(m.as_ref()).expect("write");
            Some(m.len())
        }
        Ok(_) => None,
        Err(e) => panic!("valid traffic: {e}"),
    });
    assert!(
        allocations >= MESSAGES,
        "{allocations} allocations for {MESSAGES} owned messages"
    );
}

#[test]
fn one_mib_messages_reuse_their_buffer() {
    // A message of exactly the kept size (1 MiB) must not grow its buffer
    // past it, or the buffer is freed and allocated again every time.
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let payload = vec![0x5a_u8; 1 << 20];
    let mut input = Vec::new();
    for _ in 0..20 {
        input.extend_from_slice(&[0x82, 0x80 | 127]);
        input.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        input.extend_from_slice(&[0, 0, 0, 0]); // zero mask: payload as is
        input.extend_from_slice(&payload);
    }
    let pipe = Pipe {
        input: Cursor::new(input),
        written: 0,
    };
    let mut ws = WebSocket::from_raw_socket(pipe, Role::Server, &Config::default());
    let read_one = |ws: &mut WebSocket<Pipe>| match ws.read_ref().expect("valid frame") {
        MessageRef::Binary(b) => assert!(b == payload.as_slice()),
        other => panic!("binary expected, got {other:?}"),
    };
    for _ in 0..5 {
        read_one(&mut ws);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..15 {
        read_one(&mut ws);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for 15 messages of 1 MiB"
    );
}
