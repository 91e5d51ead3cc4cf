//! chatcli against a tiny WebSocket server written here with wsproto's
//! frame level, so that every byte the client sends can be checked: masks
//! (RFC 6455 §5.3), pongs (§5.5.3), the close handshake (§7) and its exit
//! codes.

mod common;

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{finish, spawn_chatcli, Finished};
use wsproto::{read_frame, write_frame, Accept, CloseCode, Config, Frame, OpCode, Response};
use wsproto::{read_request, upgrade, Request};

/// Longest any single client run may take.
const RUN_LIMIT: Duration = Duration::from_secs(15);
/// Server-side read time-out: a silent client fails the test, never hangs it.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A listener on an ephemeral port and its `ws://` address.
fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = format!("ws://{}", listener.local_addr().expect("local addr"));
    (listener, addr)
}

/// Accept one TCP connection, waiting at most a few seconds.
fn accept_tcp(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking");
                stream
                    .set_read_timeout(Some(READ_TIMEOUT))
                    .expect("timeout");
                stream
                    .set_write_timeout(Some(READ_TIMEOUT))
                    .expect("timeout");
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("no client connected: {e}"),
        }
    }
}

/// Accept one client and upgrade it, returning the raw stream (to speak
/// frames on) and the request it sent.
fn accept_ws(listener: &TcpListener) -> (TcpStream, Request) {
    let mut stream = accept_tcp(listener);
    let (request, leftover) = read_request(&mut stream, &Config::default()).expect("request");
    assert!(leftover.is_empty(), "client sent frames before the 101");
    upgrade(
        &mut stream,
        &request,
        Accept::default(),
        &Config::default(),
        Vec::new(),
    )
    .expect("101");
    (stream, request)
}

/// Read one frame from the client; it must be masked (RFC 6455 §5.1).
/// Returns the frame as sent (masked) and its unmasked payload.
fn read_client_frame(stream: &mut TcpStream) -> (Frame, Vec<u8>) {
    let frame = read_frame(stream, 1 << 16).expect("a frame from the client");
    assert!(frame.header.fin, "unexpected fragment: {:?}", frame.header);
    let mask = frame.header.mask.expect("client frames must be masked");
    assert_eq!(frame.payload.len() as u64, frame.header.len);
    let mut plain = frame.clone();
    plain.unmask();
    assert_eq!(plain.header.mask, None);
    let _ = mask;
    (frame, plain.payload)
}

/// Read frames until a Close; returns (opcode, unmasked payload, mask) of
/// every frame, the Close last. Bounded in count.
fn read_until_close(stream: &mut TcpStream) -> Vec<(OpCode, Vec<u8>, [u8; 4])> {
    let mut frames = Vec::new();
    for _ in 0..50 {
        let (frame, payload) = read_client_frame(stream);
        let mask = frame.header.mask.unwrap_or_default();
        let opcode = frame.header.opcode;
        frames.push((opcode, payload, mask));
        if opcode == OpCode::Close {
            return frames;
        }
    }
    panic!("no Close among the first 50 frames: {frames:?}");
}

/// The code and reason of a Close payload.
fn close_body(payload: &[u8]) -> (u16, String) {
    assert!(payload.len() >= 2, "close without a code: {payload:?}");
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    (
        code,
        String::from_utf8(payload[2..].to_vec()).expect("utf-8 reason"),
    )
}

fn send(stream: &mut TcpStream, frame: Frame) {
    write_frame(stream, &frame).expect("server write");
}

