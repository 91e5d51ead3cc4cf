//! The write contract under faults (issue 11): whatever the stream does
//! (`WouldBlock`, `Interrupted`, `TimedOut`, short writes, random 1-7 bytes
//! per call), every message `write` accepted reaches the wire whole, once,
//! in order, for both roles, with and without permessage-deflate. The
//! wire is checked with a reference decoder written from RFC 6455 §5.2
//! (`common/faulty.rs`), not with the crate's own frame reader.
//!
//! The contract (see `WebSocket::write` / `flush` / `send`):
//! - `write` `Ok` = queued as one frame; `WriteBufferFull` = not queued
//!   (flush, then retry); a time-out while writing opportunistically is
//!   not reported by `write`; `Interrupted` is retried inside.
//! - `flush` `Ok` = everything on the wire; `WouldBlock`/`TimedOut` =
//!   nothing lost, call again.
//! - Any other write error fails the connection: every later call errs.
//! - `read` that returns a Ping (or Close) queued the answer and does not
//!   report a time-out writing it; `has_pending_output` tells to flush.

mod common;
#[path = "common/faulty.rs"]
mod faulty;

use std::io::{ErrorKind, Read};

use common::{client_frame, close_payload, server_frame};
use faulty::*;
use proptest::prelude::*;
use wsproto::{
    CloseCode, CloseFrame, Config, Error, Message, MessageRef, PreparedMessage, Role, WebSocket,
};

// ------------------------------------------------------------- fixtures

