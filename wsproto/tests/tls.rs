//! `wss://` over rustls (feature `tls`), both roles over real sockets on
//! 127.0.0.1, with certificates made here by `rcgen`: messages, fragments,
//! deflate, the close handshake, certificate errors, client certificates
//! (mutual TLS, TLS 1.3 and 1.2), config files, the
//! handshake deadline (slowloris, garbage), `split` with a blocked writer
//! (and a blocked reader), and the resumable-I/O contract under
//! `WouldBlock` and time-outs.
#![cfg(feature = "tls")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::pki::{pki, pki_with, Pki};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use wsproto::tls::{self, rustls, TlsStream};
use wsproto::{
    Accept, CertificateProblem, ClientRequest, CloseCode, Config, Error, Frame, MaybeTlsStream,
    Message, OpCode, WebSocket,
};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A listener whose connections are served by `serve` on their own thread
/// (TLS wrapped, not yet handshaken). Returns the port.
fn server<F>(config: Arc<rustls::ServerConfig>, serve: F) -> u16
where
    F: Fn(TlsStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            sock.set_read_timeout(Some(TIMEOUT)).unwrap();
            sock.set_write_timeout(Some(TIMEOUT)).unwrap();
            let tls = TlsStream::accept(sock, config.clone()).unwrap();
            let serve = serve.clone();
            thread::spawn(move || serve(tls));
        }
    });
    port
}

/// An echo server over wss (deflate accepted, as by default).
fn echo(tls: TlsStream) {
    let deadline = Instant::now() + TIMEOUT;
    let Ok(mut ws) =
        wsproto::accept_with_deadline(tls, &Config::default(), deadline, |_| Ok(Accept::default()))
    else {
        return;
    };
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn client(
    port: u16,
    pki: &Pki,
    config: &Config,
) -> wsproto::Result<(WebSocket<MaybeTlsStream>, wsproto::Response)> {
    let request = ClientRequest::new(&format!("wss://localhost:{port}/echo"))?
        .with_connect_timeout(TIMEOUT)
        .with_handshake_timeout(TIMEOUT);
    wsproto::connect_tls_with(&request, config, pki.client_config())
}

#[test]
fn echo_messages_fragments_and_close() {
    let pki = pki();
    let port = server(pki.server_config(), echo);
    let (mut ws, response) = client(port, &pki, &Config::default()).unwrap();
    assert_eq!(response.status, 101);
    assert!(matches!(ws.get_ref(), MaybeTlsStream::Tls(_)));
    let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let messages = [
        Message::text("hello over wss"),
        Message::text("Zoë 张三 🎉".repeat(1000)),
        Message::binary(vec![]),
        Message::binary(big),
    ];
    for m in &messages {
        ws.send(m.clone()).unwrap();
        assert!(&ws.read().unwrap() == m);
    }
    // A fragmented text message, written frame by frame (masked, as a
    // client must) straight onto the TLS stream.
    ws.flush().unwrap();
    for (i, part) in ["frag", "men", "ted"].iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        let mut frame = Frame::new(opcode, part.as_bytes().to_vec());
        frame.header.fin = i == 2;
        wsproto::mask_frame_in_place(&mut frame);
        wsproto::write_frame(ws.get_mut(), &frame).unwrap();
    }
    ws.get_mut().flush().unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("fragmented"));
    // Ping: the server answers.
    ws.send(Message::ping(b"p".to_vec())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::pong(b"p".to_vec()));
    // Close handshake.
    ws.close(CloseCode::Normal, "bye").unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the Close echo, got {other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
}