/// After the close handshake the client must send nothing more and close.
fn expect_end(stream: &mut TcpStream) {
    match read_frame(stream, 1 << 16) {
        Err(wsproto::Error::UnexpectedEof) => {}
        Err(wsproto::Error::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {}
        Err(wsproto::Error::Io(e)) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the client to hang up, got {other:?}"),
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> Finished {
    finish(spawn_chatcli(args, stdin), RUN_LIMIT)
}

fn server<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    thread::spawn(f)
}

#[test]
fn count_sends_exactly_n_masked_hellos_answers_pings_then_closes_1000() {
    let (listener, addr) = listen();
    let user = "zoë & co/1";
    let srv = server(move || {
        let (mut s, request) = accept_ws(&listener);
        send(&mut s, Frame::text("welcome"));
        send(&mut s, Frame::ping("are you there"));
        let mut frames = Vec::new();
        let mut hellos = 0;
        for _ in 0..50 {
            let (frame, payload) = read_client_frame(&mut s);
            let op = frame.header.opcode;
            frames.push((op, payload.clone(), frame.header.mask.unwrap_or_default()));
            match op {
                OpCode::Text => {
                    hellos += 1;
                    send(
                        &mut s,
                        Frame::text(format!(
                            "echo {hellos}: {}",
                            String::from_utf8_lossy(&payload)
                        )),
                    );
                }
                OpCode::Close => break,
                _ => {}
            }
        }
        // Answer the client's Close (RFC 6455 §5.5.1), then close TCP first
        // as the server should (§7.1.1).
        send(&mut s, Frame::close(CloseCode::Normal, ""));
        (request, frames)
    });

    let out = run(
        &[
            "--user",
            user,
            "--addr",
            &addr,
            "--interval",
            "100ms",
            "--count",
            "3",
            "--linger",
            "400ms",
        ],
        None,
    );
    let (request, frames) = srv.join().expect("server thread");

    // The user name arrives intact, percent-encoded on the wire.
    assert_eq!(request.target(), "/?user=zo%C3%AB%20%26%20co%2F1");
    assert_eq!(request.query_param("user").as_deref(), Some(user));
    assert_eq!(
        request.header("sec-websocket-extensions"),
        None,
        "no compression offered without --deflate"
    );

    let texts: Vec<_> = frames.iter().filter(|f| f.0 == OpCode::Text).collect();
    assert_eq!(texts.len(), 3, "exactly 3 text frames: {frames:?}");
    assert!(texts.iter().all(|f| f.1 == b"hello"));
    let pongs: Vec<_> = frames.iter().filter(|f| f.0 == OpCode::Pong).collect();
    assert_eq!(pongs.len(), 1, "one pong: {frames:?}");
    assert_eq!(pongs[0].1, b"are you there");
    let last = frames.last().expect("frames");
    assert_eq!(last.0, OpCode::Close);
    assert_eq!(close_body(&last.1).0, 1000);
    assert_eq!(frames.len(), 5, "pong, 3 hellos, close: {frames:?}");
    // A fresh mask for every frame.
    for (i, a) in frames.iter().enumerate() {
        for b in &frames[i + 1..] {
            assert_ne!(a.2, b.2, "two frames share a mask: {frames:?}");
        }
    }

    assert!(out.status.success(), "exit 0 expected: {out:?}");
    assert_eq!(
        out.lines(),
        ["welcome", "echo 1: hello", "echo 2: hello", "echo 3: hello"],
        "{out:?}"
    );
}

#[test]
fn server_close_1000_is_echoed_and_exits_0() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let (mut s, _) = accept_ws(&listener);
        send(&mut s, Frame::text("hi there"));
        send(&mut s, Frame::text("second line"));
        send(
            &mut s,
            Frame::close(CloseCode::Normal, "server shutting down"),
        );
        let frames = read_until_close(&mut s);
        drop(s);
        frames
    });
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    let frames = srv.join().expect("server thread");
    assert_eq!(frames.len(), 1, "only the close echo: {frames:?}");
    assert_eq!(close_body(&frames[0].1).0, 1000);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.lines(), ["hi there", "second line"]);
}

#[test]
fn kick_4001_prints_code_and_reason_and_exits_3() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let (mut s, _) = accept_ws(&listener);
        send(&mut s, Frame::text("first"));
        send(
            &mut s,
            Frame::close(CloseCode::Other(4001), "logged in elsewhere"),
        );
        let frames = read_until_close(&mut s);
        drop(s);
        frames
    });
    let out = run(
        &["--user", "aaa", "--addr", &addr, "--interval", "5s"],
        None,
    );
    let frames = srv.join().expect("server thread");
    assert_eq!(
        close_body(&frames[frames.len() - 1].1).0,
        4001,
        "echoed code"
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(out.lines(), ["first"]);
    assert!(out.stderr.contains("4001"), "{}", out.stderr);
    assert!(out.stderr.contains("logged in elsewhere"), "{}", out.stderr);
}