/// Incompressible bytes (xorshift), so a deflated frame stays as large as
/// the message and takes the > 16 KiB direct-write path too.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Compressible text of about `len` bytes, with non-ASCII characters.
fn prose(len: usize, seed: usize) -> String {
    let words = [
        "frame", "mask", "déflate", "close", "ping", "écho", "wire", "≠",
    ];
    let mut s = String::with_capacity(len + 16);
    let mut i = seed;
    while s.len() < len {
        s.push_str(words[i % words.len()]);
        s.push(if i.is_multiple_of(11) { '\n' } else { ' ' });
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    s
}

/// A small message: text or binary, 0 to ~300 bytes, carrying its index.
fn small(i: usize) -> Message {
    let pad = (i * 37) % 300;
    if i.is_multiple_of(3) {
        Message::text(format!("{i}:{}", prose(pad, i)))
    } else {
        let mut b = (i as u64).to_be_bytes().to_vec();
        b.extend(noise(pad, i as u64));
        Message::binary(b)
    }
}

/// The issue's case: 1,122,293 bytes (the direct-write path), then many
/// small messages, a 64 KiB text, a ping, a 20 KB binary, a last text.
fn big_and_small() -> Vec<Message> {
    let mut v = vec![Message::binary(noise(1_122_293, 1))];
    v.extend((0..200).map(small));
    v.push(Message::text(prose(64 * 1024, 3)));
    v.push(Message::Ping(b"are you there".to_vec()));
    v.push(Message::binary(noise(20_000, 4)));
    v.push(Message::text("the end"));
    v
}

#[cfg(feature = "deflate")]
fn deflate_params() -> wsproto::DeflateParams {
    wsproto::DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

/// A connection over `stream` in `role`, with permessage-deflate if asked
/// and built in; returns whether deflate is on.
fn socket(stream: FaultyStream, role: Role, deflate: bool) -> (WebSocket<FaultyStream>, bool) {
    socket_with(stream, role, deflate, &Config::default())
}

/// [`socket`] with `config`.
fn socket_with(
    stream: FaultyStream,
    role: Role,
    deflate: bool,
    config: &Config,
) -> (WebSocket<FaultyStream>, bool) {
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut ws = WebSocket::from_raw_socket(stream, role, config);
    #[cfg(feature = "deflate")]
    if deflate {
        ws.enable_deflate(deflate_params(), &wsproto::DeflateConfig::default());
        return (ws, true);
    }
    let _ = deflate;
    (ws, false)
}

/// Enough calls for any message here under any plan (random 1-7 bytes per
/// call with errors moves ~3 bytes per call).
const MAX_CALLS: usize = 4_000_000;

fn roles() -> [Role; 2] {
    [Role::Server, Role::Client]
}

// ------------------------------------------------- write path, one side

/// How the test hands messages to the connection.
#[derive(Debug, Clone, Copy)]
enum Api {
    /// `write` each, `flush` every few and at the end.
    WriteFlush,
    /// `send` each; a time-out means "queued, flush later", which is
    /// done only at the next message (that `send` resumes first) and at
    /// the end.
    Send,
    /// Like `Send`, data messages through `send_prepared` (the broadcast
    /// path: a server writes the shared frame straight to the stream).
    SendPrepared,
    /// Like `WriteFlush`, data messages through `write_prepared`.
    WritePrepared,
}

/// The prepared form of a data message.
fn prepared(m: &Message) -> Option<PreparedMessage> {
    match m {
        Message::Text(t) => Some(PreparedMessage::text(t)),
        Message::Binary(b) => Some(PreparedMessage::binary(b)),
        _ => None,
    }
}

/// Send `messages` over a stream with `plan`, then check the wire.
fn write_through(
    plan: Plan,
    fault_flush: bool,
    role: Role,
    deflate: bool,
    api: Api,
    messages: &[Message],
) {
    let label = format!("{plan:?} flush-faults={fault_flush} {role:?} deflate={deflate} {api:?}");
    let mut stream = FaultyStream::writer(plan);
    stream.fault_flush = fault_flush;
    let (mut ws, deflate) = socket(stream, role, deflate);
    for (i, m) in messages.iter().enumerate() {
        let label = format!("{label} message {i}");
        match api {
            Api::WriteFlush | Api::WritePrepared => {
                match prepared(m).filter(|_| matches!(api, Api::WritePrepared)) {
                    Some(p) => loop {
                        match ws.write_prepared(&p) {
                            Ok(()) => break,
                            Err(e) if is_buffer_full(&e) => {
                                flush_until_ok(&mut ws, MAX_CALLS, &label);
                            }
                            Err(e) => panic!("{label}: write_prepared: {e:?}"),
                        }
                    },
                    None => write_queued(&mut ws, m.as_ref(), MAX_CALLS, &label),
                }
                if i % 5 == 4 {
                    match ws.flush() {
                        Ok(()) => assert!(
                            !ws.has_pending_output(),
                            "{label}: flush Ok left output pending"
                        ),
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => panic!("{label}: flush: {e:?}"),
                    }
                }
            }
            Api::Send | Api::SendPrepared => {
                let p = prepared(m).filter(|_| matches!(api, Api::SendPrepared));
                let mut tries = 0;
                loop {
                    tries += 1;
                    let sent = match &p {
                        Some(p) => ws.send_prepared(p),
                        None => ws.send_ref(m.as_ref()),
                    };
                    match sent {
                        Ok(()) => {
                            assert!(
                                !ws.has_pending_output(),
                                "{label}: send Ok left output pending"
                            );
                            break;
                        }
                        Err(e) if is_timeout(&e) => break, // queued
                        Err(e) if is_buffer_full(&e) && tries < 3 => {
                            flush_until_ok(&mut ws, MAX_CALLS, &label);
                        }
                        Err(e) => panic!("{label}: send: {e:?}"),
                    }
                }
            }
        }
    }
    flush_until_ok(&mut ws, MAX_CALLS, &label);
    assert!(
        !ws.has_pending_output(),
        "{label}: flush Ok left output pending"
    );
    assert_wire(
        &label,
        &ws.get_ref().wire(),
        role == Role::Client,
        deflate,
        messages,
    );
}

/// Every role, deflate on and off, both APIs.
fn write_through_all(plan: Plan, fault_flush: bool, messages: &[Message]) {
    for role in roles() {
        for deflate in [false, true] {
            for api in [
                Api::Send,
                Api::WriteFlush,
                Api::SendPrepared,
                Api::WritePrepared,
            ] {
                write_through(plan.clone(), fault_flush, role, deflate, api, messages);
            }
        }
    }
}

#[test]
fn clean_stream_baseline() {
    write_through_all(Plan::Clean, false, &big_and_small());
}

#[test]
fn would_block_on_every_other_write() {
    write_through_all(
        Plan::every_other(Fault::WouldBlock),
        false,
        &big_and_small(),
    );
}

#[test]
fn would_block_on_every_other_write_and_flush() {
    write_through_all(Plan::every_other(Fault::WouldBlock), true, &big_and_small());
}

#[test]
fn timed_out_on_every_other_write() {
    write_through_all(Plan::every_other(Fault::TimedOut), true, &big_and_small());
}

#[test]
fn interrupted_on_every_other_write() {
    write_through_all(
        Plan::every_other(Fault::Interrupted),
        true,
        &big_and_small(),
    );
}

#[test]
fn short_writes_on_every_other_call() {
    // One byte, then a whole buffer: frame boundaries fall anywhere.
    write_through_all(
        Plan::Cycle(vec![Fault::Short(1), Fault::Pass]),
        false,
        &big_and_small(),
    );
    write_through_all(
        Plan::Cycle(vec![Fault::Short(1000), Fault::WouldBlock]),
        false,
        &big_and_small(),
    );
}

#[test]
fn random_one_to_seven_bytes_per_call_with_errors() {
    let mut messages = vec![Message::binary(noise(1 << 20, 9))];
    messages.extend((0..300).map(small));
    messages.push(Message::text(prose(40_000, 5)));
    for (seed, role) in [(1, Role::Server), (2, Role::Client)] {
        for deflate in [false, true] {
            let plan = Plan::random(seed);
            write_through(plan.clone(), true, role, deflate, Api::Send, &messages);
            write_through(plan, true, role, deflate, Api::WriteFlush, &messages);
        }
    }
}

/// `Interrupted` is retried inside: `write` and `flush` never report it,
/// and `flush` completes in one call.
#[test]
fn interrupted_is_never_reported() {
    for role in roles() {
        for deflate in [false, true] {
            let mut stream = FaultyStream::writer(Plan::every_other(Fault::Interrupted));
            stream.fault_flush = true;
            let (mut ws, deflate) = socket(stream, role, deflate);
            let messages = big_and_small();
            for (i, m) in messages.iter().enumerate() {
                if let Err(e) = ws.send_ref(m.as_ref()) {
                    panic!("{role:?} deflate={deflate} message {i}: send reported {e:?}");
                }
            }
            assert_wire(
                "interrupted",
                &ws.get_ref().wire(),
                role == Role::Client,
                deflate,
                &messages,
            );
        }
    }
}

/// A stream that takes nothing at all: `flush` keeps reporting a
/// time-out, and nothing, not even a partial frame, is lost once it
/// starts taking bytes again.
#[test]
fn stalled_stream_then_resumes() {
    for role in roles() {
        for deflate in [false, true] {
            let label = format!("stalled {role:?} deflate={deflate}");
            let stream = FaultyStream::writer(Plan::Cycle(vec![Fault::WouldBlock]));
            let (mut ws, deflate) = socket(stream, role, deflate);
            let messages = vec![
                Message::binary(noise(100_000, 7)),
                Message::text("a"),
                Message::Ping(b"p".to_vec()),
            ];
            for m in &messages {
                write_queued(&mut ws, m.as_ref(), 10, &label);
            }
            for _ in 0..5 {
                let e = ws.flush().expect_err("nothing can be written");
                assert!(is_timeout(&e), "{label}: {e:?}");
                assert!(ws.has_pending_output(), "{label}: output forgotten");
            }
            ws.get_mut().writes =
                Schedule::new(Plan::Cycle(vec![Fault::Short(3), Fault::WouldBlock]));
            flush_until_ok(&mut ws, MAX_CALLS, &label);
            assert_wire(
                &label,
                &ws.get_ref().wire(),
                role == Role::Client,
                deflate,
                &messages,
            );
        }
    }
}

// ------------------------------------------------------- hard errors

/// A write error other than `WouldBlock`/`TimedOut` fails the connection:
/// that call returns `Io(e)`; every later `write`, `flush`, `send` and
/// `read` errs, and nothing more is written to the stream.
#[test]
fn broken_pipe_fails_the_connection() {
    for role in roles() {
        for deflate in [false, true] {
            // The first write; one inside the large message; one among the
            // small ones.
            for broken_at in [0u64, 3, 40] {
                let label = format!("{role:?} deflate={deflate} broken at write {broken_at}");
                let mut stream = FaultyStream::writer(Plan::Cycle(vec![
                    Fault::Short(50_000),
                    Fault::WouldBlock,
                ]));
                stream.broken_at_write = Some(broken_at);
                let (mut ws, _) = socket(stream, role, deflate);
                let messages = big_and_small();
                let mut failed = None;
                'outer: for m in &messages {
                    match ws.write_ref(m.as_ref()) {
                        Ok(()) => {}
                        Err(e) => {
                            failed = Some(e);
                            break 'outer;
                        }
                    }
                    loop {
                        match ws.flush() {
                            Ok(()) => break,
                            Err(e) if is_timeout(&e) => {}
                            Err(e) => {
                                failed = Some(e);
                                break 'outer;
                            }
                        }
                    }
                }
                let e =
                    failed.unwrap_or_else(|| panic!("{label}: the broken pipe was never reported"));
                assert!(
                    matches!(&e, Error::Io(io) if io.kind() == ErrorKind::BrokenPipe),
                    "{label}: the failing call returned {e:?}"
                );
                assert!(ws.get_ref().stats.broken, "{label}");
                // Every later call errs, and does not touch the stream.
                let later: Vec<(&str, wsproto::Result<()>)> = vec![
                    ("write", ws.write(Message::text("after"))),
                    ("flush", ws.flush()),
                    ("send", ws.send(Message::binary(vec![1, 2, 3]))),
                    ("read", ws.read().map(|_| ())),
                    ("close", ws.close(CloseCode::Normal, "")),
                    ("flush again", ws.flush()),
                ];
                for (what, r) in later {
                    match r {
                        Ok(()) => panic!("{label}: {what} after the failure returned Ok"),
                        Err(e) if what == "close" => {
                            // close may also say the Close was sent already.
                            let _ = e;
                        }
                        Err(e) => assert!(
                            is_stream_failed(&e),
                            "{label}: {what} after the failure returned {e:?}, expected StreamFailed"
                        ),
                    }
                }
                assert_eq!(
                    ws.get_ref().stats.written_after_broken,
                    0,
                    "{label}: bytes written to the stream after it failed"
                );
            }
        }
    }
}

// ------------------------------------------------------ control frames

/// Control frames larger than 125 bytes are refused before anything is
/// written, and the connection stays usable.
#[test]
fn oversized_control_frames_are_refused_before_writing() {
    for role in roles() {
        let (mut ws, _) = socket(FaultyStream::writer(Plan::Clean), role, false);
        let too_long = [
            Message::Ping(vec![7; 126]),
            Message::Pong(vec![7; 126]),
            Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "r".repeat(124),
            })),
        ];
        for m in &too_long {
            assert!(
                ws.write(m.clone()).is_err(),
                "{role:?}: write({:?}) accepted",
                m.opcode()
            );
            assert!(
                ws.send(m.clone()).is_err(),
                "{role:?}: send({:?}) accepted",
                m.opcode()
            );
            assert!(
                ws.get_ref().wire().is_empty(),
                "{role:?}: {:?} wrote something",
                m.opcode()
            );
            assert!(!ws.close_sent(), "{role:?}: refused Close counts as sent");
        }
        // The limits themselves are fine.
        let ok = [
            Message::Ping(vec![7; 125]),
            Message::Pong(vec![7; 125]),
            Message::text("still usable"),
            Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "r".repeat(123),
            })),
        ];
        for m in &ok {
            ws.send(m.clone())
                .unwrap_or_else(|e| panic!("{role:?}: {:?}: {e:?}", m.opcode()));
        }
        assert_wire(
            "control limits",
            &ws.get_ref().wire(),
            role == Role::Client,
            false,
            &ok,
        );
    }
}

