//! Interoperability with an independent implementation, tungstenite 0.30,
//! over real TCP sockets on 127.0.0.1 (ephemeral ports): our server with
//! tungstenite's client, and our client with tungstenite's server. Text,
//! binary, fragmented and 1 MiB messages, pings answered by each side, and
//! the close handshake started by either side with a code and reason.
//!
//! Each server runs a small scripted echo loop on its own thread and logs
//! what it received; every socket has read and write time-outs, and every
//! loop is bounded, so a failure ends the test instead of hanging it.

use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::{CloseCode as TCode, Data, OpCode as TOp};
use tungstenite::protocol::frame::{CloseFrame as TClose, Frame as TFrame};
use tungstenite::Message as TMsg;
use wsproto::{CloseCode, Error, Message, OpCode};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Most messages one server loop handles before giving up.
const MAX_STEPS: usize = 1000;

/// What a server received, in a form common to both implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// The server's log and how its loop ended (`Ok` = clean close handshake).
type ServerResult = (Vec<Seen>, Result<(), String>);

fn set_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
}

/// Listen on an ephemeral port and run `serve` on the first connection,
/// waiting at most `TIMEOUT` for it.
fn spawn_server(
    serve: impl FnOnce(TcpStream) -> ServerResult + Send + 'static,
) -> (u16, JoinHandle<ServerResult>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = thread::spawn(move || {
        let deadline = Instant::now() + TIMEOUT;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    thread::sleep(Duration::from_millis(5))
                }
                Err(e) => return (Vec::new(), Err(format!("accept: {e}"))),
            }
        };
        stream.set_nonblocking(false).unwrap();
        set_timeouts(&stream);
        serve(stream)
    });
    (port, handle)
}

/// Text commands both scripted servers understand, besides echoing data.
const PING_ME: &str = "ping-me:";
const CLOSE_ME: &str = "close-me";
const FRAGMENT_ME: &str = "fragment-me";

/// Our server: echo data; on `ping-me:X` send a ping `X`; on a pong `P`
/// send text `pong:P`; on `close-me` close with 4002 "server bye".
fn our_server(stream: TcpStream) -> ServerResult {
    let mut log = Vec::new();
    let mut ws = match wsproto::accept(stream) {
        Ok(ws) => ws,
        Err(e) => return (log, Err(format!("accept: {e}"))),
    };
    for _ in 0..MAX_STEPS {
        let message = match ws.read() {
            Ok(m) => m,
            Err(Error::ConnectionClosed) => return (log, Ok(())),
            Err(e) => return (log, Err(format!("read: {e:?}"))),
        };
        let sent = match &message {
            Message::Text(t) if t.starts_with(PING_ME) => {
                ws.send(Message::Ping(t.as_bytes()[PING_ME.len()..].to_vec()))
            }
            Message::Text(t) if t == CLOSE_ME => ws.close(CloseCode::Other(4002), "server bye"),
            Message::Text(_) | Message::Binary(_) => ws.send(message.clone()),
            Message::Pong(p) => ws.send(Message::text(format!(
                "pong:{}",
                String::from_utf8_lossy(p)
            ))),
            Message::Ping(_) | Message::Close(_) => Ok(()),
        };
        log.push(match message {
            Message::Text(t) => Seen::Text(t),
            Message::Binary(b) => Seen::Binary(b),
            Message::Ping(p) => Seen::Ping(p),
            Message::Pong(p) => Seen::Pong(p),
            Message::Close(f) => Seen::Close(f.map(|f| (u16::from(f.code), f.reason))),
        });
        if let Err(e) = sent {
            return (log, Err(format!("send: {e:?}")));
        }
    }
    (log, Err("too many messages".into()))
}

