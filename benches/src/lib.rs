//! Shared pieces of the wsproto benchmarks (the benchmarks themselves are in
//! `benches/`): the baseline ciphers, buffers at a chosen alignment, an
//! in-memory stream, and the inputs (frames on the wire, a browser's
//! upgrade request).
//!
//! Run everything with `cargo bench -p benches`, then
//! `python3 benches/summarize.py` for the Markdown table.

use std::io::{self, Read, Write};
use std::time::Duration;

use wsproto::{mask_frame_in_place, write_frame, Frame};

/// How long each benchmark warms up and measures: short enough that the
/// whole suite runs in a few minutes on 2 cores.
pub const WARM_UP: Duration = Duration::from_millis(400);
/// See [`WARM_UP`].
pub const MEASURE: Duration = Duration::from_millis(1200);
/// Criterion samples per benchmark (its minimum is 10).
pub const SAMPLES: usize = 30;

/// `criterion_group!` + `criterion_main!` with the timing above, for the
/// benchmark files (which have criterion as a dev-dependency):
/// `benches::bench_main!(cipher);`.
#[macro_export]
macro_rules! bench_main {
    ($($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = benches;
            config = criterion::Criterion::default()
                .warm_up_time($crate::WARM_UP)
                .measurement_time($crate::MEASURE)
                .sample_size($crate::SAMPLES);
            targets = $($target),+
        }
        criterion::criterion_main!(benches);
    };
}

/// The masking key every benchmark uses (RFC 6455 §5.7's example key).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The signature every cipher under test shares: `wsproto::apply_mask`'s.
pub type Cipher = fn(&mut [u8], [u8; 4], usize);

/// Baseline 1: the byte-by-byte loop, RFC 6455 §5.3 written out.
#[inline]
pub fn naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= mask[(offset + i) & 3];
    }
}

/// Baseline 2: tungstenite's cipher, reproduced from tungstenite 0.30.0
/// `src/protocol/frame/mask.rs` (`apply_mask_fast32` and
/// `apply_mask_fallback`, MIT/Apache-2.0, (c) the tungstenite-rs authors).
///
/// tungstenite has no offset parameter (it always unmasks a whole frame),
/// so for an offset the mask is rotated first, as a caller would.
#[inline]
pub fn tungstenite(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut mask = mask;
    mask.rotate_left(offset % 4);
    tungstenite_fast32(buf, mask);
}

/// tungstenite's `apply_mask_fallback`, verbatim.
#[inline]
fn tungstenite_fallback(buf: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// tungstenite's `apply_mask_fast32`, verbatim but for the SAFETY comment.
#[inline]
fn tungstenite_fast32(buf: &mut [u8], mask: [u8; 4]) {
    let mask_u32 = u32::from_ne_bytes(mask);

    // SAFETY: every bit pattern is a valid u32, so viewing the aligned middle
    // of a byte slice as u32 words is sound (as in tungstenite).
    let (prefix, words, suffix) = unsafe { buf.align_to_mut::<u32>() };
    tungstenite_fallback(prefix, mask);
    let head = prefix.len() & 3;
    let mask_u32 = if head > 0 {
        if cfg!(target_endian = "big") {
            mask_u32.rotate_left(8 * head as u32)
        } else {
            mask_u32.rotate_right(8 * head as u32)
        }
    } else {
        mask_u32
    };
    for word in words.iter_mut() {
        *word ^= mask_u32;
    }
    tungstenite_fallback(suffix, mask_u32.to_ne_bytes());
}

/// Baseline 3, the speed limit: XOR every byte with one constant, which
/// reads and writes the memory once and does nothing else.
///
/// The loop is compiled with AVX2 when the CPU has it (as wsproto's own
/// cipher is chosen at run time), so the limit is not held back by the
/// SSE2-only code the default x86-64 target gets.
#[inline]
pub fn xor_const(buf: &mut [u8], byte: u8) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected just above.
        unsafe { xor_const_avx2(buf, byte) };
        return;
    }
    xor_const_plain(buf, byte);
}

