//! Shared pieces of the wsproto fuzz targets: in-memory streams that serve
//! the fuzz input, and independent reference models (oracles) that the
//! targets compare wsproto against.
//!
//! The oracles are written from RFC 6455 directly and share no code with
//! `wsproto` beyond its public types, so a bug has to be made twice, the
//! same way, to slip through.

pub mod deflate;
pub mod http;
pub mod messages;

use std::io::{self, Read, Write};

/// A `Read + Write` stream that reads from a byte slice in chunks of at
/// most `chunk` bytes, optionally injecting a `WouldBlock` (a read time-out)
/// or an `Interrupted` error before every real read, and captures what is
/// written.
#[derive(Debug)]
pub struct FuzzStream<'a> {
    input: &'a [u8],
    pos: usize,
    chunk: usize,
    would_block: bool,
    interrupt: bool,
    /// Whether the last call returned an injected error (so the next one
    /// makes progress).
    faulted: bool,
    /// Everything written to the stream.
    pub written: Vec<u8>,
    /// How many `WouldBlock` errors were injected.
    pub would_blocks: usize,
}

impl<'a> FuzzStream<'a> {
    /// A stream serving `input` whole, without injected errors.
    pub fn new(input: &'a [u8]) -> FuzzStream<'a> {
        FuzzStream::with_faults(input, usize::MAX, false, false)
    }

    /// A stream serving `input` at most `chunk` bytes per read (0 means 1).
    pub fn chunked(input: &'a [u8], chunk: usize) -> FuzzStream<'a> {
        FuzzStream::with_faults(input, chunk, false, false)
    }

    /// A stream serving `input` in chunks, with injected errors before
    /// every real read: `WouldBlock` if `would_block`, else `Interrupted`
    /// if `interrupt`.
    pub fn with_faults(
        input: &'a [u8],
        chunk: usize,
        would_block: bool,
        interrupt: bool,
    ) -> FuzzStream<'a> {
        FuzzStream {
            input,
            pos: 0,
            chunk: chunk.max(1),
            would_block,
            interrupt,
            faulted: false,
            written: Vec::new(),
            would_blocks: 0,
        }
    }

    /// Change the injected errors from now on (e.g. after a handshake).
    pub fn set_faults(&mut self, chunk: usize, would_block: bool, interrupt: bool) {
        self.chunk = chunk.max(1);
        self.would_block = would_block;
        self.interrupt = interrupt;
    }

    /// How many input bytes have been served so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }
}

impl Read for FuzzStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.faulted && (self.would_block || self.interrupt) {
            self.faulted = true;
            if self.would_block {
                self.would_blocks += 1;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.faulted = false;
        let rest = &self.input[self.pos..];
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for FuzzStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Read chunk sizes worth trying for HTTP heads: byte by byte, odd sizes
/// that split `\r\n\r\n`, and everything at once.
pub const HEAD_CHUNKS: [usize; 6] = [1, 3, 7, 64, 1024, usize::MAX];

/// Pick a chunk size from the input length, so the input itself stays a
/// plain HTTP head (readable corpus files) and sizes still vary.
pub fn head_chunk(input: &[u8]) -> usize {
    HEAD_CHUNKS[input.len() % HEAD_CHUNKS.len()]
}
