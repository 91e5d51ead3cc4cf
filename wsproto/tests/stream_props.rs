//! Property tests: how the bytes arrive must not change what is read.
//!
//! A TCP peer may deliver a message in any split, down to one byte per
//! `read` call. Random sequences of messages (text with arbitrary Unicode,
//! binary, random fragmentation, pings between and inside fragmented
//! messages) are encoded by hand (RFC 6455 §5.2, §5.4) and fed to a
//! `WebSocket` whole and one byte at a time: both must give exactly the
//! planned messages, and the same answers on the wire.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use wsproto::{read_frame, Config, Error, Message, OpCode, Role, WebSocket};

/// One planned message and how it is cut into frames.
#[derive(Debug, Clone)]
enum Planned {
    Ping(Vec<u8>),
    Data {
        text: bool,
        payload: Vec<u8>,
        /// Fragment boundaries (sorted, repeats give empty fragments).
        cuts: Vec<usize>,
        /// (after fragment i, ping payload), sorted by i; only i < last fragment.
        pings: Vec<(usize, Vec<u8>)>,
    },
}

fn ping_payload() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=125)
}

fn planned() -> impl Strategy<Value = Planned> {
    let text = proptest::collection::vec(any::<char>(), 0..120)
        .prop_map(|cs| (true, cs.into_iter().collect::<String>().into_bytes()));
    let binary = prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..400),
        1 => proptest::collection::vec(any::<u8>(), 8192..8400),
    ]
    .prop_map(|b| (false, b));
    let data = (
        prop_oneof![text, binary],
        proptest::collection::vec(any::<Index>(), 0..5),
        proptest::collection::vec((any::<Index>(), ping_payload()), 0..3),
    )
        .prop_map(|((text, payload), cut_idx, ping_idx)| {
            let mut cuts: Vec<usize> = cut_idx.iter().map(|i| i.index(payload.len() + 1)).collect();
            cuts.sort_unstable();
            let fragments = cuts.len() + 1;
            let mut pings: Vec<(usize, Vec<u8>)> = if fragments > 1 {
                ping_idx
                    .into_iter()
                    .map(|(i, p)| (i.index(fragments - 1), p))
                    .collect()
            } else {
                Vec::new()
            };
            pings.sort_by_key(|(i, _)| *i); // stable: same-slot pings keep their order
            Planned::Data {
                text,
                payload,
                cuts,
                pings,
            }
        });
    prop_oneof![1 => ping_payload().prop_map(Planned::Ping), 4 => data]
}

/// Encode the plan as frames; masked (client to server) or not. Each frame
/// gets its own masking key.
fn encode(plan: &[Planned], masked: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 0u8;
    let mut frame = |out: &mut Vec<u8>, fin: bool, op: u8, payload: &[u8]| {
        n = n.wrapping_add(1);
        let mask = masked.then_some([n, 0x5a, n.wrapping_mul(7), 0xc3]);
        out.extend(frame_bytes(fin, 0, op, mask, payload));
    };
    for item in plan {
        match item {
            Planned::Ping(p) => frame(&mut out, true, PING, p),
            Planned::Data {
                text,
                payload,
                cuts,
                pings,
            } => {
                let mut bounds = vec![0];
                bounds.extend(cuts);
                bounds.push(payload.len());
                let last = bounds.len() - 2;
                for i in 0..=last {
                    let op = match (i, text) {
                        (0, true) => TEXT,
                        (0, false) => BINARY,
                        _ => CONT,
                    };
                    frame(&mut out, i == last, op, &payload[bounds[i]..bounds[i + 1]]);
                    for (_, p) in pings.iter().filter(|(at, _)| *at == i) {
                        frame(&mut out, true, PING, p);
                    }
                }
            }
        }
    }
    out
}

/// What the receiver must return, in order.
fn expected(plan: &[Planned]) -> Vec<Message> {
    let mut out = Vec::new();
    for item in plan {
        match item {
            Planned::Ping(p) => out.push(Message::Ping(p.clone())),
            Planned::Data {
                text,
                payload,
                pings,
                ..
            } => {
                out.extend(pings.iter().map(|(_, p)| Message::Ping(p.clone())));
                out.push(if *text {
                    Message::Text(String::from_utf8(payload.clone()).unwrap())
                } else {
                    Message::Binary(payload.clone())
                });
            }
        }
    }
    out
}

