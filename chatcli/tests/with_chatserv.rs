//! End to end: chatcli processes talking through the real chatserv binary.
//!
//! Cargo only gives `CARGO_BIN_EXE_*` for this package's binaries, so
//! chatserv is looked up next to the test binary (`target/<profile>/`).
//! Build it first with `cargo build -p chatserv` (or `cargo build
//! --workspace`); `cargo test --workspace` builds it too, but only because
//! chatserv has integration tests of its own (cargo builds a package's
//! binaries for its integration tests).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::{finish, spawn_chatcli, Finished};

/// How long chatserv may take to log its `started` line.
const START_LIMIT: Duration = Duration::from_secs(10);
/// Longest any chatcli run may take.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// `target/<profile>/chatserv`, found from this test's own path
/// (`target/<profile>/deps/<test>-<hash>`).
fn chatserv_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(format!("chatserv{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "chatserv binary not found at {}: run `cargo build -p chatserv` (or \
         `cargo build --workspace`) before these tests, with the same target dir and profile",
        path.display()
    );
    path
}

/// A process whose stderr is read line by line as it comes; killed on drop
/// so that a failing test leaves nothing running.
struct Watched {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    fn new(mut child: Child) -> Watched {
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(strip_ansi(&line)).is_err() {
                    return;
                }
            }
        });
        Watched {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line for which `find` gives something, waiting at
    /// most `limit`.
    fn wait_for<T>(&mut self, limit: Duration, find: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = find(&line);
                    self.seen.push(line);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(_) => panic!(
                    "expected log line not seen within {limit:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Remove terminal colour sequences (`ESC [ ... letter`), in case the
/// server colours its logs even into a pipe.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Start chatserv on an ephemeral port; returns it and its `ws://` address,
/// read from the `started ... listen=ADDR` log line.
fn start_chatserv() -> (Watched, String) {
    let child = Command::new(chatserv_path())
        .args(["--listen", "127.0.0.1:0", "--id", "test"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatserv");
    let mut server = Watched::new(child);
    let addr = server.wait_for(START_LIMIT, |line| {
        if !line.contains("started") {
            return None;
        }
        let value = line.split("listen=").nth(1)?;
        let value = value.split_whitespace().next()?.trim_matches('"');
        Some(value.to_owned())
    });
    (server, format!("ws://{addr}"))
}

fn count(out: &Finished, line: &str) -> usize {
    out.lines().iter().filter(|l| **l == line).count()
}

#[test]
fn two_clients_see_each_others_hellos() {
    let (_server, addr) = start_chatserv();
    // Three sends 700 ms apart, then 1.5 s of lingering: each client is
    // still connected for all the other's sends as long as the two start
    // within 700 ms of each other.
    let args = |user| {
        spawn_chatcli(
            &[
                "--user",
                user,
                "--addr",
                &addr,
                "--interval",
                "700ms",
                "--count",
                "3",
                "--linger",
                "1500ms",
            ],
            None,
        )
    };
    let aaa = args("aaa");
    let bbb = args("bbb");
    let aaa = finish(aaa, RUN_LIMIT);
    let bbb = finish(bbb, RUN_LIMIT);

    assert_eq!(aaa.status.code(), Some(0), "aaa: {aaa:?}");
    assert_eq!(bbb.status.code(), Some(0), "bbb: {bbb:?}");
    assert_eq!(count(&aaa, "hello -- FROM bbb"), 3, "aaa: {aaa:?}");
    assert_eq!(count(&bbb, "hello -- FROM aaa"), 3, "bbb: {bbb:?}");
    // Nobody hears their own messages back.
    assert_eq!(count(&aaa, "hello -- FROM aaa"), 0, "aaa: {aaa:?}");
    assert_eq!(count(&bbb, "hello -- FROM bbb"), 0, "bbb: {bbb:?}");
}

#[test]
fn second_login_kicks_the_first_with_4001() {
    let (_server, addr) = start_chatserv();
    let first = spawn_chatcli(
        &["--user", "aaa", "--addr", &addr, "--interval", "1m"],
        None,
    );
    let mut first = Watched::new(first);
    first.wait_for(RUN_LIMIT, |line| line.contains("connected").then_some(()));

    let second = spawn_chatcli(
        &[
            "--user",
            "aaa",
            "--addr",
            &addr,
            "--interval",
            "100ms",
            "--count",
            "1",
            "--linger",
            "200ms",
        ],
        None,
    );
    let second = finish(second, RUN_LIMIT);
    assert_eq!(second.status.code(), Some(0), "second: {second:?}");

    // The first one is told 4001 and exits 3 saying so.
    let line = first.wait_for(RUN_LIMIT, |line| {
        line.starts_with("chatcli: ").then(|| line.to_owned())
    });
    assert!(line.contains("4001"), "{line}");
    assert!(line.contains("logged in elsewhere"), "{line}");
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = first.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "first client did not exit");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
}

/// Start chatserv with extra options and environment.
fn start_chatserv_with(args: &[&str], envs: &[(&str, &str)]) -> (Watched, String) {
    let child = Command::new(chatserv_path())
        .args(["--listen", "127.0.0.1:0", "--id", "test"])
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatserv");
    let mut server = Watched::new(child);
    let addr = server.wait_for(START_LIMIT, |line| {
        let value = line.split("listen=").nth(1)?;
        let value = value.split_whitespace().next()?.trim_matches('"');
        line.contains("started").then(|| value.to_owned())
    });
    (server, format!("ws://{addr}"))
}

#[test]
fn a_token_from_chatserv_token_logs_in_and_a_spoof_is_shown_escaped() {
    const SECRET: &str = "chatcli-test-secret-0123456789abcdef";
    let env = [("CHATSERV_AUTH_SECRET", SECRET)];
    let (_server, addr) = start_chatserv_with(&[], &env);
    let token = Command::new(chatserv_path())
        .args(["token", "--user", "aaa", "--ttl", "5m"])
        .envs(env)
        .output()
        .expect("chatserv token");
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    // Without a token chatcli is refused with the reason.
    let refused = finish(
        spawn_chatcli(&["--user", "aaa", "--addr", &addr], None),
        RUN_LIMIT,
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        refused
            .stderr
            .contains("HTTP 401 Unauthorized: missing login token"),
        "{}",
        refused.stderr
    );

    let cli = spawn_chatcli(
        &["--token", &token, "--addr", &addr, "--interval", "1m"],
        None,
    );
    let mut cli = Watched::new(cli);
    cli.wait_for(RUN_LIMIT, |line| line.contains("connected").then_some(()));
    // eve, logged in with her own token, tries to pass as admin.
    let eve_token = wsproto_token(SECRET, "eve");
    let request = wsproto::ClientRequest::new(&format!("{addr}/?token={eve_token}")).unwrap();
    let (mut eve, _) = wsproto::connect_with(&request, &wsproto::Config::default()).unwrap();
    eve.send(wsproto::Message::text("我是管理员 -- FROM admin\nok"))
        .unwrap();
    eve.send(wsproto::Message::text("\u{1b}]0;pwned\u{7}done"))
        .unwrap();
    eve.close(wsproto::CloseCode::Normal, "").unwrap();
    let _ = eve.read();
    thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &cli.child.id().to_string()])
        .status();
    let mut stdout = String::new();
    std::io::Read::read_to_string(cli.child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = cli.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "我是管理员 -- FROM admin\\nok -- FROM eve",
            "\\x1b]0;pwned\\x07done -- FROM eve"
        ]
    );
}

/// An HS256 token for `user`, made with `chatserv token`.
fn wsproto_token(secret: &str, user: &str) -> String {
    let out = Command::new(chatserv_path())
        .args(["token", "--user", user])
        .env("CHATSERV_AUTH_SECRET", secret)
        .output()
        .expect("chatserv token");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
