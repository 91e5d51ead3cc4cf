//! `WebSocket<TcpStream>::split`: a reader and a writer on two threads with
//! no lock, over real sockets on 127.0.0.1. Heavy traffic both ways at once
//! stays intact and in order; the reader hands pings and closes to the
//! caller without answering them itself; the close state is shared.

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
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
        let (mut ws, _) = wsproto::connect(&format!("ws://127.0.0.1:{port}/split")).unwrap();
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
    if i % 3 == 0 {
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

    // Server writer: its messages, then a Close.
    let s_write = thread::spawn(move || {
        write_all(&mut s_writer, 's');
        s_writer.close(CloseCode::Normal, "done").unwrap();
        s_writer
    });
    // Server reader: the client's messages, then the client's close reply.
    let s_read = thread::spawn(move || {
        read_all(&mut s_reader, 'c');
        let close = s_reader.read().unwrap();
        // The reply can only come after our writer's Close, which set the
        // shared flag: this Close needs no echo.
        assert!(s_reader.close_sent());
        assert!(matches!(s_reader.read(), Err(Error::ConnectionClosed)));
        close
    });
    // Client writer: its messages, then echo whatever Close the reader saw.
    let (to_writer, from_reader) = mpsc::channel::<Message>();
    let c_write = thread::spawn(move || {
        write_all(&mut c_writer, 'c');
        let echo = from_reader.recv_timeout(TIMEOUT).unwrap();
        c_writer.send(echo).unwrap();
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
    // The client did not send a Close of its own yet: the reader must not
    // have answered for it.
    assert!(!c_reader.close_sent());
    to_writer.send(close).unwrap();
    assert!(matches!(c_reader.read(), Err(Error::ConnectionClosed)));

    let c_writer = c_write.join().unwrap();
    assert!(c_writer.close_received());
    assert!(c_reader.close_sent());
    let s_writer = s_write.join().unwrap();
    let reply = s_read.join().unwrap();
    assert_eq!(
        reply,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into()
        }))
    );
    assert!(s_writer.close_received());
}

#[test]
fn the_reader_returns_a_ping_without_answering_it() {
    let (server, mut client) = pair();
    let (mut reader, mut writer) = server.split().unwrap();
    client.send(Message::Ping(b"hi".to_vec())).unwrap();
    assert_eq!(reader.read().unwrap(), Message::Ping(b"hi".to_vec()));
    // Had the reader answered, its pong would be on the wire before this.
    writer.send(Message::text("marker")).unwrap();
    assert_eq!(client.read().unwrap(), Message::text("marker"));
    // The pong goes out when the writer sends it.
    writer.send(Message::Pong(b"hi".to_vec())).unwrap();
    assert_eq!(client.read().unwrap(), Message::Pong(b"hi".to_vec()));

    // A Close from the peer is surfaced, not echoed, until the writer does.
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
    assert!(!reader.close_sent());
    writer.send(close).unwrap();
    assert!(reader.close_sent());
    assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    drop((reader, writer));
    assert_eq!(
        client.read().unwrap(),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Other(4000),
            reason: "bye".into()
        }))
    );
    assert!(matches!(client.read(), Err(Error::ConnectionClosed)));
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
fn the_reader_reports_a_protocol_error_and_leaves_the_close_to_the_writer() {
    let (server, mut client) = pair();
    let (mut reader, mut writer) = server.split().unwrap();
    // An unmasked client frame, written raw past the client's own writer.
    let frame = wsproto::Frame::new(OpCode::Text, b"bad".to_vec());
    wsproto::write_frame(client.get_mut(), &frame).unwrap();
    let e = reader.read().unwrap_err();
    assert!(matches!(e, Error::UnmaskedClientFrame), "{e:?}");
    assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    // The reader sent nothing: the writer can still send the one Close.
    assert!(!reader.close_sent());
    let code = e.close_code().unwrap();
    writer.close(code, "unmasked").unwrap();
    drop((reader, writer));
    assert_eq!(
        client.read().unwrap(),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Protocol,
            reason: "unmasked".into()
        }))
    );
    // Then the server's TCP close, with no second Close frame before it.
    assert!(matches!(client.read(), Err(Error::ConnectionClosed)));
}