// ------------------------------------------------- read path answers

/// Frames from the peer of a connection in `role` (masked if we are the
/// server).
fn peer_frame(role: Role, opcode: u8, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => client_frame(true, opcode, payload),
        Role::Client => server_frame(true, opcode, payload),
    }
}

/// What a connection read, and whether the answers on its wire are right:
/// pongs answer pings in order (a ping whose pong could not be written
/// yet may be superseded by a later one, RFC 6455 §5.5.3) and the last
/// ping is always answered; the Close echo comes last.
fn check_answers(
    label: &str,
    wire: &[u8],
    role: Role,
    pings: &[Vec<u8>],
    every_ping: bool,
    close: Option<u16>,
) {
    let frames = RefDecoder::new(role == Role::Client, false)
        .decode_all(wire)
        .unwrap_or_else(|e| panic!("{label}: bad wire: {e}"));
    check_answer_frames(label, &frames, pings, every_ping, close);
}

/// [`check_answers`] on decoded frames.
fn check_answer_frames(
    label: &str,
    frames: &[RefFrame],
    pings: &[Vec<u8>],
    every_ping: bool,
    close: Option<u16>,
) {
    let (mut pongs, mut closes) = (Vec::new(), Vec::new());
    for (i, f) in frames.iter().enumerate() {
        match f.opcode {
            OP_PONG => {
                assert!(closes.is_empty(), "{label}: pong after the Close echo");
                pongs.push(f.payload.clone());
            }
            OP_CLOSE => closes.push((i, f.payload.clone())),
            _ => panic!("{label}: unexpected frame {}", describe(f)),
        }
    }
    if every_ping {
        assert_eq!(pongs, pings, "{label}: every ping answered in order");
    } else {
        let mut rest = pings.iter();
        for p in &pongs {
            assert!(
                rest.any(|q| q == p),
                "{label}: pong {p:02x?} is not an answer in order to the pings"
            );
        }
        assert_eq!(
            pongs.last(),
            pings.last(),
            "{label}: the latest ping must be answered"
        );
    }
    match close {
        Some(code) => {
            assert_eq!(closes.len(), 1, "{label}: one Close echo, got {closes:?}");
            assert_eq!(
                closes[0].1,
                code.to_be_bytes(),
                "{label}: the echo carries the code"
            );
        }
        None => assert!(closes.is_empty(), "{label}"),
    }
}

/// Read everything the peer sent, retrying time-outs, flushing when
/// output is pending (the way a non-blocking loop does), until
/// `ConnectionClosed` or EOF.
fn read_all(ws: &mut WebSocket<FaultyStream>, label: &str) -> Vec<Message> {
    let mut got = Vec::new();
    for _ in 0..1_000_000 {
        match ws.read() {
            Ok(m) => got.push(m),
            Err(Error::ConnectionClosed) | Err(Error::UnexpectedEof) => break,
            Err(Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                if ws.has_pending_output() {
                    match ws.flush() {
                        Ok(()) => {}
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => panic!("{label}: flush: {e:?}"),
                    }
                }
            }
            Err(e) => panic!("{label}: read: {e:?} after {} messages", got.len()),
        }
    }
    flush_until_ok(ws, MAX_CALLS, label);
    got
}

/// Pings and a Close from the peer, read under faults on both directions:
/// `read` returns each Ping and the Close (a time-out writing the answer
/// is not its error), and the answers are right on the wire.
#[test]
fn pings_and_close_answered_under_faults() {
    let plans = [
        Plan::Clean,
        Plan::every_other(Fault::WouldBlock),
        Plan::every_other(Fault::TimedOut),
        Plan::every_other(Fault::Interrupted),
        Plan::Cycle(vec![Fault::Short(1), Fault::WouldBlock, Fault::WouldBlock]),
        Plan::Cycle(vec![
            Fault::WouldBlock,
            Fault::WouldBlock,
            Fault::WouldBlock,
            Fault::Pass,
        ]),
        Plan::random(11),
    ];
    for role in roles() {
        for read_plan in [
            Plan::Clean,
            Plan::every_other(Fault::WouldBlock),
            Plan::random(5),
        ] {
            for write_plan in &plans {
                let label = format!("{role:?} reads {read_plan:?} writes {write_plan:?}");
                let pings: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; i as usize % 126]).collect();
                let mut input = Vec::new();
                let mut sent = Vec::new();
                for (i, p) in pings.iter().enumerate() {
                    input.extend(peer_frame(role, common::PING, p));
                    sent.push(Message::Ping(p.clone()));
                    if i % 4 == 0 {
                        let t = format!("text {i}");
                        input.extend(peer_frame(role, common::TEXT, t.as_bytes()));
                        sent.push(Message::text(t));
                    }
                    if i == 20 {
                        let b = noise(70_000, 3);
                        input.extend(peer_frame(role, common::BINARY, &b));
                        sent.push(Message::binary(b));
                    }
                }
                let close = close_payload(1001, b"going");
                input.extend(peer_frame(role, common::CLOSE, &close));
                sent.push(Message::close(CloseCode::Away, "going"));
                let stream = FaultyStream::with_input(input, read_plan.clone(), write_plan.clone());
                let (mut ws, _) = socket(stream, role, false);
                let got = read_all(&mut ws, &label);
                assert_eq!(got.len(), sent.len(), "{label}: messages read");
                for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
                    assert!(g == s, "{label}: message {i} differs: {:?}", g.opcode());
                }
                let every_ping = matches!(write_plan, Plan::Clean);
                check_answers(
                    &label,
                    &ws.get_ref().wire(),
                    role,
                    &pings,
                    every_ping,
                    Some(1001),
                );
            }
        }
    }
}