/// Read everything from a fresh connection until the input runs out.
fn receive(
    bytes: Vec<u8>,
    role: Role,
    config: &Config,
    one_byte: bool,
    limit: usize,
) -> Result<(Vec<Message>, Vec<u8>), TestCaseError> {
    let stream = if one_byte {
        MemStream::one_byte(bytes)
    } else {
        MemStream::new(bytes)
    };
    let mut ws = WebSocket::from_raw_socket(stream, role, config);
    let mut got = Vec::new();
    for _ in 0..limit {
        match ws.read() {
            Ok(m) => got.push(m),
            // The input ends without a close handshake.
            Err(Error::UnexpectedEof) => return Ok((got, ws.get_ref().output.clone())),
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "read failed: {e:?} after {got:?}"
                )))
            }
        }
    }
    Err(TestCaseError::fail("more messages than planned"))
}

fn config(small_buffer: bool) -> Config {
    Config {
        // 1 is raised to the minimum (a whole control frame); payloads of
        // 139 bytes and more then take the direct-read path.
        read_buffer_size: if small_buffer { 1 } else { 8 * 1024 },
        ..Config::default()
    }
}

/// The pongs a receiver must have sent: one per ping, same payload.
fn check_pongs(output: &[u8], want: &[Message], masked: bool) -> Result<(), TestCaseError> {
    let pongs = parse_frames(output);
    let pings: Vec<&Vec<u8>> = want
        .iter()
        .filter_map(|m| match m {
            Message::Ping(p) => Some(p),
            _ => None,
        })
        .collect();
    prop_assert_eq!(pongs.len(), pings.len());
    for (pong, ping) in pongs.iter().zip(pings) {
        prop_assert_eq!(pong.opcode, OpCode::Pong);
        prop_assert_eq!(pong.masked, masked);
        prop_assert_eq!(&pong.payload, ping);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn client_frames_read_one_byte_at_a_time_give_the_same_messages(
        plan in proptest::collection::vec(planned(), 0..12),
        small_buffer in any::<bool>(),
    ) {
        let bytes = encode(&plan, true);
        let want = expected(&plan);
        let config = config(small_buffer);
        let (whole, whole_out) = receive(bytes.clone(), Role::Server, &config, false, want.len() + 1)?;
        let (bytewise, bytewise_out) = receive(bytes, Role::Server, &config, true, want.len() + 1)?;
        prop_assert_eq!(&whole, &want);
        prop_assert_eq!(&bytewise, &want);
        // A server's pongs are unmasked, so the bytes are identical.
        prop_assert_eq!(&bytewise_out, &whole_out);
        check_pongs(&whole_out, &want, false)?;
    }

    #[test]
    fn server_frames_read_one_byte_at_a_time_give_the_same_messages(
        plan in proptest::collection::vec(planned(), 0..12),
        small_buffer in any::<bool>(),
    ) {
        let bytes = encode(&plan, false);
        let want = expected(&plan);
        let config = config(small_buffer);
        let (whole, whole_out) = receive(bytes.clone(), Role::Client, &config, false, want.len() + 1)?;
        let (bytewise, bytewise_out) = receive(bytes, Role::Client, &config, true, want.len() + 1)?;
        prop_assert_eq!(&whole, &want);
        prop_assert_eq!(&bytewise, &want);
        // A client masks each pong with a fresh key: compare them unmasked.
        check_pongs(&whole_out, &want, true)?;
        check_pongs(&bytewise_out, &want, true)?;
    }

    #[test]
    fn read_frame_one_byte_at_a_time_gives_the_same_frames(
        frames in proptest::collection::vec(
            (
                any::<bool>(),
                0u8..8,
                0u8..16,
                proptest::option::of(any::<[u8; 4]>()),
                prop_oneof![
                    8 => proptest::collection::vec(any::<u8>(), 0..300),
                    1 => proptest::collection::vec(any::<u8>(), 65530..65600),
                ],
            ),
            0..6,
        ),
    ) {
        let bytes: Vec<u8> = frames
            .iter()
            .flat_map(|(fin, rsv, op, mask, payload)| frame_bytes(*fin, *rsv, *op, *mask, payload))
            .collect();
        let mut whole = &bytes[..];
        let mut bytewise = OneByteReader(&bytes);
        for (fin, rsv, op, mask, payload) in &frames {
            let a = read_frame(&mut whole, usize::MAX).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let b = read_frame(&mut bytewise, usize::MAX).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(&a, &b);
            let h = a.header;
            prop_assert_eq!((h.fin, h.rsv_bits(), h.opcode.bits(), h.mask), (*fin, *rsv, *op, *mask));
            prop_assert_eq!(h.len, payload.len() as u64);
            let mut plain = a.clone();
            plain.unmask();
            prop_assert_eq!(&plain.payload, payload);
        }
        // Both readers are exhausted: the next header is a clean end of stream.
        prop_assert!(whole.is_empty());
        prop_assert!(matches!(read_frame(&mut bytewise, usize::MAX), Err(Error::UnexpectedEof)));
    }
}
