//! chatserv over TLS (`--tls-cert` / `--tls-key`), against the real binary
//! with certificates made here by rcgen: unusable files exit 2 naming the
//! file, the page over https, chat over wss between two clients, plain
//! HTTP and garbage on the TLS port end at once (debug log, no thread
//! left), and a half ClientHello is cut at the handshake deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use wsproto::tls::{self, TlsStream};
use wsproto::{ClientRequest, Config, MaybeTlsStream, Message, WebSocket};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// CA, chain and key files in a fresh directory.
struct Certs {
    dir: PathBuf,
    ca: PathBuf,
    chain: PathBuf,
    key: PathBuf,
}

impl Certs {
    fn new(tag: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("chatserv-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let certs = Certs {
            ca: dir.join("ca.pem"),
            chain: dir.join("chain.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        std::fs::write(&certs.ca, ca.pem()).unwrap();
        std::fs::write(&certs.chain, cert.pem()).unwrap();
        std::fs::write(&certs.key, key.serialize_pem()).unwrap();
        certs
    }

    fn client_config(&self) -> Arc<tls::rustls::ClientConfig> {
        tls::client_config_with_ca_file(&self.ca).unwrap()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running TLS chatserv (debug log), killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(certs: &Certs, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatserv"))
            .args(["--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&certs.chain)
            .arg("--tls-key")
            .arg(&certs.key)
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("started") {
                        if let Some(addr) = line.split("listen=\"").nth(1) {
                            let _ = tx.send(addr.split('"').next().unwrap().parse().unwrap());
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = rx.recv_timeout(IO_TIMEOUT).expect("a started line");
        Server { child, addr, log }
    }

    fn connect(&self, certs: &Certs, user: &str) -> WebSocket<MaybeTlsStream> {
        let request = ClientRequest::new(&format!(
            "wss://localhost:{}/?user={user}",
            self.addr.port()
        ))
        .unwrap()
        .with_handshake_timeout(IO_TIMEOUT);
        let (ws, response) =
            wsproto::connect_tls_with(&request, &Config::default(), certs.client_config()).unwrap();
        assert_eq!(response.status, 101);
        ws.get_ref().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        ws
    }

    fn wait_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let n = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .count();
            if n >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {count} x {needle:?} in {:#?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chatserv(args: &[&Path]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatserv"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn unusable_certificate_files_exit_2_naming_the_file() {
    let certs = Certs::new("bad");
    let other = Certs::new("other");
    let garbage = certs.dir.join("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let missing = certs.dir.join("missing.pem");
    let flag_cert = Path::new("--tls-cert");
    let flag_key = Path::new("--tls-key");
    for (cert, key, blamed, what) in [
        (&missing, &certs.key, &missing, "cannot read"),
        (&certs.chain, &missing, &missing, "cannot read"),
        (&garbage, &certs.key, &garbage, "no certificate"),
        (&certs.chain, &garbage, &garbage, "no private key"),
        (&certs.chain, &other.key, &other.key, "does not belong"),
    ] {
        let (code, stderr) = chatserv(&[flag_cert, cert, flag_key, key]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(&*blamed.to_string_lossy()), "{stderr}");
        assert!(stderr.contains(what), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    // One without the other is a usage error too.
    let (code, stderr) = chatserv(&[flag_cert, &certs.chain]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[test]
fn page_over_https_and_chat_over_wss() {
    let certs = Certs::new("chat");
    let server = Server::start(&certs, &[]);
    // The page, over https.
    let sock = TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut https = TlsStream::connect(sock, "localhost", certs.client_config()).unwrap();
    https
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    https.flush().unwrap();
    let mut page = Vec::new();
    let _ = https.read_to_end(&mut page);
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains(r#"location.protocol === "https:" ? "wss" : "ws""#),
        "{page}"
    );
    // Two users chat over wss.
    let mut ann = server.connect(&certs, "ann");
    let mut bob = server.connect(&certs, "bob");
    server.wait_log("user bob in", 1);
    ann.send(Message::text("hello bob")).unwrap();
    bob.send(Message::text("hi ann")).unwrap();
    let next_text = |ws: &mut WebSocket<MaybeTlsStream>| loop {
        match ws.read().unwrap() {
            Message::Text(t) => return t,
            _ => continue,
        }
    };
    assert_eq!(next_text(&mut bob), "hello bob -- FROM ann");
    assert_eq!(next_text(&mut ann), "hi ann -- FROM bob");
    ann.close(wsproto::CloseCode::Normal, "bye").unwrap();
    while ann.read().is_ok() {}
    server.wait_log("connection of ann closed", 1);
}

#[test]
fn plain_http_and_garbage_on_the_tls_port_end_at_once() {
    let certs = Certs::new("garbage");
    let server = Server::start(&certs, &[]);
    let before = server.threads();
    let inputs: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        &[0u8; 100],
        b"\x16\x03\x01\x00\x04\x01\x00\x00\x00",
    ];
    for round in 0..5 {
        for input in inputs {
            let mut sock = TcpStream::connect(server.addr).unwrap();
            sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let start = Instant::now();
            sock.write_all(input).unwrap();
            let mut sink = Vec::new();
            // The server answers with at most a TLS alert and closes.
            let _ = sock.read_to_end(&mut sink);
            assert!(start.elapsed() < Duration::from_secs(2), "round {round}");
            assert!(sink.len() < 64, "{sink:?}");
        }
    }
    server.wait_log("TLS handshake failed", 15);
    // Every connection thread is gone.
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.threads() > before {
        assert!(
            Instant::now() < deadline,
            "{} threads, {before} before",
            server.threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn half_a_client_hello_is_cut_at_the_handshake_deadline() {
    let certs = Certs::new("slowloris");
    let server = Server::start(&certs, &["--handshake-timeout", "500ms"]);
    let mut sock = TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let start = Instant::now();
    sock.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    let mut sink = Vec::new();
    let _ = sock.read_to_end(&mut sink);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.wait_log(
        "TLS handshake not complete within the handshake time-out",
        1,
    );
}