/// `read` that returns a Ping while the stream takes nothing: `Ok(Ping)`,
/// not a time-out; `has_pending_output` says a flush is needed; after many
/// such pings, one flush answers the latest.
#[test]
fn pong_waits_while_the_stream_takes_nothing() {
    for role in roles() {
        let label = format!("{role:?}");
        let mut input = Vec::new();
        for i in 0..10u8 {
            input.extend(peer_frame(role, common::PING, &[i; 3]));
        }
        let stream =
            FaultyStream::with_input(input, Plan::Clean, Plan::Cycle(vec![Fault::WouldBlock]));
        let (mut ws, _) = socket(stream, role, false);
        for i in 0..10u8 {
            match ws.read() {
                Ok(Message::Ping(p)) => assert_eq!(p, [i; 3], "{label}"),
                other => panic!("{label}: ping {i}: read returned {other:?}"),
            }
            assert!(ws.has_pending_output(), "{label}: pong {i} not pending");
        }
        ws.get_mut().writes = Schedule::new(Plan::Clean);
        flush_until_ok(&mut ws, 10, &label);
        assert!(!ws.has_pending_output(), "{label}");
        let pings: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 3]).collect();
        check_answers(&label, &ws.get_ref().wire(), role, &pings, false, None);
    }
}

/// Reading a Close while the stream takes nothing: `Ok(Close)`, the echo
/// pending; a flush sends it.
#[test]
fn close_echo_waits_while_the_stream_takes_nothing() {
    for role in roles() {
        let label = format!("{role:?}");
        let input = peer_frame(role, common::CLOSE, &close_payload(1000, b"bye"));
        let stream =
            FaultyStream::with_input(input, Plan::Clean, Plan::Cycle(vec![Fault::WouldBlock]));
        let (mut ws, _) = socket(stream, role, false);
        match ws.read() {
            Ok(Message::Close(Some(f))) => assert_eq!(f.code, CloseCode::Normal, "{label}"),
            other => panic!("{label}: read returned {other:?}"),
        }
        assert!(ws.has_pending_output(), "{label}: Close echo not pending");
        ws.get_mut().writes = Schedule::new(Plan::every_other(Fault::WouldBlock));
        flush_until_ok(&mut ws, 10, &label);
        check_answers(&label, &ws.get_ref().wire(), role, &[], true, Some(1000));
    }
}

/// Closing first under faults: `close` may time out; the Close frame goes
/// out whole on a later flush, and nothing can be written after it.
#[test]
fn close_initiated_under_faults() {
    for role in roles() {
        for plan in [Plan::every_other(Fault::WouldBlock), Plan::random(3)] {
            let label = format!("{role:?} {plan:?}");
            let input = peer_frame(role, common::CLOSE, &close_payload(1000, b""));
            let stream = FaultyStream::with_input(input, Plan::Clean, plan);
            let (mut ws, _) = socket(stream, role, false);
            let big = Message::binary(noise(50_000, 2));
            write_queued(&mut ws, big.as_ref(), MAX_CALLS, &label);
            match ws.close(CloseCode::Normal, "done") {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("{label}: close: {e:?}"),
            }
            assert!(ws.close_sent(), "{label}");
            assert!(
                matches!(ws.write(Message::text("x")), Err(Error::AlreadyClosed)),
                "{label}"
            );
            let got = read_all(&mut ws, &label);
            assert!(
                matches!(got.as_slice(), [Message::Close(Some(f))] if f.code == CloseCode::Normal),
                "{label}: read {got:?}"
            );
            assert_wire(
                &label,
                &ws.get_ref().wire(),
                role == Role::Client,
                false,
                &[big.clone(), Message::close(CloseCode::Normal, "done")],
            );
        }
    }
}

// ------------------------------------------------------ back-pressure

/// A stream that takes nothing: `write` accepts messages while at most
/// the write-buffer limit (default 1 MiB) is queued, then refuses with
/// `WriteBufferFull` (not a time-out, and nothing of the refused message
/// queued); once the stream drains, the refused message is accepted and
/// everything accepted arrives.
#[test]
fn write_buffer_full_is_back_pressure() {
    for role in roles() {
        for deflate in [false, true] {
            let label = format!("{role:?} deflate={deflate}");
            let stream = FaultyStream::writer(Plan::Cycle(vec![Fault::WouldBlock]));
            let (mut ws, deflate) = socket(stream, role, deflate);
            let limit = Config::default().max_write_buffer_size;
            assert_eq!(limit, 1 << 20);
            let mut accepted = Vec::new();
            let mut refused = None;
            let mut before_last = 0;
            for i in 0..10_000 {
                let m = Message::binary(noise(1000, i));
                let queued = ws.buffered_amount();
                match ws.write(m.clone()) {
                    Ok(()) => {
                        assert!(
                            queued <= limit,
                            "{label}: accepted onto {queued} queued bytes"
                        );
                        assert!(
                            ws.buffered_amount() > queued,
                            "{label}: accepted but not queued"
                        );
                        before_last = queued;
                        accepted.push(m);
                    }
                    Err(e) if is_buffer_full(&e) => {
                        assert_eq!(ws.buffered_amount(), queued, "{label}: refused but queued");
                        refused = Some(m);
                        break;
                    }
                    Err(e) => panic!("{label}: write {i}: {e:?}"),
                }
            }
            let refused =
                refused.unwrap_or_else(|| panic!("{label}: 10 MB queued and never refused"));
            let queued = ws.buffered_amount();
            assert!(
                queued > limit && before_last <= limit,
                "{label}: refused with {queued} queued, {before_last} before the last accepted (limit {limit})"
            );
            // Refused again while nothing moves, by `send` too.
            assert!(
                is_buffer_full(&ws.write(refused.clone()).unwrap_err()),
                "{label}"
            );
            let e = ws.send(refused.clone()).unwrap_err();
            assert!(
                is_buffer_full(&e),
                "{label}: send of a refused message: {e:?}"
            );
            ws.get_mut().writes = Schedule::new(Plan::every_other(Fault::WouldBlock));
            flush_until_ok(&mut ws, MAX_CALLS, &label);
            assert_eq!(ws.buffered_amount(), 0, "{label}");
            ws.write(refused.clone())
                .unwrap_or_else(|e| panic!("{label}: retry: {e:?}"));
            flush_until_ok(&mut ws, MAX_CALLS, &label);
            accepted.push(refused);
            assert_wire(
                &label,
                &ws.get_ref().wire(),
                role == Role::Client,
                deflate,
                &accepted,
            );
        }
    }
}

