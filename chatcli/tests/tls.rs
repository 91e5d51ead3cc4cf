//! chatcli over `wss://` against a TLS chatserv (the real binaries; see
//! `with_chatserv.rs` for how chatserv is found), with certificates made
//! here by rcgen: two clients chat with `--ca-file`; without it, or with
//! a certificate for another name, the certificate error is one clear
//! line and exit 1; an unusable `--ca-file` names the file.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{finish, spawn_chatcli, Finished};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

const RUN_LIMIT: Duration = Duration::from_secs(20);

fn chatserv_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join(format!("chatserv{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "build chatserv first: {} missing",
        path.display()
    );
    path
}

struct Certs {
    dir: PathBuf,
    ca: PathBuf,
    chain: PathBuf,
    key: PathBuf,
}

impl Certs {
    fn new(tag: &str, names: &[&str]) -> Certs {
        let dir = std::env::temp_dir().join(format!("chatcli-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS chatserv, killed on drop; its port.
struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_chatserv(certs: &Certs) -> Server {
    let mut child = Command::new(chatserv_path())
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&certs.chain)
        .arg("--tls-key")
        .arg(&certs.key)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines.next().expect("a started line").unwrap();
        if let Some(rest) = line.split("listen=\"").nth(1) {
            let addr: std::net::SocketAddr = rest.split('"').next().unwrap().parse().unwrap();
            break addr.port();
        }
    };
    // Keep draining the log so that the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Server(child, port)
}

fn chatcli(user: &str, addr: &str, ca: Option<&Path>) -> Child {
    let mut args = vec![
        "--user",
        user,
        "--addr",
        addr,
        "--interval",
        "700ms",
        "--count",
        "3",
        "--linger",
        "1500ms",
    ];
    let ca = ca.map(|p| p.to_string_lossy().into_owned());
    if let Some(ca) = &ca {
        args.extend(["--ca-file", ca.as_str()]);
    }
    spawn_chatcli(&args, None)
}

fn error_lines(out: &Finished) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("chatcli:"))
        .collect()
}

#[test]
fn two_clients_chat_over_wss_with_ca_file() {
    let certs = Certs::new("chat", &["localhost"]);
    let server = start_chatserv(&certs);
    let addr = format!("wss://localhost:{}", server.1);
    let aaa = chatcli("aaa", &addr, Some(&certs.ca));
    let bbb = chatcli("bbb", &addr, Some(&certs.ca));
    let aaa = finish(aaa, RUN_LIMIT);
    let bbb = finish(bbb, RUN_LIMIT);
    assert_eq!(aaa.status.code(), Some(0), "{aaa:?}");
    assert_eq!(bbb.status.code(), Some(0), "{bbb:?}");
    let count = |out: &Finished, line: &str| out.lines().iter().filter(|l| **l == line).count();
    assert_eq!(count(&aaa, "hello -- FROM bbb"), 3, "{aaa:?}");
    assert_eq!(count(&bbb, "hello -- FROM aaa"), 3, "{bbb:?}");
}

#[test]
fn certificate_errors_are_one_line_and_exit_1() {
    let certs = Certs::new("errors", &["localhost"]);
    let server = start_chatserv(&certs);
    // Default trust (WebPKI roots): our test CA is unknown.
    let out = finish(
        chatcli("aaa", &format!("wss://localhost:{}", server.1), None),
        RUN_LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(lines[0].contains("certificate"), "{lines:?}");
    assert!(lines[0].contains("unknown authority"), "{lines:?}");
    assert!(lines[0].contains("--ca-file"), "{lines:?}");
    // The right CA, but the certificate is for localhost, not 127.0.0.1.
    let out = finish(
        chatcli(
            "aaa",
            &format!("wss://127.0.0.1:{}", server.1),
            Some(&certs.ca),
        ),
        RUN_LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(
        lines[0].contains("not valid for this host name"),
        "{lines:?}"
    );
    // An unusable --ca-file names the file.
    let missing = certs.dir.join("missing.pem");
    let out = finish(
        chatcli(
            "aaa",
            &format!("wss://localhost:{}", server.1),
            Some(&missing),
        ),
        RUN_LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(lines[0].contains(&*missing.to_string_lossy()), "{lines:?}");
}
