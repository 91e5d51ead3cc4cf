//! The frame header (RFC 6455 §5.2): parse it from bytes, encode it into
//! bytes, read it from a stream. What gobwas/ws calls `ReadHeader` and
//! `WriteHeader`.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! ```

use std::io::Read;

use crate::error::{Error, Result};

/// The longest a header can be: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// The 4-bit frame opcode (RFC 6455 §5.2, §11.8).
///
/// Reserved values are kept distinguishable so that a caller can report
/// exactly what arrived; the message layer rejects them with close 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: first frame of a UTF-8 text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x3–0x7: reserved for future non-control frames.
    ReservedData(u8),
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
    /// 0xB–0xF: reserved for future control frames.
    ReservedControl(u8),
}

impl OpCode {
    /// Decode the low 4 bits of `bits`.
    pub fn from_bits(bits: u8) -> OpCode {
        match bits & 0x0f {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            n @ 0x3..=0x7 => OpCode::ReservedData(n),
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xa => OpCode::Pong,
            n => OpCode::ReservedControl(n),
        }
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::ReservedData(n) | OpCode::ReservedControl(n) => n & 0x0f,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
        }
    }

    /// Control frames have the high opcode bit set (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }

    /// Whether the opcode is one of the reserved values.
    pub fn is_reserved(self) -> bool {
        matches!(self, OpCode::ReservedData(_) | OpCode::ReservedControl(_))
    }
}

/// A parsed frame header (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Final fragment of a message.
    pub fin: bool,
    /// Reserved bit 1 (used by extensions such as permessage-deflate).
    pub rsv1: bool,
    /// Reserved bit 2.
    pub rsv2: bool,
    /// Reserved bit 3.
    pub rsv3: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub len: u64,
}

/// Outcome of [`Header::parse`] on a buffer that may hold only part of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header, and how many bytes of the input it used.
    Complete(Header, usize),
    /// The input is a valid start of a header but `needed` more bytes are required.
    Incomplete {
        /// How many more bytes must be appended before parsing can succeed.
        needed: usize,
    },
}

impl Header {
    /// A final, unmasked header with no RSV bits.
    pub fn new(opcode: OpCode, len: u64) -> Header {
        Header {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            len,
        }
    }

    /// The RSV bits as a 3-bit number (RSV1 highest).
    pub fn rsv_bits(&self) -> u8 {
        (u8::from(self.rsv1) << 2) | (u8::from(self.rsv2) << 1) | u8::from(self.rsv3)
    }

