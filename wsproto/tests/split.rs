//! `WebSocket<TcpStream>::split`: a reader and a writer on two threads,
//! over real sockets on 127.0.0.1. Heavy traffic both ways at once stays
//! intact and in order; the reader answers pings, echoes closes and fails
//! the connection itself, through the writing half, never waiting behind a
//! writer blocked on a full socket; the close state is shared.

use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use wsproto::{CloseCode, CloseFrame, Error, Message, OpCode, WebSocket};

const TIMEOUT: Duration = Duration::from_secs(20);
const COUNT: usize = 10_000;

fn set_timeouts(s: &TcpStream) {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
}

/// A connected (server, client) pair, both with time-outs.
fn pair() -> (WebSocket<TcpStream>, WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = thread::spawn(move || {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let request = wsproto::ClientRequest::new(&format!("ws://127.0.0.1:{port}/split")).unwrap();
        let (mut ws, _) =
            wsproto::client_handshake(stream, &request, &wsproto::Config::default()).unwrap();
        set_timeouts(ws.get_mut());
        ws
    });
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    set_timeouts(&stream);
    let server = wsproto::accept(stream).unwrap();
    (server, client.join().unwrap())
}

/// The `i`-th message from side `tag`: text and binary of varying sizes
/// (0 to ~800 bytes), each carrying its index so order is checked too.
fn message(tag: char, i: usize) -> Message {
    let pad = (i * 37) % 800;
    if i.is_multiple_of(3) {
        Message::text(format!("{tag}{i}:{}", "é".repeat(pad / 2)))
    } else {
        let mut b = (i as u64).to_be_bytes().to_vec();
        b.push(tag as u8);
        b.extend((0..pad).map(|k| (k + i) as u8));
        Message::binary(b)
    }
}

/// Write `COUNT` messages, flushing every few so frames also coalesce.
fn write_all(writer: &mut wsproto::WsWriter, tag: char) {
    for i in 0..COUNT {
        writer.write(message(tag, i)).unwrap();
        if i % 7 == 0 {
            writer.flush().unwrap();
        }
    }
    writer.flush().unwrap();
}

/// Read `COUNT` messages and check each against what `tag` sent.
fn read_all(reader: &mut wsproto::WsReader, tag: char) {
    for i in 0..COUNT {
        let got = reader
            .read()
            .unwrap_or_else(|e| panic!("{tag} message {i}: {e:?}"));
        assert!(got == message(tag, i), "{tag} message {i} differs");
    }
}

