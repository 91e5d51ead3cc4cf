//! A whole frame as a plain struct, and the functions that move one across a
//! stream: what gobwas/ws calls `ReadFrame` and `WriteFrame`.
//!
//! This level does no protocol policing beyond the header's own encoding
//! rules: a frame is whatever the peer sent. The message layer
//! ([`WebSocket`](crate::WebSocket)) applies RFC 6455's rules on top.

use std::io::{self, IoSlice, Read, Write};

use crate::close::{CloseCode, CloseFrame};
use crate::error::{Error, Result};
use crate::header::{read_header, Header, OpCode, MAX_HEADER_LEN};
use crate::mask::{apply_mask, random_mask};

/// One frame: its header and its payload as carried on the wire.
///
/// If `header.mask` is set, `payload` holds masked bytes; [`Frame::unmask`]
/// turns them back into plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header; `header.len` always equals `payload.len()` for frames
    /// built by the constructors.
    pub header: Header,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A final, unmasked frame with `opcode` and `payload`.
    pub fn new(opcode: OpCode, payload: Vec<u8>) -> Frame {
        Frame {
            header: Header::new(opcode, payload.len() as u64),
            payload,
        }
    }

    /// A single-frame text message.
    pub fn text(text: impl Into<String>) -> Frame {
        Frame::new(OpCode::Text, text.into().into_bytes())
    }

    /// A single-frame binary message.
    pub fn binary(data: impl Into<Vec<u8>>) -> Frame {
        Frame::new(OpCode::Binary, data.into())
    }

    /// A ping carrying `data` (at most 125 bytes to be valid, RFC 6455 §5.5).
    pub fn ping(data: impl Into<Vec<u8>>) -> Frame {
        Frame::new(OpCode::Ping, data.into())
    }

    /// A pong carrying `data` (normally the payload of the ping it answers).
    pub fn pong(data: impl Into<Vec<u8>>) -> Frame {
        Frame::new(OpCode::Pong, data.into())
    }

    /// A Close frame with `code` and `reason` (RFC 6455 §5.5.1), the reason
    /// kept as given: like [`Frame::ping`], the frame is only valid if its
    /// payload fits in 125 bytes, i.e. a reason of at most
    /// [`CloseFrame::MAX_REASON`] bytes (§5.5). This level writes what it is
    /// given; build the reason with [`CloseFrame::truncated`] to cut it.
    pub fn close(code: CloseCode, reason: &str) -> Frame {
        let body = CloseFrame::new(code, reason);
        let mut payload = Vec::with_capacity(body.encoded_len());
        body.encode_into(&mut payload);
        Frame::new(OpCode::Close, payload)
    }

    /// A Close frame with no body (no status code).
    pub fn close_empty() -> Frame {
        Frame::new(OpCode::Close, Vec::new())
    }

    /// Remove the mask from the payload, if there is one.
    pub fn unmask(&mut self) {
        if let Some(mask) = self.header.mask.take() {
            apply_mask(&mut self.payload, mask, 0);
        }
    }
}

/// Mask a frame for sending from a client, in place, with a fresh random key
/// (RFC 6455 §5.3), as gobwas/ws `MaskFrameInPlace` does.
///
/// The payload is XORed and the key recorded in the header, so
/// [`write_frame`] then puts it on the wire unchanged.
/// Calling it on an already masked frame first removes the old mask.
pub fn mask_frame_in_place(frame: &mut Frame) {
    if let Some(old) = frame.header.mask.take() {
        apply_mask(&mut frame.payload, old, 0);
    }
    let mask = random_mask();
    apply_mask(&mut frame.payload, mask, 0);
    frame.header.mask = Some(mask);
}

/// Read one frame from `r`, refusing payloads longer than `max_payload`
/// before reading them.
///
/// The payload is returned as sent (still masked if the header has a mask).
/// Memory grows with the bytes actually received, never with the declared
/// length alone, so a peer announcing 2^62 bytes and sending nothing costs
/// nothing.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max_payload: usize) -> Result<Frame> {
    let header = read_header(r)?;
    if header.len > max_payload as u64 {
        return Err(Error::FrameTooBig {
            size: header.len,
            limit: max_payload,
        });
    }
    let len = header.len as usize;
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    let got = r.take(header.len).read_to_end(&mut payload)?;
    if got != len {
        return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Frame { header, payload })
}

/// Payloads up to this size are copied next to the header so the frame
/// leaves in one `write`; larger ones go out with `write_vectored`.
const COALESCE_LIMIT: usize = 4096;

/// Write one frame to `w` (gobwas/ws `WriteFrame`): the header as described
/// by `frame.header` with its length set from the payload, then the payload
/// exactly as stored (mask it first with [`mask_frame_in_place`] when
/// writing as a client).
///
/// Header and payload go out in one write call where the stream allows it.
/// Does not flush.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, frame: &Frame) -> io::Result<()> {
    let mut header = frame.header;
    header.len = frame.payload.len() as u64;
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    write_parts(w, &head[..n], &frame.payload)
}