#[test]
fn deflate_is_negotiated_over_tls() {
    let pki = pki();
    let port = server(pki.server_config(), echo);
    let (mut ws, response) = client(port, &pki, &Config::default()).unwrap();
    let ext = response.header("sec-websocket-extensions").unwrap_or("");
    assert!(ext.contains("permessage-deflate"), "{ext:?}");
    assert!(ws.deflate_params().is_some());
    let json = r#"{"user":"ann","text":"hello hello hello hello"}"#.repeat(100);
    for _ in 0..20 {
        ws.send(Message::text(json.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(json.clone()));
    }
    ws.close(CloseCode::Normal, "").unwrap();
    while ws.read().is_ok() {}
}

#[test]
fn server_closes_and_client_sees_it() {
    let pki = pki();
    let port = server(pki.server_config(), |tls| {
        let mut ws = wsproto::accept(tls).unwrap();
        ws.send(Message::text("going")).unwrap();
        ws.close(CloseCode::Away, "shutdown").unwrap();
        while ws.read().is_ok() {}
    });
    let (mut ws, _) = client(port, &pki, &Config::default()).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("going"));
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(
                (frame.code, frame.reason.as_str()),
                (CloseCode::Away, "shutdown")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
}

fn certificate_error(e: Error) -> CertificateProblem {
    match e {
        Error::Certificate(problem) => problem,
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn certificate_errors_say_what_failed() {
    // Not trusted: the default config (WebPKI roots) does not know our CA.
    let pki = pki();
    let port = server(pki.server_config(), echo);
    let request = ClientRequest::new(&format!("wss://localhost:{port}/"))
        .unwrap()
        .with_handshake_timeout(TIMEOUT);
    let e = wsproto::connect_with(&request, &Config::default()).unwrap_err();
    assert!(e.to_string().contains("unknown authority"), "{e}");
    assert_eq!(certificate_error(e), CertificateProblem::UnknownIssuer);
    // Right CA, wrong name.
    let other_name = pki_with(&["example.test"], false);
    let port = server(other_name.server_config(), echo);
    let e = client(port, &other_name, &Config::default()).unwrap_err();
    assert!(
        e.to_string().contains("not valid for this host name"),
        "{e}"
    );
    assert!(matches!(
        certificate_error(e),
        CertificateProblem::NameMismatch { .. }
    ));
    // Expired.
    let expired = pki_with(&["localhost"], true);
    let port = server(expired.server_config(), echo);
    let e = client(port, &expired, &Config::default()).unwrap_err();
    assert_eq!(certificate_error(e), CertificateProblem::Expired);
}

#[test]
fn ip_address_urls_are_checked_against_ip_names() {
    let pki = pki();
    let port = server(pki.server_config(), echo);
    let request = ClientRequest::new(&format!("wss://127.0.0.1:{port}/")).unwrap();
    let (mut ws, _) =
        wsproto::connect_tls_with(&request, &Config::default(), pki.client_config()).unwrap();
    ws.send(Message::text("ip")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("ip"));
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsproto-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn pem_files_problems_name_the_file() {
    let dir = temp_dir("pem");
    let pki = pki();
    let other = pki_with(&["localhost"], false);
    let chain = dir.join("chain.pem");
    let key = dir.join("key.pem");
    let other_key = dir.join("other-key.pem");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&chain, &pki.chain_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    std::fs::write(&other_key, &other.key_pem).unwrap();
    std::fs::write(&garbage, "not a pem file\n").unwrap();
    assert!(tls::server_config_from_pem_files(&chain, &key).is_ok());
    let missing = dir.join("missing.pem");
    let cases = [
        (&missing, &key, &missing, "cannot read"),
        (&chain, &missing, &missing, "cannot read"),
        (&garbage, &key, &garbage, "no certificate"),
        (&chain, &garbage, &garbage, "no private key"),
        (&key, &key, &key, "no certificate"),
        (&chain, &chain, &chain, "no private key"),
        (&chain, &other_key, &other_key, "does not belong"),
    ];
    for (c, k, blamed, what) in cases {
        let e = tls::server_config_from_pem_files(c, k).unwrap_err();
        assert_eq!(&e.path, blamed, "{e}");
        assert!(e.to_string().contains(what), "{e}");
        assert!(e.to_string().contains(&*blamed.to_string_lossy()), "{e}");
    }
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    assert!(tls::client_config_with_ca_file(&ca).is_ok());
    let e = tls::client_config_with_ca_file(&garbage).unwrap_err();
    assert!(e.to_string().contains("no certificate"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Accept one connection, run the server handshake with a deadline and
/// report how it ended and how long it took.
fn deadline_server(pki: &Pki, deadline: Duration) -> (u16, mpsc::Receiver<(Error, Duration)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = pki.server_config();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        let start = Instant::now();
        let tls = TlsStream::accept(sock, config).unwrap();
        let e = wsproto::accept_with_deadline(tls, &Config::default(), start + deadline, |_| {
            Ok(Accept::default())
        })
        .unwrap_err();
        tx.send((e, start.elapsed())).unwrap();
    });
    (port, rx)
}

#[test]
fn half_a_client_hello_is_cut_at_the_handshake_deadline() {
    let pki = pki();
    let (port, rx) = deadline_server(&pki, Duration::from_millis(500));
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A TLS record header announcing a 512-byte handshake message, and
    // only part of it.
    sock.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    let (e, took) = rx.recv_timeout(TIMEOUT).unwrap();
    assert!(matches!(e, Error::HandshakeTimedOut), "{e:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn plain_http_or_garbage_to_the_tls_port_fails_at_once() {
    let pki = pki();
    for input in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0u8; 64][..],
        // A ClientHello record holding an empty ClientHello.
        &b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"[..],
    ] {
        let (port, rx) = deadline_server(&pki, TIMEOUT);
        let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.write_all(input).unwrap();
        let (e, took) = rx.recv_timeout(TIMEOUT).unwrap();
        assert!(matches!(e, Error::Tls(_)), "{e:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}

/// A connected pair over TLS: (server, client), both with time-outs.
fn pair(pki: &Pki) -> (WebSocket<TlsStream>, WebSocket<MaybeTlsStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = pki.server_config();
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(TIMEOUT)).unwrap();
        wsproto::accept(TlsStream::accept(sock, config).unwrap()).unwrap()
    });
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let (ws, _) = client(port, pki, &config).unwrap();
    ws.get_ref().set_read_timeout(Some(TIMEOUT)).unwrap();
    ws.get_ref().set_write_timeout(Some(TIMEOUT)).unwrap();
    (server.join().unwrap(), ws)
}

/// The server's writer blocks in `write` (the client reads nothing), and
/// meanwhile the server's reader goes on receiving, decrypting and
/// answering: no lock is held across the blocked socket write.
#[test]
fn split_reader_runs_while_the_writer_is_blocked() {
    let pki = pki();
    let (server, mut client) = pair(&pki);
    let (mut reader, mut writer) = server.split().unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer_thread = {
        let (written, done) = (written.clone(), done.clone());
        thread::spawn(move || {
            let chunk = vec![0x5a; 64 * 1024];
            // Until the client's and the kernel's buffers are full and a
            // write blocks; stop after 64 MiB in any case.
            for _ in 0..1024 {
                if writer.send(Message::binary(chunk.clone())).is_err() {
                    break;
                }
                written.fetch_add(1, Ordering::SeqCst);
                if done.load(Ordering::SeqCst) {
                    break;
                }
            }
            writer.send(Message::text("end")).unwrap();
            writer
        })
    };
    // Wait until the writer is stuck (no progress for a while).
    let mut last = usize::MAX;
    loop {
        thread::sleep(Duration::from_millis(200));
        let now = written.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(!writer_thread.is_finished(), "the writer should be blocked");
    // The client talks; the server's reader gets every message, in order,
    // while its writer stays blocked.
    for i in 0..200 {
        client.send(Message::text(format!("message {i}"))).unwrap();
    }
    for i in 0..200 {
        assert_eq!(
            reader.read().unwrap(),
            Message::text(format!("message {i}"))
        );
    }
    // (The kernel may have grown the client's receive window meanwhile,
    // letting a few more messages through; the writer cannot have
    // finished its 64 MiB.)
    assert!(
        !writer_thread.is_finished(),
        "the writer should still be blocked"
    );

    // Now the client reads: the writer gets going again, and everything it
    // wrote arrives whole and in order.
    done.store(true, Ordering::SeqCst);
    let mut got = 0;
    loop {
        match client.read().unwrap() {
            Message::Binary(b) => {
                assert!(b.len() == 64 * 1024 && b.iter().all(|&x| x == 0x5a));
                got += 1;
            }
            Message::Text(t) if t == "end" => break,
            other => panic!("{other:?}"),
        }
    }
    let mut writer = writer_thread.join().unwrap();
    assert_eq!(got, written.load(Ordering::SeqCst));
    writer.close(CloseCode::Normal, "").unwrap();
}

/// The reverse: the client's reader blocks in `read` (the server sends
/// nothing), and its writer still sends.
#[test]
fn split_writer_runs_while_the_reader_is_blocked() {
    let pki = pki();
    let (mut server, client) = pair(&pki);
    let (mut reader, mut writer) = client.split().unwrap();
    let reader_thread = thread::spawn(move || {
        let first = reader.read();
        (first, reader)
    });
    thread::sleep(Duration::from_millis(200));
    assert!(!reader_thread.is_finished());
    for i in 0..500 {
        writer
            .send(Message::binary(vec![i as u8; 1000 + i]))
            .unwrap();
    }
    for i in 0..500 {
        assert_eq!(
            server.read().unwrap(),
            Message::binary(vec![i as u8; 1000 + i])
        );
    }
    assert!(!reader_thread.is_finished());
    // A ping from the server: the blocked reader wakes, answers it through
    // the writing half and returns it.
    server.send(Message::ping(b"hi".to_vec())).unwrap();
    let (first, _reader) = reader_thread.join().unwrap();
    assert_eq!(first.unwrap(), Message::ping(b"hi".to_vec()));
    assert_eq!(server.read().unwrap(), Message::pong(b"hi".to_vec()));
}

/// Both directions at full speed on two threads each side.
#[test]
fn split_heavy_traffic_both_ways() {
    let pki = pki();
    let (server, client) = pair(&pki);
    let (mut sr, mut sw) = server.split().unwrap();
    let (mut cr, mut cw) = client.split().unwrap();
    const N: usize = 3000;
    let msg = |tag: u8, i: usize| {
        let mut b = (i as u64).to_be_bytes().to_vec();
        b.push(tag);
        b.extend((0..(i * 13) % 3000).map(|k| (k + i) as u8));
        Message::binary(b)
    };
    let t1 = thread::spawn(move || {
        for i in 0..N {
            sw.write(msg(b's', i)).unwrap();
            if i % 5 == 0 {
                sw.flush().unwrap();
            }
        }
        sw.flush().unwrap();
        sw
    });
    let t2 = thread::spawn(move || {
        for i in 0..N {
            cw.send(msg(b'c', i)).unwrap();
        }
        cw
    });
    let t3 = thread::spawn(move || {
        for i in 0..N {
            assert!(sr.read().unwrap() == msg(b'c', i), "server got {i} wrong");
        }
    });
    for i in 0..N {
        assert!(cr.read().unwrap() == msg(b's', i), "client got {i} wrong");
    }
    t3.join().unwrap();
    t1.join().unwrap();
    t2.join().unwrap();
}

/// The resumable contract over TLS on a non-blocking socket: `write`
/// queues, `flush` reports `WouldBlock` and resumes, `read` loses nothing;
/// every message arrives whole and in order.
#[test]
fn non_blocking_tls_stream_resumes_after_would_block() {
    let pki = pki();
    let (mut server, mut client) = pair(&pki);
    client.get_ref().get_ref().set_nonblocking(true).unwrap();
    let total = 300usize;
    let size = 32 * 1024;
    let reader = thread::spawn(move || {
        for i in 0..total {
            if i % 50 == 0 {
                thread::sleep(Duration::from_millis(20)); // let the client block
            }
            let m = server.read().unwrap();
            assert!(
                m == Message::binary(vec![(i % 251) as u8; size]),
                "message {i}"
            );
        }
        server
    });
    let mut would_block = 0;
    let deadline = Instant::now() + TIMEOUT;
    for i in 0..total {
        loop {
            match client.write(Message::binary(vec![(i % 251) as u8; size])) {
                Ok(()) => break,
                Err(Error::WriteBufferFull) => {}
                Err(e) => panic!("{e:?}"),
            }
            match client.flush() {
                Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => would_block += 1,
                other => other.unwrap(),
            }
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(1));
        }
    }
    loop {
        match client.flush() {
            Ok(()) => break,
            Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => would_block += 1,
            Err(e) => panic!("{e:?}"),
        }
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(1));
    }
    assert!(would_block > 0, "the socket never pushed back");
    let mut server = reader.join().unwrap();
    // Reading on the non-blocking client: WouldBlock, then the message.
    assert!(matches!(client.read(), Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock));
    server.send(Message::text("late")).unwrap();
    let got = loop {
        match client.read() {
            Ok(m) => break m,
            Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(got, Message::text("late"));
}

/// Read time-outs in the middle of TLS records: a message trickled in a
/// few bytes at a time through a relay, read with a short time-out; each
/// `TimedOut`/`WouldBlock` loses nothing.
#[test]
fn read_time_outs_mid_record_lose_nothing() {
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend = server(pki.server_config(), |tls| {
        let mut ws = wsproto::accept(tls).unwrap();
        for i in 0..20 {
            ws.send(Message::text(format!(
                "trickled message {i} {}",
                "x".repeat(i * 50)
            )))
            .unwrap();
        }
        while ws.read().is_ok() {}
    });
    // The relay: forwards the client's bytes at once and the server's
    // bytes 7 at a time with pauses.
    thread::spawn(move || {
        let (down, _) = listener.accept().unwrap();
        let up = TcpStream::connect(("127.0.0.1", backend)).unwrap();
        let (mut down_r, mut up_w) = (down.try_clone().unwrap(), up.try_clone().unwrap());
        thread::spawn(move || std::io::copy(&mut down_r, &mut up_w));
        let (mut up_r, mut down_w) = (up, down);
        down_w.set_nodelay(true).unwrap();
        let mut buf = [0u8; 7];
        for chunk in 0.. {
            let n = match up_r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if down_w.write_all(&buf[..n]).is_err() {
                return;
            }
            if chunk % 30 == 29 {
                thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let (mut ws, _) = client(port, &pki, &Config::default()).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(3)))
        .unwrap();
    let mut timeouts = 0;
    for i in 0..20 {
        let m = loop {
            match ws.read() {
                Ok(m) => break m,
                Err(Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    timeouts += 1
                }
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(
            m,
            Message::text(format!("trickled message {i} {}", "x".repeat(i * 50)))
        );
    }
    assert!(timeouts > 0);
}

// Client certificates (mutual TLS): a server that requires them, with a
// `WebPkiClientVerifier` over a client CA, and clients with and without.

/// A CA for client certificates and one client certificate it signed.
struct ClientPki {
    ca_pem: String,
    cert_der: Vec<u8>,
    chain_pem: String,
    key_pem: String,
}

fn client_pki(ca_name: &str) -> ClientPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    // The same subject whichever CA signs it: only the issuer differs.
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ann");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    ClientPki {
        ca_pem: ca.pem(),
        cert_der: cert.der().to_vec(),
        chain_pem: format!("{}{}", cert.pem(), ca.pem()),
        key_pem: key.serialize_pem(),
    }
}

fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn pem_key(pem: &str) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// The server's config: `pki`'s certificate, and a client certificate
/// issued by `client_ca_pem` required.
fn mtls_server_config(pki: &Pki, client_ca_pem: &str) -> Arc<rustls::ServerConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs(client_ca_pem) {
        roots.add(cert).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        tls::crypto_provider(),
    )
    .build()
    .unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(pem_certs(&pki.chain_pem), pem_key(&pki.key_pem))
            .unwrap(),
    )
}

/// A client config trusting `pki`'s CA, speaking only `version`, with the
/// client certificate `cert` if any.
fn mtls_client_config(
    pki: &Pki,
    version: &'static rustls::SupportedProtocolVersion,
    cert: Option<&ClientPki>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(&pki.ca_pem) {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match cert {
        Some(c) => builder
            .with_client_auth_cert(pem_certs(&c.chain_pem), pem_key(&c.key_pem))
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

const VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

/// What the mTLS server saw of one connection: the handshake's outcome
/// and the client's certificates.
type Seen = wsproto::Result<Vec<Vec<u8>>>;

/// A server requiring client certificates from `client_ca_pem`: for each
/// connection it reports the handshake's outcome (with the peer's
/// certificates), then echoes one message and sends one of its own.
fn mtls_server(pki: &Pki, client_ca_pem: &str) -> (u16, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let port = server(mtls_server_config(pki, client_ca_pem), move |tls| {
        let deadline = Instant::now() + TIMEOUT;
        let result = wsproto::accept_with_deadline(tls, &Config::default(), deadline, |_| {
            Ok(Accept::default())
        });
        let mut ws = match result {
            Ok(ws) => ws,
            Err(e) => {
                tx.lock().unwrap().send(Err(e)).unwrap();
                return;
            }
        };
        let certs = ws.get_ref().with_connection(|c| {
            c.peer_certificates()
                .map(|certs| certs.iter().map(|c| c.to_vec()).collect::<Vec<_>>())
                .unwrap_or_default()
        });
        tx.lock().unwrap().send(Ok(certs)).unwrap();
        let m = ws.read().unwrap();
        ws.send(m).unwrap();
        ws.send(Message::text("hello from the server")).unwrap();
        while ws.read().is_ok() {}
    });
    (port, rx)
}

fn mtls_connect(
    port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> wsproto::Result<(WebSocket<MaybeTlsStream>, wsproto::Response)> {
    let request = ClientRequest::new(&format!("wss://localhost:{port}/"))?
        .with_connect_timeout(TIMEOUT)
        .with_handshake_timeout(TIMEOUT);
    wsproto::connect_tls_with(&request, &Config::default(), tls)
}

#[test]
fn client_certificate_from_the_trusted_ca_is_accepted() {
    let pki = pki();
    let client_ca = client_pki("client CA");
    let (port, seen) = mtls_server(&pki, &client_ca.ca_pem);
    for version in VERSIONS {
        let tls = mtls_client_config(&pki, version, Some(&client_ca));
        let (mut ws, response) = mtls_connect(port, tls).unwrap();
        assert_eq!(response.status, 101);
        // The server saw the client's certificate chain, leaf first.
        let certs = seen.recv_timeout(TIMEOUT).unwrap().unwrap();
        assert_eq!(certs.len(), 2, "{version:?}");
        assert_eq!(certs[0], client_ca.cert_der);
        // Both ways.
        ws.send(Message::text("hello from ann")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("hello from ann"));
        assert_eq!(ws.read().unwrap(), Message::text("hello from the server"));
        let negotiated = match ws.get_ref() {
            MaybeTlsStream::Tls(t) => t.with_connection(|c| c.protocol_version()),
            _ => unreachable!(),
        };
        assert_eq!(negotiated, Some(version.version));
        ws.close(CloseCode::Normal, "").unwrap();
        while ws.read().is_ok() {}
    }
}

#[test]
fn client_without_a_certificate_is_refused_and_told_why() {
    let pki = pki();
    let client_ca = client_pki("client CA");
    let (port, seen) = mtls_server(&pki, &client_ca.ca_pem);
    for version in VERSIONS {
        let start = Instant::now();
        let e = mtls_connect(port, mtls_client_config(&pki, version, None)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "{version:?}");
        // The client: the server's alert, and what to do about it.
        match &e {
            Error::Tls(text) => {
                assert!(text.contains("CertificateRequired"), "{version:?}: {text}");
                assert!(
                    text.contains("with_client_auth_cert"),
                    "{version:?}: {text}"
                );
            }
            other => panic!("{version:?}: expected Error::Tls, got {other:?}"),
        }
        assert!(
            e.to_string().contains("requires a client certificate"),
            "{e}"
        );
        // The server: its handshake failed with a TLS error.
        match seen.recv_timeout(TIMEOUT).unwrap() {
            Err(Error::Tls(text)) => {
                assert!(text.contains("peer sent no certificates"), "{text}");
                assert!(text.contains("the client sent none"), "{text}");
            }
            other => panic!("{version:?}: expected Error::Tls on the server, got {other:?}"),
        }
    }
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    let pki = pki();
    let trusted = client_pki("client CA");
    let other = client_pki("some other CA");
    let (port, seen) = mtls_server(&pki, &trusted.ca_pem);
    for version in VERSIONS {
        let start = Instant::now();
        let e = mtls_connect(port, mtls_client_config(&pki, version, Some(&other))).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "{version:?}");
        match &e {
            Error::Tls(text) => {
                assert!(text.contains("UnknownCA"), "{version:?}: {text}");
                assert!(text.contains("refused this side's certificate"), "{text}");
            }
            other => panic!("{version:?}: expected Error::Tls, got {other:?}"),
        }
        // The server: the client's certificate, and what was wrong with it.
        match seen.recv_timeout(TIMEOUT).unwrap() {
            Err(Error::Certificate(problem)) => {
                assert_eq!(problem, CertificateProblem::UnknownIssuer, "{version:?}")
            }
            other => panic!("{version:?}: expected Error::Certificate, got {other:?}"),
        }
    }
}