/// tungstenite's server with the same script; `fragment-me` is answered
/// with a text message in three frames.
fn tungstenite_server(stream: TcpStream) -> ServerResult {
    let mut log = Vec::new();
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(e) => return (log, Err(format!("accept: {e}"))),
    };
    for _ in 0..MAX_STEPS {
        let message = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::ConnectionClosed) => return (log, Ok(())),
            Err(e) => return (log, Err(format!("read: {e:?}"))),
        };
        let sent = match &message {
            TMsg::Text(t) if t.as_str().starts_with(PING_ME) => {
                ws.send(TMsg::Ping(t.as_bytes()[PING_ME.len()..].to_vec().into()))
            }
            TMsg::Text(t) if t.as_str() == CLOSE_ME => ws.close(Some(TClose {
                code: TCode::from(4004),
                reason: "server bye".into(),
            })),
            TMsg::Text(t) if t.as_str() == FRAGMENT_ME => [
                TFrame::message("frag", TOp::Data(Data::Text), false),
                TFrame::message("mented ", TOp::Data(Data::Continue), false),
                TFrame::message("", TOp::Data(Data::Continue), false),
                TFrame::message("tëxt", TOp::Data(Data::Continue), true),
            ]
            .into_iter()
            .try_for_each(|f| ws.send(TMsg::Frame(f))),
            TMsg::Text(_) | TMsg::Binary(_) => ws.send(message.clone()),
            TMsg::Pong(p) => ws.send(TMsg::text(format!("pong:{}", String::from_utf8_lossy(p)))),
            _ => Ok(()),
        };
        log.push(match message {
            TMsg::Text(t) => Seen::Text(t.as_str().to_owned()),
            TMsg::Binary(b) => Seen::Binary(b.to_vec()),
            TMsg::Ping(p) => Seen::Ping(p.to_vec()),
            TMsg::Pong(p) => Seen::Pong(p.to_vec()),
            TMsg::Close(f) => {
                Seen::Close(f.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
            }
            TMsg::Frame(_) => return (log, Err("raw frame surfaced".into())),
        });
        if let Err(e) = sent {
            return (log, Err(format!("send: {e:?}")));
        }
    }
    (log, Err("too many messages".into()))
}

// ---- our server, tungstenite's client ----

type TClient = tungstenite::WebSocket<TcpStream>;

fn tungstenite_client(port: u16) -> TClient {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    set_timeouts(&stream);
    let (ws, response) = tungstenite::client(format!("ws://127.0.0.1:{port}/interop"), stream)
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 101);
    ws
}

fn t_read(ws: &mut TClient) -> TMsg {
    ws.read().expect("tungstenite client read")
}