/// With permessage-deflate and context takeover, a message refused with
/// `WriteBufferFull` must not have touched the compressor: the peer's
/// inflater never sees it, so if the compressor had taken it in, later
/// messages (which refer back to it) would inflate to garbage.
#[test]
fn refused_message_leaves_the_compressor_alone() {
    for role in roles() {
        let label = format!("{role:?}");
        let config = Config {
            max_write_buffer_size: 150,
            ..Config::default()
        };
        let stream = FaultyStream::writer(Plan::Cycle(vec![Fault::WouldBlock]));
        let (mut ws, deflate) = socket_with(stream, role, true, &config);
        if !deflate {
            return;
        }
        let mut accepted = Vec::new();
        let mut refusals = 0;
        for i in 0..200 {
            // Compressible, each distinct, each repeated: a back-reference
            // to the refused copy would be wrong at the peer.
            let m = Message::text(format!("{i}: {}", prose(3000, i % 7)));
            loop {
                match ws.write(m.clone()) {
                    Ok(()) => break,
                    Err(e) if is_buffer_full(&e) => {
                        refusals += 1;
                        // Refused twice more while stalled, then drained.
                        assert!(is_buffer_full(&ws.write(m.clone()).unwrap_err()), "{label}");
                        ws.get_mut().writes = Schedule::new(Plan::every_other(Fault::WouldBlock));
                        flush_until_ok(&mut ws, MAX_CALLS, &label);
                        ws.get_mut().writes = Schedule::new(Plan::Cycle(vec![Fault::WouldBlock]));
                    }
                    Err(e) => panic!("{label}: write {i}: {e:?}"),
                }
            }
            accepted.push(m);
        }
        assert!(
            refusals > 10,
            "{label}: only {refusals} refusals; the test needs many"
        );
        ws.get_mut().writes = Schedule::new(Plan::Clean);
        flush_until_ok(&mut ws, 10, &label);
        assert_wire(
            &label,
            &ws.get_ref().wire(),
            role == Role::Client,
            true,
            &accepted,
        );
    }
}

/// The queue over its limit (writes refused) does not stop the protocol's
/// own answers: a Ping read then is answered and a Close read then is
/// echoed once the stream drains, after the data queued before them.
#[test]
fn answers_are_queued_even_when_the_buffer_is_full() {
    for role in roles() {
        let label = format!("{role:?}");
        let mut input = peer_frame(role, common::PING, b"full?");
        input.extend(peer_frame(role, common::CLOSE, &close_payload(1000, b"")));
        let stream =
            FaultyStream::with_input(input, Plan::Clean, Plan::Cycle(vec![Fault::WouldBlock]));
        let (mut ws, _) = socket(stream, role, false);
        let mut accepted = Vec::new();
        loop {
            let m = Message::binary(noise(100_000, accepted.len() as u64));
            match ws.write(m.clone()) {
                Ok(()) => accepted.push(m),
                Err(e) if is_buffer_full(&e) => break,
                Err(e) => panic!("{label}: {e:?}"),
            }
        }
        match ws.read() {
            Ok(Message::Ping(p)) => assert_eq!(p, b"full?", "{label}"),
            other => panic!("{label}: {other:?}"),
        }
        match ws.read() {
            Ok(Message::Close(_)) => {}
            other => panic!("{label}: {other:?}"),
        }
        ws.get_mut().writes =
            Schedule::new(Plan::Cycle(vec![Fault::Short(70_000), Fault::WouldBlock]));
        flush_until_ok(&mut ws, MAX_CALLS, &label);
        let frames = RefDecoder::new(role == Role::Client, false)
            .decode_all(&ws.get_ref().wire())
            .unwrap_or_else(|e| panic!("{label}: bad wire: {e}"));
        let data: Vec<&RefFrame> = frames.iter().filter(|f| f.opcode < 8).collect();
        assert_eq!(data.len(), accepted.len(), "{label}");
        for (f, m) in data.iter().zip(&accepted) {
            assert!(f.same_message(&RefFrame::of(m)), "{label}: {}", describe(f));
        }
        let answers: Vec<RefFrame> = frames.iter().filter(|f| f.opcode >= 8).cloned().collect();
        check_answer_frames(&label, &answers, &[b"full?".to_vec()], true, Some(1000));
    }
}

/// A small limit: one message larger than the limit is still accepted
/// onto an empty queue (and only then refused), so any message can be sent.
#[test]
fn a_message_larger_than_the_limit_is_accepted_alone() {
    for role in roles() {
        let label = format!("{role:?}");
        let config = Config {
            max_write_buffer_size: 10_000,
            ..Config::default()
        };
        let stream = FaultyStream::writer(Plan::Cycle(vec![Fault::WouldBlock]));
        let mut ws = WebSocket::from_raw_socket(stream, role, &config);
        let big = Message::binary(noise(100_000, 1));
        ws.write(big.clone())
            .unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert!(ws.buffered_amount() >= 100_000, "{label}");
        let e = ws.write(Message::text("x")).unwrap_err();
        assert!(is_buffer_full(&e), "{label}: {e:?}");
        ws.get_mut().writes =
            Schedule::new(Plan::Cycle(vec![Fault::Short(999), Fault::WouldBlock]));
        flush_until_ok(&mut ws, MAX_CALLS, &label);
        write_queued(&mut ws, MessageRef::Text("x"), 10, &label);
        flush_until_ok(&mut ws, MAX_CALLS, &label);
        assert_wire(
            &label,
            &ws.get_ref().wire(),
            role == Role::Client,
            false,
            &[big, Message::text("x")],
        );
    }
}