#[test]
fn ten_thousand_messages_each_way_at_once_arrive_intact_and_in_order() {
    let (server, client) = pair();
    let (mut s_reader, mut s_writer) = server.split().unwrap();
    let (mut c_reader, mut c_writer) = client.split().unwrap();

    // Server writer: its messages, then a Close once the server has read
    // all of the client's (after the echo the client may send no more).
    let (all_read, wait_all_read) = std::sync::mpsc::channel::<()>();
    let s_write = thread::spawn(move || {
        write_all(&mut s_writer, 's');
        wait_all_read.recv_timeout(TIMEOUT).unwrap();
        s_writer.close(CloseCode::Normal, "done").unwrap();
        s_writer
    });
    // Server reader: the client's messages, then the client's close reply.
    let s_read = thread::spawn(move || {
        read_all(&mut s_reader, 'c');
        all_read.send(()).unwrap();
        let close = s_reader.read().unwrap();
        // The reply can only come after our writer's Close, which set the
        // shared flag: this Close needs no echo.
        assert!(s_reader.close_sent());
        assert!(matches!(s_reader.read(), Err(Error::ConnectionClosed)));
        close
    });
    // Client writer: its messages only; the reader echoes the Close.
    let c_write = thread::spawn(move || {
        write_all(&mut c_writer, 'c');
        c_writer
    });
    read_all(&mut c_reader, 's');
    let close = c_reader.read().unwrap();
    assert_eq!(
        close,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into()
        }))
    );
    // The reader echoed it (RFC 6455 §5.5.1) through the writing half.
    assert!(c_reader.close_sent());

    let c_writer = c_write.join().unwrap();
    assert!(c_writer.close_received());
    let s_writer = s_write.join().unwrap();
    let reply = s_read.join().unwrap();
    // The echo carries the code only.
    assert_eq!(
        reply,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: String::new()
        }))
    );
    assert!(s_writer.close_received());
    // The server closes the TCP connection; the client's wait ends.
    drop(s_writer);
    assert!(matches!(c_reader.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn the_reader_answers_pings_and_echoes_a_close_itself() {
    let (server, mut client) = pair();
    let (mut reader, mut writer) = server.split().unwrap();
    client.send(Message::Ping(b"hi".to_vec())).unwrap();
    assert_eq!(reader.read().unwrap(), Message::Ping(b"hi".to_vec()));
    // No write was in progress: the reader wrote the pong itself.
    assert_eq!(client.read().unwrap(), Message::Pong(b"hi".to_vec()));
    writer.send(Message::text("marker")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("marker"));

    // A Close from the peer is returned and echoed with its code.
    client.close(CloseCode::Other(4000), "bye").unwrap();
    let close = reader.read().unwrap();
    assert_eq!(
        close,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Other(4000),
            reason: "bye".into()
        }))
    );
    assert!(writer.close_received());
    assert!(reader.close_sent());
    assert!(matches!(
        writer.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    drop((reader, writer));
    assert_eq!(
        client.read().unwrap(),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Other(4000),
            reason: String::new()
        }))
    );
    assert!(matches!(client.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn a_writer_blocked_on_a_full_socket_never_stops_the_reader_and_the_latest_ping_is_answered() {
    let (server, mut client) = pair();
    let (mut reader, mut writer) = server.split().unwrap();
    // The client does not read: the server's 16 MiB message fills both
    // socket buffers and its writer blocks inside `send`.
    let big = vec![0x5au8; 16 << 20];
    let expected = big.clone();
    let send = thread::spawn(move || {
        writer.send(Message::Binary(big)).unwrap();
        writer
    });
    thread::sleep(Duration::from_millis(300));
    assert!(!send.is_finished(), "the send should be blocked");
    // The reader still reads; each ping is owed, the newest replacing the
    // older ones (RFC 6455 §5.5.3).
    for i in 0..50u8 {
        client.send(Message::Ping(vec![i])).unwrap();
        assert_eq!(reader.read().unwrap(), Message::Ping(vec![i]));
    }
    client.send(Message::text("still reading")).unwrap();
    assert_eq!(reader.read().unwrap(), Message::text("still reading"));
    // Now the client reads: the whole message, then the latest ping's pong.
    assert_eq!(client.read().unwrap(), Message::Binary(expected));
    let mut writer = send.join().unwrap();
    let pong = client.read().unwrap();
    assert_eq!(pong, Message::Pong(vec![49]));
    writer.send(Message::text("after")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("after"));
}

#[test]
fn the_close_state_is_shared_between_the_halves() {
    let (server, mut client) = pair();
    let (mut reader, mut writer) = server.split().unwrap();
    assert!(!reader.close_sent());
    writer.close(CloseCode::Away, "shutting down").unwrap();
    assert!(reader.close_sent());
    // A second close is a no-op; anything else is refused.
    writer.close(CloseCode::Normal, "again").unwrap();
    assert!(matches!(
        writer.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
    // The peer sees exactly our Close and echoes it.
    assert_eq!(
        client.read().unwrap(),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "shutting down".into()
        }))
    );
    assert!(!writer.close_received());
    assert_eq!(
        reader.read().unwrap(),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: String::new()
        }))
    );
    assert!(writer.close_received());
    assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    drop((reader, writer));
    assert!(matches!(client.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn the_reader_fails_the_connection_itself_on_a_protocol_error() {
    let (server, mut client) = pair();
    let (mut reader, mut writer) = server.split().unwrap();
    // An unmasked client frame, written raw past the client's own writer.
    let frame = wsproto::Frame::new(OpCode::Text, b"bad".to_vec());
    wsproto::write_frame(client.get_mut(), &frame).unwrap();
    let e = reader.read().unwrap_err();
    assert!(matches!(e, Error::UnmaskedClientFrame), "{e:?}");
    assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    // The reader sent the Close with the error's code (RFC 6455 §7.1.7).
    assert!(reader.close_sent());
    writer.close(CloseCode::Normal, "ignored").unwrap();
    assert!(matches!(
        writer.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
    drop((reader, writer));
    assert_eq!(
        client.read().unwrap(),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Protocol,
            reason: e.to_string()
        }))
    );
    // Then the server's TCP close, with no second Close frame before it.
    assert!(matches!(client.read(), Err(Error::ConnectionClosed)));
}

#[cfg(unix)]
#[test]
fn a_split_tcp_stream_keeps_one_descriptor_and_closes_when_both_halves_go() {
    use std::os::fd::AsRawFd;
    let (server, mut client) = pair();
    let fd = server.get_ref().as_raw_fd();
    let (reader, writer) = server.split().unwrap();
    // Both halves use the socket's own descriptor: no duplicate.
    assert_eq!(reader.get_ref().get_ref().as_raw_fd(), fd);
    assert_eq!(writer.with_stream(|s| s.get_ref().as_raw_fd()), fd);
    drop(reader);
    // The writer still holds the socket: the client sees no end yet.
    client
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    match client.read() {
        Err(Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected a time-out while the writer lives, got {other:?}"),
    }
    drop(writer);
    client.get_mut().set_read_timeout(Some(TIMEOUT)).unwrap();
    assert!(matches!(client.read(), Err(Error::UnexpectedEof)));
}

#[test]
fn a_prepared_message_reaches_every_split_writer_in_order() {
    let pairs: Vec<_> = (0..4).map(|_| pair()).collect();
    let mut writers = Vec::new();
    let mut clients = Vec::new();
    for (server, client) in pairs {
        let (_reader, writer) = server.split().unwrap();
        writers.push((writer, _reader));
        clients.push(client);
    }
    let lines: Vec<_> = (0..200)
        .map(|i| wsproto::PreparedMessage::text(&format!("line {i} -- FROM ann")))
        .collect();
    for line in &lines {
        for (writer, _) in &mut writers {
            writer.send_prepared(line).unwrap();
        }
    }
    writers[0]
        .0
        .write_prepared(&wsproto::PreparedMessage::binary(&[1, 2, 3]))
        .unwrap();
    writers[0].0.flush().unwrap();
    for (c, client) in clients.iter_mut().enumerate() {
        for i in 0..200 {
            assert_eq!(
                client.read().unwrap(),
                Message::text(format!("line {i} -- FROM ann")),
                "client {c}"
            );
        }
    }
    assert_eq!(clients[0].read().unwrap(), Message::binary(vec![1, 2, 3]));
}