/// Close from the tungstenite client and check both ends finished cleanly.
fn t_close_and_join(mut ws: TClient, server: JoinHandle<ServerResult>) -> Vec<Seen> {
    ws.close(Some(TClose {
        code: TCode::from(4001),
        reason: "client bye".into(),
    }))
    .unwrap();
    match t_read(&mut ws) {
        TMsg::Close(Some(f)) => assert_eq!(u16::from(f.code), 4001, "echoed code"),
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    let (log, end) = server.join().unwrap();
    assert_eq!(end, Ok(()), "server log: {log:?}");
    assert_eq!(
        log.last(),
        Some(&Seen::Close(Some((4001, "client bye".into()))))
    );
    log
}

#[test]
fn our_server_echoes_text_and_binary_to_tungstenite() {
    let (port, server) = spawn_server(our_server);
    let mut ws = tungstenite_client(port);
    let text = "héllo wörld 👍 张三";
    let binary: Vec<u8> = (0..=255).collect();
    ws.send(TMsg::text(text)).unwrap();
    ws.send(TMsg::binary(binary.clone())).unwrap();
    ws.send(TMsg::text("")).unwrap();
    assert_eq!(t_read(&mut ws), TMsg::text(text));
    assert_eq!(t_read(&mut ws), TMsg::binary(binary.clone()));
    assert_eq!(t_read(&mut ws), TMsg::text(""));
    let log = t_close_and_join(ws, server);
    assert_eq!(
        log[..3],
        [
            Seen::Text(text.into()),
            Seen::Binary(binary),
            Seen::Text(String::new())
        ]
    );
}

#[test]
fn our_server_reassembles_tungstenite_fragments() {
    let (port, server) = spawn_server(our_server);
    let mut ws = tungstenite_client(port);
    ws.send(TMsg::Frame(TFrame::message(
        "Hel",
        TOp::Data(Data::Text),
        false,
    )))
    .unwrap();
    // A ping between fragments is answered at once (RFC 6455 §5.4).
    ws.send(TMsg::Ping(b"mid".to_vec().into())).unwrap();
    ws.send(TMsg::Frame(TFrame::message(
        "lo ",
        TOp::Data(Data::Continue),
        false,
    )))
    .unwrap();
    // "wörld" cut inside the two-byte 'ö'.
    let (a, b) = "wörld".as_bytes().split_at(2);
    ws.send(TMsg::Frame(TFrame::message(
        a.to_vec(),
        TOp::Data(Data::Continue),
        false,
    )))
    .unwrap();
    ws.send(TMsg::Frame(TFrame::message(
        b.to_vec(),
        TOp::Data(Data::Continue),
        true,
    )))
    .unwrap();
    ws.send(TMsg::Frame(TFrame::message(
        vec![1, 2],
        TOp::Data(Data::Binary),
        false,
    )))
    .unwrap();
    ws.send(TMsg::Frame(TFrame::message(
        vec![3],
        TOp::Data(Data::Continue),
        true,
    )))
    .unwrap();
    assert_eq!(t_read(&mut ws), TMsg::Pong(b"mid".to_vec().into()));
    assert_eq!(t_read(&mut ws), TMsg::text("Hello wörld"));
    assert_eq!(t_read(&mut ws), TMsg::binary(vec![1, 2, 3]));
    let log = t_close_and_join(ws, server);
    assert_eq!(
        log[..3],
        [
            Seen::Ping(b"mid".to_vec()),
            Seen::Text("Hello wörld".into()),
            Seen::Binary(vec![1, 2, 3])
        ]
    );
}

fn mib_binary() -> Vec<u8> {
    (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

fn mib_text() -> String {
    // 1 MiB of mixed 1-, 2-, 3- and 4-byte characters.
    let unit = "aé€😀"; // 1 + 2 + 3 + 4 = 10 bytes
    unit.repeat((1 << 20) / unit.len())
}

#[test]
fn one_mib_messages_cross_our_server_both_ways() {
    let (port, server) = spawn_server(our_server);
    let mut ws = tungstenite_client(port);
    let binary = mib_binary();
    let text = mib_text();
    ws.send(TMsg::binary(binary.clone())).unwrap();
    assert_eq!(t_read(&mut ws), TMsg::binary(binary.clone()));
    ws.send(TMsg::text(text.clone())).unwrap();
    assert_eq!(t_read(&mut ws), TMsg::text(text.clone()));
    let log = t_close_and_join(ws, server);
    assert_eq!(log[..2], [Seen::Binary(binary), Seen::Text(text)]);
}

#[test]
fn our_server_and_tungstenite_answer_each_others_pings() {
    let (port, server) = spawn_server(our_server);
    let mut ws = tungstenite_client(port);
    // Their ping, our automatic pong.
    ws.send(TMsg::Ping(b"from tungstenite".to_vec().into()))
        .unwrap();
    assert_eq!(
        t_read(&mut ws),
        TMsg::Pong(b"from tungstenite".to_vec().into())
    );
    // Our ping, their automatic pong (sent on their next read), reported back.
    ws.send(TMsg::text(format!("{PING_ME}from wsproto")))
        .unwrap();
    assert_eq!(t_read(&mut ws), TMsg::Ping(b"from wsproto".to_vec().into()));
    assert_eq!(t_read(&mut ws), TMsg::text("pong:from wsproto"));
    let log = t_close_and_join(ws, server);
    assert_eq!(
        log[..3],
        [
            Seen::Ping(b"from tungstenite".to_vec()),
            Seen::Text(format!("{PING_ME}from wsproto")),
            Seen::Pong(b"from wsproto".to_vec()),
        ]
    );
}

#[test]
fn our_server_closes_with_code_and_reason_to_tungstenite() {
    let (port, server) = spawn_server(our_server);
    let mut ws = tungstenite_client(port);
    ws.send(TMsg::text(CLOSE_ME)).unwrap();
    match t_read(&mut ws) {
        TMsg::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 4002);
            assert_eq!(f.reason.as_str(), "server bye");
        }
        other => panic!("expected Close, got {other:?}"),
    }
    // tungstenite sends its reply on this read, then sees our TCP close.
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    let (log, end) = server.join().unwrap();
    assert_eq!(end, Ok(()), "{log:?}");
    assert_eq!(
        log,
        [
            Seen::Text(CLOSE_ME.into()),
            Seen::Close(Some((4002, "server bye".into())))
        ]
    );
}

// ---- our client, tungstenite's server ----

type OurClient = wsproto::WebSocket<wsproto::MaybeTlsStream>;

fn our_client(port: u16) -> OurClient {
    let (ws, response) = wsproto::connect(&format!("ws://127.0.0.1:{port}/interop")).unwrap();
    assert_eq!(response.status, 101);
    set_timeouts(ws.get_ref().get_ref());
    ws
}

/// Send one raw frame (masked, as a client must) with FIN as given.
fn send_fragment(ws: &mut OurClient, fin: bool, opcode: OpCode, payload: &[u8]) {
    let mut frame = wsproto::Frame::new(opcode, payload.to_vec());
    frame.header.fin = fin;
    wsproto::mask_frame_in_place(&mut frame);
    assert!(!ws.has_pending_output());
    wsproto::write_frame(ws.get_mut(), &frame).unwrap();
}

/// Close from our client and check both ends finished cleanly.
fn close_and_join(mut ws: OurClient, server: JoinHandle<ServerResult>) -> Vec<Seen> {
    ws.close(CloseCode::Other(4003), "client bye").unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(f.code, CloseCode::Other(4003));
            assert_eq!(f.reason, "client bye", "tungstenite echoes the reason");
        }
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    let (log, end) = server.join().unwrap();
    assert_eq!(end, Ok(()), "server log: {log:?}");
    assert_eq!(
        log.last(),
        Some(&Seen::Close(Some((4003, "client bye".into()))))
    );
    log
}