/// `buffered_amount` counts the queued wire bytes exactly and drops as
/// they leave; `has_pending_output` agrees with it.
#[test]
fn buffered_amount_counts_unsent_bytes() {
    let stream = FaultyStream::writer(Plan::Cycle(vec![Fault::WouldBlock]));
    let (mut ws, _) = socket(stream, Role::Server, false);
    assert_eq!(ws.buffered_amount(), 0);
    assert!(!ws.has_pending_output());
    ws.write(Message::text("hello")).unwrap();
    assert_eq!(ws.buffered_amount(), 2 + 5);
    ws.write(Message::binary(vec![0; 200])).unwrap();
    assert_eq!(ws.buffered_amount(), 7 + 4 + 200);
    ws.write(Message::binary(vec![0; 70_000])).unwrap();
    assert_eq!(ws.buffered_amount(), 211 + 10 + 70_000);
    assert!(ws.has_pending_output());
    ws.get_mut().writes = Schedule::new(Plan::Cycle(vec![Fault::Short(100), Fault::WouldBlock]));
    let mut last = ws.buffered_amount();
    loop {
        match ws.flush() {
            Ok(()) => break,
            Err(e) if is_timeout(&e) => {
                let now = ws.buffered_amount();
                assert_eq!(
                    now + ws.get_ref().wire().len(),
                    70_221,
                    "queued + written = total"
                );
                assert!(now <= last);
                last = now;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ws.buffered_amount(), 0);
    assert!(!ws.has_pending_output());
}

/// A ping flood while the stream takes nothing: pongs cannot grow the
/// queue past the limit (at most the limit, the last accepted message and
/// one pong are queued), the pongs sent answer pings in order, and the
/// latest ping is answered.
#[test]
fn ping_flood_while_stalled_stays_bounded() {
    for role in roles() {
        let label = format!("{role:?}");
        let limit = Config::default().max_write_buffer_size;
        // More pongs than the limit holds: 6 (server) or 10 (client) bytes each.
        let n = 200_000u32;
        let mut input = Vec::new();
        for i in 0..n {
            input.extend(peer_frame(role, common::PING, &i.to_be_bytes()));
        }
        let stream =
            FaultyStream::with_input(input, Plan::Clean, Plan::Cycle(vec![Fault::WouldBlock]));
        let (mut ws, _) = socket(stream, role, false);
        let data = Message::binary(noise(5000, 1));
        ws.write(data.clone()).unwrap();
        let pong = 2 + 4 + if role == Role::Client { 4 } else { 0 };
        let mut most = 0;
        for i in 0..n {
            match ws.read() {
                Ok(Message::Ping(p)) => assert_eq!(p, i.to_be_bytes(), "{label}"),
                other => panic!("{label}: ping {i}: {other:?}"),
            }
            most = most.max(ws.buffered_amount());
        }
        assert!(
            most <= limit + pong + pong,
            "{label}: {most} bytes queued at most (limit {limit})"
        );
        ws.get_mut().writes = Schedule::new(Plan::Clean);
        flush_until_ok(&mut ws, 10, &label);
        let frames = RefDecoder::new(role == Role::Client, false)
            .decode_all(&ws.get_ref().wire())
            .unwrap_or_else(|e| panic!("{label}: bad wire: {e}"));
        assert!(frames[0].same_message(&RefFrame::of(&data)), "{label}");
        let pings: Vec<Vec<u8>> = (0..n).map(|i| i.to_be_bytes().to_vec()).collect();
        check_answer_frames(&label, &frames[1..], &pings, false, None);
    }
}

// --------------------------------------------------------- split halves

/// The split writer under faults: same contract as the whole connection.
#[test]
fn split_writer_under_faults() {
    for role in roles() {
        for deflate in [false, true] {
            for plan in [
                Plan::every_other(Fault::WouldBlock),
                Plan::Cycle(vec![Fault::Short(777), Fault::TimedOut, Fault::Interrupted]),
                Plan::random(21),
            ] {
                let label = format!("split {role:?} deflate={deflate} {plan:?}");
                let mut stream = FaultyStream::writer(plan);
                stream.fault_flush = true;
                let wire = stream.tx.clone();
                let (ws, deflate) = socket(stream, role, deflate);
                let (_reader, mut writer) = ws.split().unwrap();
                let messages = big_and_small();
                for (i, m) in messages.iter().enumerate() {
                    write_queued(&mut writer, m.as_ref(), MAX_CALLS, &label);
                    if i % 7 == 0 {
                        let _ = writer.flush();
                    }
                }
                flush_until_ok(&mut writer, MAX_CALLS, &label);
                assert_eq!(writer.buffered_amount(), 0, "{label}");
                let wire = wire.lock().unwrap().log.clone();
                assert_wire(&label, &wire, role == Role::Client, deflate, &messages);
            }
        }
    }
}

/// The split reader answers pings and the Close itself, through the
/// writer half, under faults on both halves, while the writer sends its
/// own messages: the wire holds the writer's messages whole and in order,
/// pongs for the pings (the latest always), and the Close echo last.
#[test]
fn split_reader_answers_through_the_writer_under_faults() {
    for role in roles() {
        for (read_plan, write_plan) in [
            (Plan::Clean, Plan::Clean),
            (
                Plan::every_other(Fault::WouldBlock),
                Plan::every_other(Fault::WouldBlock),
            ),
            (Plan::random(1), Plan::random(2)),
            (
                Plan::Clean,
                Plan::Cycle(vec![Fault::WouldBlock, Fault::WouldBlock, Fault::Short(5)]),
            ),
        ] {
            let label = format!("split {role:?} reads {read_plan:?} writes {write_plan:?}");
            let pings: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i; 1 + i as usize]).collect();
            let mut input = Vec::new();
            for p in &pings {
                input.extend(peer_frame(role, common::PING, p));
            }
            input.extend(peer_frame(role, common::CLOSE, &close_payload(1000, b"")));
            let mut stream = FaultyStream::with_input(input, read_plan, write_plan.clone());
            stream.fault_flush = true;
            let wire = stream.tx.clone();
            let (ws, _) = socket(stream, role, false);
            let (mut reader, mut writer) = ws.split().unwrap();
            let mut sent = Vec::new();
            let mut read = Vec::new();
            let read_one = |reader: &mut wsproto::WsReader<FaultyStream>,
                            read: &mut Vec<Message>| {
                for _ in 0..100_000 {
                    match reader.read() {
                        Ok(m) => {
                            read.push(m);
                            return;
                        }
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => panic!("{label}: reader: {e:?} after {} messages", read.len()),
                    }
                }
                panic!("{label}: reader makes no progress");
            };
            for i in 0..pings.len() {
                let m = if i % 10 == 5 {
                    Message::binary(noise(40_000, i as u64))
                } else {
                    small(i)
                };
                write_queued(&mut writer, m.as_ref(), MAX_CALLS, &label);
                sent.push(m);
                if i % 3 == 0 {
                    let _ = writer.flush();
                }
                read_one(&mut reader, &mut read);
            }
            flush_until_ok(&mut writer, MAX_CALLS, &label);
            read_one(&mut reader, &mut read); // the Close
            assert!(
                matches!(read.last(), Some(Message::Close(_))),
                "{label}: {:?}",
                read.last()
            );
            assert!(writer.close_sent(), "{label}: the reader echoed the Close");
            flush_until_ok(&mut writer, MAX_CALLS, &label);
            // After the Close: ConnectionClosed (a client first reads to
            // EOF, which may take retries under read faults).
            let mut after = reader.read();
            for _ in 0..1000 {
                match &after {
                    Err(e) if is_timeout(e) => after = reader.read(),
                    _ => break,
                }
            }
            assert!(
                matches!(after, Err(Error::ConnectionClosed)),
                "{label}: read after the Close: {after:?}"
            );
            let wire = wire.lock().unwrap().log.clone();
            let frames = RefDecoder::new(role == Role::Client, false)
                .decode_all(&wire)
                .unwrap_or_else(|e| panic!("{label}: bad wire: {e}"));
            let data: Vec<&RefFrame> = frames.iter().filter(|f| f.opcode < 8).collect();
            assert_eq!(data.len(), sent.len(), "{label}");
            for (i, (f, m)) in data.iter().zip(&sent).enumerate() {
                assert!(
                    f.same_message(&RefFrame::of(m)),
                    "{label}: message {i}: {}",
                    describe(f)
                );
            }
            let control: Vec<u8> = frames
                .iter()
                .filter(|f| f.opcode >= 8)
                .map(|f| f.opcode)
                .collect();
            assert_eq!(
                frames.last().map(|f| f.opcode),
                Some(OP_CLOSE),
                "{label}: Close echo last"
            );
            assert_eq!(
                control.iter().filter(|&&o| o == OP_CLOSE).count(),
                1,
                "{label}"
            );
            let answers: Vec<RefFrame> = frames.into_iter().filter(|f| f.opcode >= 8).collect();
            let every = matches!(write_plan, Plan::Clean);
            check_answer_frames(&label, &answers, &pings, every, Some(1000));
        }
    }
}

