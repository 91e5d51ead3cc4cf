//! Helpers shared by the integration tests: an in-memory stream, a frame
//! encoder written from RFC 6455 §5.2 independently of the crate under test,
//! and a parser for what a `WebSocket` wrote.
//!
//! Each test crate uses only some of these, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{self, Cursor, IoSliceMut, Read, Write};

use wsproto::{read_frame, Frame, OpCode};

#[cfg(feature = "tls")]
pub mod pki;

/// The masking key of RFC 6455 §5.7's examples, used for crafted client frames.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// An in-memory `Read + Write` stream: reads come from a fixed input, writes
/// are captured. `max_read` bounds how many bytes one `read` call returns
/// (1 makes a worst-case, byte-at-a-time peer).
#[derive(Debug)]
pub struct MemStream {
    pub input: Cursor<Vec<u8>>,
    pub output: Vec<u8>,
    pub max_read: usize,
    /// Every read request: (bytes asked for, bytes given, the length of
    /// each slice asked to fill).
    pub requests: Vec<(usize, usize, Vec<usize>)>,
}

impl MemStream {
    pub fn new(input: Vec<u8>) -> MemStream {
        MemStream {
            input: Cursor::new(input),
            output: Vec::new(),
            max_read: usize::MAX,
            requests: Vec::new(),
        }
    }

    /// A stream whose every `read` returns at most one byte.
    pub fn one_byte(input: Vec<u8>) -> MemStream {
        MemStream {
            max_read: 1,
            ..MemStream::new(input)
        }
    }

    /// How many input bytes were consumed.
    pub fn consumed(&self) -> u64 {
        self.input.position()
    }
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max_read);
        let got = self.input.read(&mut buf[..n])?;
        self.requests.push((buf.len(), got, vec![buf.len()]));
        Ok(got)
    }

    /// Like a socket's `readv`: fills the buffers in order, up to
    /// `max_read` bytes in all.
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let slices: Vec<usize> = bufs.iter().map(|b| b.len()).collect();
        let (mut total, mut budget) = (0, self.max_read);
        for buf in bufs.iter_mut() {
            let want = buf.len().min(budget);
            let got = self.input.read(&mut buf[..want])?;
            total += got;
            budget -= got;
            if got < buf.len() {
                break;
            }
        }
        self.requests.push((slices.iter().sum(), total, slices));
        Ok(total)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hands out at most one byte per `read` call.
pub struct OneByteReader<'a>(pub &'a [u8]);

impl Read for OneByteReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Encode one frame by hand (RFC 6455 §5.2), always with the minimal
/// length encoding. `rsv` is the three RSV bits (RSV1 = 4), `opcode` the raw
/// 4-bit value, `mask` the key to mask `payload` with (the frame then
/// carries the masked bytes).
pub fn frame_bytes(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len <= 125 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A frame as a client sends it: masked with [`MASK`].
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_bytes(fin, 0, opcode, Some(MASK), payload)
}

/// A frame as a server sends it: unmasked.
pub fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_bytes(fin, 0, opcode, None, payload)
}

/// A Close frame payload: the code big-endian, then the reason bytes.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Opcode values (RFC 6455 §11.8).
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xa;

/// A frame read back from captured output, unmasked, with whether it was masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    pub opcode: OpCode,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// The close code of a Close frame (None if it has no body).
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, OpCode::Close, "not a Close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The reason of a Close frame.
    pub fn close_reason(&self) -> String {
        assert_eq!(self.opcode, OpCode::Close, "not a Close frame: {self:?}");
        String::from_utf8(self.payload.get(2..).unwrap_or_default().to_vec())
            .expect("close reason we wrote must be UTF-8")
    }
}

/// Parse every frame in `bytes` with `wsproto::read_frame`; panics on
/// trailing garbage, since what we parse here is our own output.
pub fn parse_frames(bytes: &[u8]) -> Vec<WireFrame> {
    let mut r = bytes;
    let mut frames = Vec::new();
    while !r.is_empty() {
        let mut frame: Frame = read_frame(&mut r, usize::MAX).expect("well-formed output frame");
        let masked = frame.header.mask.is_some();
        frame.unmask();
        frames.push(WireFrame {
            fin: frame.header.fin,
            opcode: frame.header.opcode,
            masked,
            payload: frame.payload,
        });
    }
    frames
}

/// The value of header `name` (case-insensitive) in an HTTP head.
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}