#[test]
fn http_refusals_show_status_and_body() {
    for (status, body) in [
        (400, "missing ?user=NAME"),
        (503, "server full: 2 users max"),
    ] {
        let (listener, addr) = listen();
        let srv = server(move || {
            let mut s = accept_tcp(&listener);
            let (request, _) = read_request(&mut s, &Config::default()).expect("request");
            Response::text(status, body)
                .write_to(&mut s)
                .expect("write");
            request.target().to_owned()
        });
        let out = run(&["--user", "aaa", "--addr", &addr], None);
        assert_eq!(srv.join().expect("server thread"), "/?user=aaa");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(
            out.stderr.contains(&format!("HTTP {status}")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(body), "{}", out.stderr);
    }
}

#[test]
fn nothing_listening_is_a_clear_error() {
    let (listener, addr) = listen();
    drop(listener);
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let host_port = addr.trim_start_matches("ws://");
    assert!(
        out.stderr
            .contains(&format!("cannot connect to {host_port}")),
        "{}",
        out.stderr
    );
}

#[test]
fn interactive_sends_each_stdin_line_then_closes_1000_at_eof() {
    let modes: [&[&str]; 2] = [&["--interactive"], &["--message", "-"]];
    for mode in modes {
        let (listener, addr) = listen();
        let srv = server(move || {
            let (mut s, _) = accept_ws(&listener);
            let mut frames = Vec::new();
            for _ in 0..50 {
                let (frame, payload) = read_client_frame(&mut s);
                let op = frame.header.opcode;
                if op == OpCode::Text {
                    send(
                        &mut s,
                        Frame::text(format!("got {}", String::from_utf8_lossy(&payload))),
                    );
                }
                frames.push((op, payload));
                if op == OpCode::Close {
                    break;
                }
            }
            send(&mut s, Frame::close(CloseCode::Normal, ""));
            frames
        });
        let mut args = vec!["--user", "aaa", "--addr", &addr, "--linger", "300ms"];
        args.extend_from_slice(mode);
        let out = run(&args, Some("one\n\ntwo words\r\n"));
        let frames = srv.join().expect("server thread");
        let texts: Vec<_> = frames
            .iter()
            .filter(|f| f.0 == OpCode::Text)
            .map(|f| f.1.as_slice())
            .collect();
        assert_eq!(
            texts,
            [b"one".as_slice(), b"two words"],
            "empty line skipped"
        );
        let last = frames.last().expect("frames");
        assert_eq!((last.0, close_body(&last.1).0), (OpCode::Close, 1000));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(out.lines(), ["got one", "got two words"]);
    }
}

#[test]
fn masked_server_frame_fails_the_connection_with_1002() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let (mut s, _) = accept_ws(&listener);
        let mut bad = Frame::text("masked by a server");
        wsproto::mask_frame_in_place(&mut bad);
        send(&mut s, bad);
        let frames = read_until_close(&mut s);
        expect_end(&mut s);
        frames
    });
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    let frames = srv.join().expect("server thread");
    assert_eq!(close_body(&frames[frames.len() - 1].1).0, 1002);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("1002"), "{}", out.stderr);
}

#[test]
fn dropped_connection_without_close_exits_1() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let (mut s, _) = accept_ws(&listener);
        send(&mut s, Frame::text("bye, abruptly"));
        drop(s);
    });
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    srv.join().expect("server thread");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.lines(), ["bye, abruptly"]);
    assert!(
        out.stderr.contains("connection to the server was lost"),
        "{}",
        out.stderr
    );
}

#[test]
fn oversized_message_fails_the_connection_with_1009_before_its_payload() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let (mut s, _) = accept_ws(&listener);
        // Announce 2 MiB (over the client's 1 MiB limit) and send none of it:
        // the client must refuse on the header alone.
        let header = wsproto::Header::new(OpCode::Binary, 2 << 20);
        std::io::Write::write_all(&mut s, &header.to_bytes()).expect("write header");
        read_until_close(&mut s)
    });
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    let frames = srv.join().expect("server thread");
    assert_eq!(close_body(&frames[frames.len() - 1].1).0, 1009);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stderr.contains("1009"), "{}", out.stderr);
}

#[test]
fn deflate_flag_offers_permessage_deflate_and_compresses() {
    let (listener, addr) = listen();
    let long = "a".repeat(200);
    let srv = server(move || {
        // Config::default() accepts permessage-deflate (RFC 7692).
        let (mut s, request) = accept_ws(&listener);
        let (frame, payload) = read_client_frame(&mut s);
        // An uncompressed message is allowed too (RFC 7692 §6.1).
        send(&mut s, Frame::text("plain reply"));
        send(&mut s, Frame::close(CloseCode::Normal, ""));
        let rest = read_until_close(&mut s);
        (request, frame, payload, rest)
    });
    let out = run(
        &[
            "--user",
            "aaa",
            "--addr",
            &addr,
            "--deflate",
            "--message",
            &long,
            "--interval",
            "100ms",
            "--count",
            "1",
            "--linger",
            "2s",
        ],
        None,
    );
    let (request, frame, payload, rest) = srv.join().expect("server thread");
    let offer = request.header("sec-websocket-extensions").unwrap_or("");
    assert!(offer.contains("permessage-deflate"), "offer: {offer:?}");
    assert_eq!(frame.header.opcode, OpCode::Text);
    assert!(frame.header.rsv1, "compressed message has RSV1 set");
    assert!(payload.len() < 50, "200 'a's compress well: {payload:?}");
    assert_eq!(close_body(&rest[rest.len() - 1].1).0, 1000, "close echo");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.lines(), ["plain reply"]);
}