/// A hard error on the split writer fails the connection for both halves'
/// writes: later `write`/`flush`/`send` err with `StreamFailed`.
#[test]
fn split_writer_broken_pipe_fails_the_connection() {
    for role in roles() {
        let label = format!("split {role:?}");
        let mut stream = FaultyStream::writer(Plan::every_other(Fault::WouldBlock));
        stream.broken_at_write = Some(2);
        let (ws, _) = socket(stream, role, false);
        let (_reader, mut writer) = ws.split().unwrap();
        let mut failed = None;
        for m in big_and_small() {
            if let Err(e) = writer.write(m).and_then(|()| writer.flush()) {
                if is_timeout(&e) {
                    continue;
                }
                failed = Some(e);
                break;
            }
        }
        let e = failed.unwrap_or_else(|| panic!("{label}: never failed"));
        assert!(
            matches!(&e, Error::Io(io) if io.kind() == ErrorKind::BrokenPipe),
            "{label}: {e:?}"
        );
        for (what, r) in [
            ("write", writer.write(Message::text("x"))),
            ("flush", writer.flush()),
            ("send", writer.send(Message::text("y"))),
        ] {
            let e = r.expect_err(what);
            assert!(is_stream_failed(&e), "{label}: {what}: {e:?}");
        }
        writer.with_stream(|s| assert_eq!(s.stats.written_after_broken, 0, "{label}"));
    }
}

// ------------------------------------------- two connections, in memory

/// A client and a server over one in-memory duplex with faults on all
/// four directions of I/O, in one thread: the client sends `script`
/// (data and pings) and closes; the server echoes data. Checks both
/// wires with the reference decoder and what each side read.
fn conversation(
    client_io: (Plan, Plan),
    server_io: (Plan, Plan),
    deflate: bool,
    script: &[Message],
    flush_every: usize,
) -> Result<(), String> {
    let (mut cs, mut ss) = duplex();
    cs.reads = Schedule::new(client_io.0);
    cs.writes = Schedule::new(client_io.1);
    ss.reads = Schedule::new(server_io.0);
    ss.writes = Schedule::new(server_io.1);
    cs.fault_flush = true;
    ss.fault_flush = true;
    let (mut client, deflate) = socket(cs, Role::Client, deflate);
    let (mut server, _) = socket(ss, Role::Server, deflate);

    let mut server_got: Vec<Message> = Vec::new();
    let mut server_closed = false;
    // One pass of the server's event loop: read what is there, echo data.
    let server_step = |server: &mut WebSocket<FaultyStream>,
                       got: &mut Vec<Message>,
                       closed: &mut bool|
     -> Result<(), String> {
        for _ in 0..64 {
            if *closed {
                break;
            }
            match server.read() {
                Ok(m) => {
                    if m.is_data() {
                        write_queued(server, m.as_ref(), MAX_CALLS, "server echo");
                    }
                    if matches!(m, Message::Close(_)) {
                        *closed = true;
                    }
                    got.push(m);
                }
                Err(e)
                    if is_timeout(&e)
                        || matches!(&e, Error::Io(io) if io.kind() == ErrorKind::Interrupted) =>
                {
                    break
                }
                Err(e) => return Err(format!("server read: {e:?} after {} messages", got.len())),
            }
        }
        if server.has_pending_output() {
            match server.flush() {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(format!("server flush: {e:?}")),
            }
        }
        Ok(())
    };

    for (i, m) in script.iter().enumerate() {
        write_queued(&mut client, m.as_ref(), MAX_CALLS, "client");
        if i % flush_every == 0 {
            match client.flush() {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(format!("client flush: {e:?}")),
            }
        }
        server_step(&mut server, &mut server_got, &mut server_closed)?;
    }
    match client.close(CloseCode::Normal, "bye") {
        Ok(()) => {}
        Err(e) if is_timeout(&e) => {}
        Err(e) => return Err(format!("client close: {e:?}")),
    }
    flush_until_ok(&mut client, MAX_CALLS, "client close");
    for _ in 0..1_000_000 {
        if server_closed {
            break;
        }
        server_step(&mut server, &mut server_got, &mut server_closed)?;
    }
    if !server_closed {
        return Err(format!(
            "the server never read the Close; read {} messages",
            server_got.len()
        ));
    }
    flush_until_ok(&mut server, MAX_CALLS, "server close echo");
    // The server closes the TCP connection first (RFC 6455 §7.1.1).
    server.get_ref().hang_up();
    let client_got = read_all(&mut client, "client reads");

    // What the server read: the script, then the Close.
    let mut want_server: Vec<Message> = script.to_vec();
    want_server.push(Message::close(CloseCode::Normal, "bye"));
    if server_got.len() != want_server.len() {
        return Err(format!(
            "server read {} messages, client sent {}",
            server_got.len(),
            want_server.len()
        ));
    }
    if let Some(i) = (0..want_server.len()).find(|&i| server_got[i] != want_server[i]) {
        return Err(format!("server message {i} differs"));
    }
    // The client's wire is exactly what it sent.
    let cwire = client.get_ref().wire();
    let cframes = RefDecoder::new(true, deflate)
        .decode_all(&cwire)
        .map_err(|e| format!("client wire: {e}"))?;
    let want: Vec<RefFrame> = want_server.iter().map(RefFrame::of).collect();
    if cframes.len() != want.len() || cframes.iter().zip(&want).any(|(a, b)| !a.same_message(b)) {
        return Err(format!(
            "client wire: {} frames for {} messages",
            cframes.len(),
            want.len()
        ));
    }
    // The server's wire: the echoes in order, pongs for the pings (the
    // latest always), the Close echo last.
    let swire = server.get_ref().wire();
    let sframes = RefDecoder::new(false, deflate)
        .decode_all(&swire)
        .map_err(|e| format!("server wire: {e}"))?;
    let data: Vec<&Message> = script.iter().filter(|m| m.is_data()).collect();
    let pings: Vec<Vec<u8>> = script
        .iter()
        .filter_map(|m| match m {
            Message::Ping(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let mut echoes = Vec::new();
    let mut pongs = Vec::new();
    for (i, f) in sframes.iter().enumerate() {
        match f.opcode {
            OP_TEXT | OP_BINARY => echoes.push(f),
            OP_PONG => pongs.push(f.payload.clone()),
            OP_CLOSE if i == sframes.len() - 1 => {
                if f.payload != close_payload(1000, b"") {
                    return Err(format!("server Close echo {:02x?}", f.payload));
                }
            }
            _ => return Err(format!("server wire frame {i}: {}", describe(f))),
        }
    }
    if sframes.last().map(|f| f.opcode) != Some(OP_CLOSE) {
        return Err("the server's Close echo is not the last frame".into());
    }
    if echoes.len() != data.len() {
        return Err(format!(
            "{} echoes for {} data messages",
            echoes.len(),
            data.len()
        ));
    }
    if let Some(i) = (0..data.len()).find(|&i| !echoes[i].same_message(&RefFrame::of(data[i]))) {
        return Err(format!("echo {i} differs: {}", describe(echoes[i])));
    }
    let mut rest = pings.iter();
    if !pongs.iter().all(|p| rest.any(|q| q == p)) {
        return Err(format!(
            "pongs {pongs:02x?} do not answer the pings in order"
        ));
    }
    if pongs.last() != pings.last() {
        return Err("the latest ping was not answered".into());
    }
    // What the client read: the echoes, pongs, the Close echo.
    let client_data: Vec<&Message> = client_got.iter().filter(|m| m.is_data()).collect();
    if client_data != data {
        return Err(format!(
            "client read {} data messages for {}",
            client_data.len(),
            data.len()
        ));
    }
    if !matches!(client_got.last(), Some(Message::Close(Some(f))) if f.code == CloseCode::Normal) {
        return Err(format!(
            "client's last read: {:?}",
            client_got.last().map(Message::opcode)
        ));
    }
    Ok(())
}

fn script() -> Vec<Message> {
    let mut v: Vec<Message> = (0..60).map(small).collect();
    v.insert(10, Message::Ping(b"first".to_vec()));
    v.insert(20, Message::binary(noise(300_000, 8)));
    v.insert(21, Message::Ping(b"second".to_vec()));
    v.insert(22, Message::Ping(b"third".to_vec()));
    v.push(Message::text(prose(30_000, 2)));
    v.push(Message::Ping(b"last".to_vec()));
    v
}

#[test]
fn echo_conversation_under_faults() {
    let plans = [
        Plan::Clean,
        Plan::every_other(Fault::WouldBlock),
        Plan::every_other(Fault::TimedOut),
        Plan::every_other(Fault::Interrupted),
        Plan::Cycle(vec![Fault::Short(1), Fault::Pass]),
        Plan::random(17),
    ];
    for deflate in [false, true] {
        for (i, p) in plans.iter().enumerate() {
            let q = &plans[(i + 1) % plans.len()];
            let r = conversation(
                (q.clone(), p.clone()),
                (p.clone(), q.clone()),
                deflate,
                &script(),
                3,
            );
            if let Err(e) = r {
                panic!("deflate={deflate} client writes {p:?}, server writes {q:?}: {e}");
            }
        }
    }
}

// ------------------------------------------------------------ proptest

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::Pass),
        2 => Just(Fault::WouldBlock),
        1 => Just(Fault::Interrupted),
        1 => Just(Fault::TimedOut),
        2 => (1usize..9).prop_map(Fault::Short),
    ]
}