    /// Parse a header from the start of `buf`.
    ///
    /// Short input is not an error: it returns how many more bytes are
    /// needed. Errors are only for headers no valid sender produces: a 64-bit
    /// length with the top bit set, or a length not in its minimal encoding
    /// (both "MUST" rules of RFC 6455 §5.2). Semantic checks (RSV bits,
    /// opcodes, masking direction) belong to the message layer.
    pub fn parse(buf: &[u8]) -> Result<Parsed> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => {
                return Ok(Parsed::Incomplete {
                    needed: 2 - buf.len(),
                })
            }
        };
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let total = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < total {
            return Ok(Parsed::Incomplete {
                needed: total - buf.len(),
            });
        }
        let len = match ext {
            0 => u64::from(len7),
            2 => {
                let n = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
                if n < 126 {
                    return Err(Error::NonMinimalLength(n));
                }
                n
            }
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(b);
                if n >> 63 != 0 {
                    return Err(Error::LengthOverflow);
                }
                if n <= u64::from(u16::MAX) {
                    return Err(Error::NonMinimalLength(n));
                }
                n
            }
        };
        let mask = if masked {
            let at = 2 + ext;
            Some([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
        } else {
            None
        };
        Ok(Parsed::Complete(
            Header {
                fin: b0 & 0x80 != 0,
                rsv1: b0 & 0x40 != 0,
                rsv2: b0 & 0x20 != 0,
                rsv3: b0 & 0x10 != 0,
                opcode: OpCode::from_bits(b0),
                mask,
                len,
            },
            total,
        ))
    }

    /// How many bytes [`Header::encode`] writes for this header.
    pub fn encoded_len(&self) -> usize {
        let ext = match self.len {
            0..=125 => 0,
            126..=0xffff => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encode into `out` using the minimal length form; returns the number of
    /// bytes written (2 to 14).
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | (self.rsv_bits() << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(mask) = self.mask {
            out[at..at + 4].copy_from_slice(&mask);
            at += 4;
        }
        at
    }

    /// Encode into a new `Vec` (convenient in tests; the hot path uses [`Header::encode`]).
    // Hidden, not private: a test helper that code outside this crate uses
    // (benches/benches/frame.rs, fuzz/fuzz_targets/frame_header.rs,
    // chatcli/tests/fake_server.rs). Not part of the supported API; use
    // `Header::encode`.
    #[doc(hidden)]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = self.encode(&mut out);
        out[..n].to_vec()
    }
}

/// Read exactly one header from `r` (gobwas/ws `ReadHeader`), without reading
/// any payload byte.
///
/// End of stream before the first byte gives [`Error::UnexpectedEof`];
/// inside the header, an `UnexpectedEof` I/O error.
pub fn read_header<R: Read + ?Sized>(r: &mut R) -> Result<Header> {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let mut have = 0;
    loop {
        match Header::parse(&buf[..have])? {
            Parsed::Complete(header, _) => return Ok(header),
            Parsed::Incomplete { needed } => {
                let want = have + needed;
                while have < want {
                    match r.read(&mut buf[have..want]) {
                        Ok(0) if have == 0 => return Err(Error::UnexpectedEof),
                        Ok(0) => return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
                        Ok(n) => have += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Header, usize) {
        match Header::parse(buf).expect("valid header") {
            Parsed::Complete(h, n) => (h, n),
            other => panic!("expected complete header, got {other:?}"),
        }
    }

    #[test]
    fn rfc_examples_parse() {
        // RFC 6455 §5.7: unmasked "Hello"
        let (h, n) = complete(&[0x81, 0x05]);
        assert_eq!(n, 2);
        assert_eq!(h, Header::new(OpCode::Text, 5));
        // masked "Hello"
        let (h, n) = complete(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        // first fragment "Hel"
        let (h, _) = complete(&[0x01, 0x03]);
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        // 256 bytes binary
        let (h, n) = complete(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!((h.len, n), (256, 4));
        // 64 KiB binary
        let (h, n) = complete(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((h.len, n), (65536, 10));
    }

    #[test]
    fn incomplete_input_says_how_much_is_missing() {
        assert_eq!(
            Header::parse(&[]).unwrap(),
            Parsed::Incomplete { needed: 2 }
        );
        assert_eq!(
            Header::parse(&[0x81]).unwrap(),
            Parsed::Incomplete { needed: 1 }
        );
        assert_eq!(
            Header::parse(&[0x82, 0x7e]).unwrap(),
            Parsed::Incomplete { needed: 2 }
        );
        assert_eq!(
            Header::parse(&[0x82, 0xff, 0, 0]).unwrap(),
            Parsed::Incomplete { needed: 10 }
        );
    }

    #[test]
    fn malformed_lengths_are_errors() {
        assert!(matches!(
            Header::parse(&[0x82, 0x7e, 0x00, 0x7d]),
            Err(Error::NonMinimalLength(125))
        ));
        assert!(matches!(
            Header::parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(Error::NonMinimalLength(65535))
        ));
        assert!(matches!(
            Header::parse(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::LengthOverflow)
        ));
    }

    #[test]
    fn reserved_opcodes_stay_distinguishable() {
        for bits in 0u8..16 {
            let op = OpCode::from_bits(bits);
            assert_eq!(op.bits(), bits);
            assert_eq!(op.is_control(), bits >= 8);
            assert_eq!(op.is_reserved(), matches!(bits, 3..=7 | 11..=15));
        }
    }

    #[test]
    fn encode_uses_minimal_lengths() {
        for (len, size) in [
            (0u64, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
        ] {
            let mut h = Header::new(OpCode::Binary, len);
            assert_eq!(h.encoded_len(), size);
            let mut out = [0u8; MAX_HEADER_LEN];
            assert_eq!(h.encode(&mut out), size);
            assert_eq!(complete(&out[..size]), (h, size));
            h.mask = Some([1, 2, 3, 4]);
            assert_eq!(h.encode(&mut out), size + 4);
            assert_eq!(complete(&out[..size + 4]), (h, size + 4));
        }
    }

    #[test]
    fn read_header_reads_only_the_header() {
        let bytes = [0x81u8, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f];
        let mut r = &bytes[..];
        let h = read_header(&mut r).unwrap();
        assert_eq!(h.len, 5);
        assert_eq!(r, &[0x7f]);
        assert!(matches!(
            read_header(&mut &[][..]),
            Err(Error::UnexpectedEof)
        ));
        assert!(matches!(read_header(&mut &[0x81][..]), Err(Error::Io(_))));
    }
}