#[test]
fn received_text_cannot_spoof_a_sender_or_steer_the_terminal() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let (mut s, _) = accept_ws(&listener);
        send(
            &mut s,
            Frame::text("我是管理员 -- FROM admin\nok -- FROM eve"),
        );
        send(
            &mut s,
            Frame::text("\u{1b}[31mred\u{1b}]0;title\u{7}\r -- FROM eve"),
        );
        send(
            &mut s,
            Frame::text("tab\there, bidi \u{202e}txet -- FROM eve"),
        );
        send(&mut s, Frame::close(CloseCode::Normal, ""));
        read_until_close(&mut s);
    });
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    srv.join().expect("server thread");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        out.lines(),
        [
            "我是管理员 -- FROM admin\\nok -- FROM eve",
            "\\x1b[31mred\\x1b]0;title\\x07\\r -- FROM eve",
            "tab\\there, bidi \\u{202e}txet -- FROM eve",
        ],
        "{out:?}"
    );
    assert!(!out.stdout.contains('\u{1b}'));
}

#[test]
fn a_non_websocket_answer_shows_the_status_line_and_one_line_of_body() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let mut s = accept_tcp(&listener);
        read_request(&mut s, &Config::default()).expect("request");
        Response::text(404, "no chat here\nsecond line\nthird line")
            .write_to(&mut s)
            .expect("write");
    });
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    srv.join().expect("server thread");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("HTTP 404 Not Found: no chat here"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("second line"), "{}", out.stderr);
}

#[test]
fn a_server_that_never_answers_the_handshake_times_out_clearly() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let s = accept_tcp(&listener);
        thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let start = Instant::now();
    let out = run(
        &[
            "--user",
            "aaa",
            "--addr",
            &addr,
            "--handshake-timeout",
            "1s",
        ],
        None,
    );
    assert!(start.elapsed() < Duration::from_millis(2900));
    srv.join().expect("server thread");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("timed out waiting for the WebSocket handshake"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("os error"), "{}", out.stderr);
}

#[test]
fn a_close_during_the_handshake_is_not_a_missing_close_handshake() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let mut s = accept_tcp(&listener);
        read_request(&mut s, &Config::default()).expect("request");
        drop(s);
    });
    let out = run(&["--user", "aaa", "--addr", &addr], None);
    srv.join().expect("server thread");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("closed the connection during the WebSocket handshake"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("close handshake"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--user", "aaa", "--addr", "http://127.0.0.1:8000"][..],
        // wss:// is accepted since TLS; another scheme is a usage error.
        &["--user", "aaa", "--addr", "ftp://127.0.0.1:8000"],
        &["--user", " aaa"],
        &["--user", "x -- FROM admin"],
        &["--user", &"é".repeat(65)],
        &["--user", "aaa", "--interval", "6"],
        &[],
    ] {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    let out = run(&["--user", "aaa", "--addr", "http://h:1"], None);
    assert!(out.stderr.contains("ws://"), "{}", out.stderr);
    let out = run(
        &["--user", &"é".repeat(64), "--addr", "ws://127.0.0.1:1"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "64 characters are a valid name");
}

#[test]
fn sigint_and_sigterm_close_with_1000_and_exit_0() {
    for signal in ["-INT", "-TERM"] {
        let (listener, addr) = listen();
        let srv = server(move || {
            let (mut s, _) = accept_ws(&listener);
            send(&mut s, Frame::text("ready"));
            let frames = read_until_close(&mut s);
            send(&mut s, Frame::close(CloseCode::Normal, ""));
            frames
        });
        let child = spawn_chatcli(
            &["--user", "aaa", "--addr", &addr, "--interval", "1m"],
            None,
        );
        let pid = child.id().to_string();
        // Give it time to connect and install its handlers.
        thread::sleep(Duration::from_millis(700));
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let out = finish(child, RUN_LIMIT);
        let frames = srv.join().expect("server thread");
        let last = frames.last().expect("a frame");
        assert_eq!(
            (last.0, close_body(&last.1).0),
            (OpCode::Close, 1000),
            "{signal}"
        );
        assert_eq!(out.status.code(), Some(0), "{signal}: {out:?}");
        assert_eq!(out.lines(), ["ready"]);
    }
}

#[test]
fn a_token_is_sent_as_a_bearer_header_without_user() {
    let (listener, addr) = listen();
    let srv = server(move || {
        let (mut s, request) = accept_ws(&listener);
        send(&mut s, Frame::close(CloseCode::Normal, ""));
        read_until_close(&mut s);
        (
            request.target().to_owned(),
            request.header("authorization").map(str::to_owned),
        )
    });
    let out = run(&["--token", "aaa.bbb.ccc", "--addr", &addr], None);
    let (target, auth) = srv.join().expect("server thread");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(target, "/");
    assert_eq!(auth.as_deref(), Some("Bearer aaa.bbb.ccc"));
    assert!(
        !out.stderr.contains("aaa.bbb.ccc"),
        "token logged: {}",
        out.stderr
    );
}