/// A fault schedule; a cycle always has a call that moves bytes.
fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![
        1 => Just(Plan::Clean),
        4 => proptest::collection::vec(fault(), 1..8).prop_map(|mut v| {
            v.push(Fault::Pass);
            Plan::Cycle(v)
        }),
        2 => (any::<u64>(), 0u32..60, 1usize..64).prop_map(|(seed, error_percent, max_bytes)| Plan::Random {
            seed,
            error_percent,
            max_bytes,
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        6 => (0usize..400, any::<u64>()).prop_map(|(n, s)| Message::binary(noise(n, s))),
        4 => (0usize..400, any::<usize>()).prop_map(|(n, s)| Message::text(prose(n, s))),
        1 => (16_000usize..70_000, any::<u64>()).prop_map(|(n, s)| Message::binary(noise(n, s))),
        2 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Message::Ping),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_fault_schedules_never_corrupt_the_stream(
        client_reads in plan(),
        client_writes in plan(),
        server_reads in plan(),
        server_writes in plan(),
        deflate in any::<bool>(),
        mut script in proptest::collection::vec(message(), 1..40),
        flush_every in 1usize..6,
    ) {
        // The script ends with a ping, so "the latest ping is answered" says something.
        script.push(Message::Ping(b"end".to_vec()));
        let r = conversation((client_reads, client_writes), (server_reads, server_writes), deflate, &script, flush_every);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn random_fault_schedules_on_one_writer(
        plan in plan(),
        fault_flush in any::<bool>(),
        client in any::<bool>(),
        deflate in any::<bool>(),
        send in any::<bool>(),
        script in proptest::collection::vec(message(), 1..40),
    ) {
        let role = if client { Role::Client } else { Role::Server };
        let api = if send { Api::Send } else { Api::WriteFlush };
        write_through(plan, fault_flush, role, deflate, api, &script);
    }
}

// ------------------------------------------------ a real TCP socket

/// A blocking `TcpStream` with a short write time-out and a peer that
/// stops reading: a 48 MiB `send` times out; once the peer reads again,
/// `flush` completes and the peer receives exactly the frame, then the
/// next message intact.
#[test]
fn tcp_send_times_out_then_flush_completes() {
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::Duration;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let peer = std::thread::spawn(move || -> Result<Vec<RefFrame>, String> {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        go_rx.recv().map_err(|e| e.to_string())?;
        let mut wire = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => wire.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("peer read after {} bytes: {e}", wire.len())),
            }
        }
        RefDecoder::new(false, false).decode_all(&wire)
    });
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, &Config::default());
    let big = noise(48 << 20, 48);
    let e = ws
        .send_ref(MessageRef::Binary(&big))
        .expect_err("48 MiB cannot fit in the socket buffers of a peer that does not read");
    assert!(is_timeout(&e), "send: {e:?}");
    assert!(ws.has_pending_output());
    // Still stuck: another flush times out too, and loses nothing.
    let e = ws.flush().expect_err("the peer still does not read");
    assert!(is_timeout(&e), "flush: {e:?}");
    go_tx.send(()).unwrap();
    let mut calls = 0;
    loop {
        calls += 1;
        match ws.flush() {
            Ok(()) => break,
            Err(e) if is_timeout(&e) && calls < 1000 => {}
            Err(e) => panic!("flush call {calls}: {e:?}"),
        }
    }
    ws.send(Message::text("next")).unwrap();
    ws.get_mut().shutdown(std::net::Shutdown::Write).unwrap();
    let frames = peer.join().unwrap().unwrap_or_else(|e| panic!("peer: {e}"));
    assert_eq!(
        frames.len(),
        2,
        "frames: {:?}",
        frames.iter().map(describe).collect::<Vec<_>>()
    );
    assert_eq!(frames[0].opcode, OP_BINARY);
    assert!(frames[0].payload == big, "the 48 MiB payload differs");
    assert_eq!(
        frames[1],
        RefFrame {
            opcode: OP_TEXT,
            compressed: false,
            payload: b"next".to_vec()
        }
    );
}