#[inline(always)]
fn xor_const_plain(buf: &mut [u8], byte: u8) {
    for b in buf.iter_mut() {
        *b ^= byte;
    }
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn xor_const_avx2(buf: &mut [u8], byte: u8) {
    xor_const_plain(buf, byte);
}

/// A heap buffer whose data can start at a chosen distance from a 64-byte
/// boundary, to benchmark aligned and unaligned starts on purpose rather
/// than wherever the allocator happens to put a `Vec`.
pub struct AlignedBuf {
    storage: Vec<u8>,
    base: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` bytes of arbitrary data, the same for every buffer.
    pub fn new(len: usize) -> AlignedBuf {
        let mut storage = vec![0u8; len + 128];
        let base = (64 - storage.as_ptr() as usize % 64) % 64;
        // The same bytes at the same distance from `base` in every buffer.
        for (i, byte) in storage[base..].iter_mut().enumerate() {
            *byte = (i * 31 + 7) as u8;
        }
        AlignedBuf { storage, base, len }
    }

    /// The `len` bytes starting `misalign` bytes past a 64-byte boundary
    /// (`misalign` < 64).
    pub fn slice_mut(&mut self, misalign: usize) -> &mut [u8] {
        let start = self.base + misalign;
        &mut self.storage[start..start + self.len]
    }
}

/// A `Read + Write` stream over bytes in memory: reads come from `input`,
/// writes are counted and dropped. Lets the benchmarks time the protocol
/// code without the kernel's sockets; [`MemStream::rewind`] replays the
/// same input, so one connection (its buffers already grown) can serve
/// every iteration.
pub struct MemStream<'a> {
    input: &'a [u8],
    /// How much of `input` has been read.
    pos: usize,
    /// Bytes written so far.
    pub written: usize,
}

impl<'a> MemStream<'a> {
    /// A stream that will read `input`, then end.
    pub fn new(input: &'a [u8]) -> MemStream<'a> {
        MemStream {
            input,
            pos: 0,
            written: 0,
        }
    }

    /// Read `input` again from its start.
    pub fn rewind(&mut self) {
        self.pos = 0;
    }

    /// Bytes of `input` not read yet.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&self.input[self.pos..]).read(buf)?;
        self.pos += n;
        Ok(n)
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `count` binary frames of `size` payload bytes each, as they arrive on the
/// wire: masked with fresh keys (what a server reads from a client) or not
/// (what a client reads from a server).
pub fn wire_frames(count: usize, size: usize, masked: bool) -> Vec<u8> {
    let mut wire = Vec::with_capacity(count * (size + 14));
    for i in 0..count {
        let payload: Vec<u8> = (0..size).map(|j| (i + j) as u8).collect();
        let mut frame = Frame::binary(payload);
        if masked {
            mask_frame_in_place(&mut frame);
        }
        // Writing to a Vec cannot fail.
        write_frame(&mut wire, &frame).expect("write to Vec");
    }
    wire
}

/// An upgrade request as Chrome sends it (header order and values as seen
/// from Chrome 124 on Linux), with the key from RFC 6455 §1.3.
pub const CHROME_REQUEST: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://example.com:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n\
Cookie: session=3f9a1c2b7d8e4f60a1b2c3d4e5f60718; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// [`CHROME_REQUEST`] without its `Sec-WebSocket-Extensions` line, so that
/// no compression context is set up: separates the cost of the handshake
/// from that of permessage-deflate.
pub fn chrome_request_without_extensions() -> Vec<u8> {
    let text = String::from_utf8_lossy(CHROME_REQUEST);
    text.split_inclusive("\r\n")
        .filter(|line| !line.starts_with("Sec-WebSocket-Extensions:"))
        .collect::<String>()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsproto::{read_frame, Message, Role, WebSocket};

    /// The baselines must compute the cipher too, or their timings mean
    /// nothing: compare them with wsproto's oracle.
    #[test]
    fn baselines_equal_the_reference_cipher() {
        for len in 0..=300 {
            for offset in 0..4 {
                for misalign in 0..8 {
                    let mut expected = AlignedBuf::new(len);
                    wsproto::apply_mask_naive(expected.slice_mut(misalign), MASK, offset);
                    let expected = expected.slice_mut(misalign).to_vec();
                    let cases: [(&str, Cipher); 3] = [
                        ("naive", naive),
                        ("tungstenite", tungstenite),
                        ("wsproto", wsproto::apply_mask),
                    ];
                    for (name, f) in cases {
                        let mut buf = AlignedBuf::new(len);
                        f(buf.slice_mut(misalign), MASK, offset);
                        assert_eq!(
                            buf.slice_mut(misalign),
                            &expected[..],
                            "{name} len {len} offset {offset} misalign {misalign}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn xor_const_xors_every_byte() {
        let mut buf = AlignedBuf::new(1000);
        let before = buf.slice_mut(1).to_vec();
        xor_const(buf.slice_mut(1), 0x5a);
        let after = buf.slice_mut(1);
        assert!(before.iter().zip(after.iter()).all(|(a, b)| a ^ 0x5a == *b));
    }

    #[test]
    fn wire_frames_read_back_through_both_apis() {
        for masked in [false, true] {
            let wire = wire_frames(3, 70_000, masked);
            let mut r: &[u8] = &wire;
            for i in 0..3 {
                let mut frame = read_frame(&mut r, 1 << 20).expect("frame");
                assert_eq!(frame.header.mask.is_some(), masked);
                frame.unmask();
                assert_eq!(frame.payload.len(), 70_000);
                assert_eq!(frame.payload[5], (i + 5) as u8);
            }
            assert!(r.is_empty());
            let role = if masked { Role::Server } else { Role::Client };
            let config = wsproto::Config::default();
            let mut ws = WebSocket::from_raw_socket(MemStream::new(&wire), role, &config);
            for i in 0..3 {
                match ws.read() {
                    Ok(Message::Binary(data)) => {
                        assert_eq!(data.len(), 70_000);
                        assert_eq!(data[9], (i + 9) as u8);
                    }
                    other => panic!("frame {i}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn chrome_request_is_accepted_with_the_rfc_accept_key() {
        let mut stream = MemStream::new(CHROME_REQUEST);
        let (request, leftover) =
            wsproto::read_request(&mut stream, &wsproto::Config::default()).expect("request");
        assert!(leftover.is_empty());
        assert_eq!(
            request.check_upgrade().expect("valid upgrade"),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" // RFC 6455 §1.3
        );
        let ws = wsproto::accept(MemStream::new(CHROME_REQUEST)).expect("accept");
        assert!(ws.get_ref().written > 100, "101 response written");
        let plain = chrome_request_without_extensions();
        assert_eq!(plain.len() + 70, CHROME_REQUEST.len());
        assert!(plain.ends_with(b"\r\n\r\n"));
        let ws = wsproto::accept(MemStream::new(&plain)).expect("accept");
        assert!(ws.get_ref().written > 100, "101 response written");
    }
}