#[test]
fn our_client_exchanges_text_and_binary_with_tungstenite() {
    let (port, server) = spawn_server(tungstenite_server);
    let mut ws = our_client(port);
    let text = "héllo wörld 👍 张三";
    let binary: Vec<u8> = (0..=255).rev().collect();
    ws.send(Message::text(text)).unwrap();
    ws.send(Message::binary(binary.clone())).unwrap();
    ws.send(Message::binary(Vec::new())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(text));
    assert_eq!(ws.read().unwrap(), Message::binary(binary.clone()));
    assert_eq!(ws.read().unwrap(), Message::binary(Vec::new()));
    let log = close_and_join(ws, server);
    assert_eq!(
        log[..3],
        [
            Seen::Text(text.into()),
            Seen::Binary(binary),
            Seen::Binary(Vec::new())
        ]
    );
}

#[test]
fn fragments_cross_between_our_client_and_tungstenite() {
    let (port, server) = spawn_server(tungstenite_server);
    let mut ws = our_client(port);
    // Ours towards tungstenite, with a ping in the middle.
    send_fragment(&mut ws, false, OpCode::Text, b"Hel");
    send_fragment(&mut ws, true, OpCode::Ping, b"mid");
    send_fragment(&mut ws, false, OpCode::Continuation, "lo wö".as_bytes());
    send_fragment(&mut ws, true, OpCode::Continuation, b"rld");
    assert_eq!(ws.read().unwrap(), Message::Pong(b"mid".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::text("Hello wörld"));
    // Theirs towards us.
    ws.send(Message::text(FRAGMENT_ME)).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("fragmented tëxt"));
    let log = close_and_join(ws, server);
    assert_eq!(
        log[..3],
        [
            Seen::Ping(b"mid".to_vec()),
            Seen::Text("Hello wörld".into()),
            Seen::Text(FRAGMENT_ME.into())
        ]
    );
}

#[test]
fn one_mib_messages_cross_our_client_both_ways() {
    let (port, server) = spawn_server(tungstenite_server);
    let mut ws = our_client(port);
    let binary = mib_binary();
    let text = mib_text();
    ws.send(Message::binary(binary.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(binary.clone()));
    ws.send(Message::text(text.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(text.clone()));
    let log = close_and_join(ws, server);
    assert_eq!(log[..2], [Seen::Binary(binary), Seen::Text(text)]);
}

#[test]
fn our_client_and_tungstenite_answer_each_others_pings() {
    let (port, server) = spawn_server(tungstenite_server);
    let mut ws = our_client(port);
    ws.send(Message::Ping(b"from wsproto".to_vec())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"from wsproto".to_vec()));
    ws.send(Message::text(format!("{PING_ME}from tungstenite")))
        .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Ping(b"from tungstenite".to_vec())
    );
    assert_eq!(ws.read().unwrap(), Message::text("pong:from tungstenite"));
    let log = close_and_join(ws, server);
    assert_eq!(
        log[..3],
        [
            Seen::Ping(b"from wsproto".to_vec()),
            Seen::Text(format!("{PING_ME}from tungstenite")),
            Seen::Pong(b"from tungstenite".to_vec()),
        ]
    );
}

#[test]
fn tungstenite_closes_with_code_and_reason_to_our_client() {
    let (port, server) = spawn_server(tungstenite_server);
    let mut ws = our_client(port);
    ws.send(Message::text(CLOSE_ME)).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(f.code, CloseCode::Other(4004));
            assert_eq!(f.reason, "server bye");
        }
        other => panic!("expected Close, got {other:?}"),
    }
    assert!(ws.close_sent(), "the close was echoed");
    // The client waits for the server to close TCP (RFC 6455 §7.1.1).
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    let (log, end) = server.join().unwrap();
    assert_eq!(end, Ok(()), "{log:?}");
    // Our echo carries the same code (RFC 6455 §5.5.1).
    assert_eq!(
        log,
        [
            Seen::Text(CLOSE_ME.into()),
            Seen::Close(Some((4004, String::new())))
        ]
    );
}