/// Write `head` then `body`, in one call when possible.
pub(crate) fn write_parts<W: Write + ?Sized>(
    w: &mut W,
    head: &[u8],
    body: &[u8],
) -> io::Result<()> {
    if body.len() <= COALESCE_LIMIT {
        let mut buf = [0u8; MAX_HEADER_LEN + COALESCE_LIMIT];
        buf[..head.len()].copy_from_slice(head);
        buf[head.len()..head.len() + body.len()].copy_from_slice(body);
        return w.write_all(&buf[..head.len() + body.len()]);
    }
    let mut written = 0;
    let total = head.len() + body.len();
    while written < total {
        let n = if written < head.len() {
            w.write_vectored(&[IoSlice::new(&head[written..]), IoSlice::new(body)])
        } else {
            w.write(&body[written - head.len()..])
        };
        match n {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wire(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, frame).unwrap();
        out
    }

    #[test]
    fn rfc_6455_section_5_7_examples_byte_for_byte() {
        assert_eq!(
            wire(&Frame::text("Hello")),
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );

        let mut masked = Frame::text("Hello");
        masked.header.mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        apply_mask(&mut masked.payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(
            wire(&masked),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );

        let mut hel = Frame::text("Hel");
        hel.header.fin = false;
        let lo = Frame::new(OpCode::Continuation, b"lo".to_vec());
        assert_eq!(wire(&hel), [0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert_eq!(wire(&lo), [0x80, 0x02, 0x6c, 0x6f]);

        assert_eq!(
            wire(&Frame::ping("Hello")),
            [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        let mut pong = Frame::pong("Hello");
        pong.header.mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        apply_mask(&mut pong.payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(
            wire(&pong),
            [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );

        let b256 = wire(&Frame::binary(vec![7u8; 256]));
        assert_eq!(&b256[..4], &[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(b256.len(), 4 + 256);
        let b64k = wire(&Frame::binary(vec![7u8; 65536]));
        assert_eq!(&b64k[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(b64k.len(), 10 + 65536);
    }

    #[test]
    fn read_frame_unmasks_on_request() {
        let bytes = [
            0x81u8, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut frame = read_frame(&mut &bytes[..], 125).unwrap();
        assert_eq!(frame.payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        frame.unmask();
        assert_eq!(frame, Frame::text("Hello"));
    }

    #[test]
    fn read_frame_refuses_oversized_and_truncated_payloads() {
        // Declares 2^62 bytes and sends none: refused before any allocation.
        let huge = [0x82u8, 0x7f, 0x40, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut &huge[..], 1 << 20),
            Err(Error::FrameTooBig { size, .. }) if size == 1 << 62
        ));
        // Declares 5 bytes, sends 2.
        let short = [0x82u8, 0x05, 1, 2];
        assert!(matches!(
            read_frame(&mut &short[..], 125),
            Err(Error::Io(_))
        ));
    }

    #[test]
    fn close_frame_constructor() {
        let f = Frame::close(CloseCode::Other(4001), "logged in elsewhere");
        assert_eq!(&f.payload[..2], &[0x0f, 0xa1]);
        assert_eq!(&f.payload[2..], b"logged in elsewhere");
        // No silent cut at this level either.
        let f = Frame::close(CloseCode::Normal, &"x".repeat(200));
        assert_eq!(f.payload.len(), 202);
        assert_eq!(f.header.len, 202);
    }

    #[test]
    fn mask_frame_in_place_records_key_and_roundtrips() {
        let mut frame = Frame::text("hello");
        mask_frame_in_place(&mut frame);
        let mask = frame.header.mask.expect("masked");
        assert_ne!(
            frame.payload,
            b"hello".to_vec(),
            "payload must be masked (mask {mask:?})"
        );
        apply_mask(&mut frame.payload, mask, 0);
        assert_eq!(frame.payload, b"hello");
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            any::<[bool; 4]>(),
            0u8..16,
            proptest::option::of(any::<[u8; 4]>()),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..130),
                proptest::collection::vec(any::<u8>(), 60000..70000),
            ],
        )
            .prop_map(|(bits, op, mask, payload)| Frame {
                header: Header {
                    fin: bits[0],
                    rsv1: bits[1],
                    rsv2: bits[2],
                    rsv3: bits[3],
                    opcode: OpCode::from_bits(op),
                    mask,
                    len: payload.len() as u64,
                },
                payload,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_frame_encodes_then_decodes_to_itself(frame in arb_frame()) {
            let bytes = wire(&frame);
            prop_assert_eq!(bytes.len(), frame.header.encoded_len() + frame.payload.len());
            let back = read_frame(&mut &bytes[..], usize::MAX).unwrap();
            prop_assert_eq!(back, frame);
        }

        #[test]
        fn client_masked_frames_unmask_to_the_original(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut frame = Frame::binary(data.clone());
            mask_frame_in_place(&mut frame);
            let bytes = wire(&frame);
            let mut back = read_frame(&mut &bytes[..], usize::MAX).unwrap();
            back.unmask();
            prop_assert_eq!(back.payload, data);
        }
    }
}
