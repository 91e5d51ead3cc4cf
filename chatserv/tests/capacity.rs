//! Issue 15: chatserv under limits it cannot raise. It must work out what
//! fits, lower `--max-connections` to it, answer 503 beyond it (also when
//! a thread cannot start after all), and never crash.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{read_text, Server, IO_TIMEOUT};
use wsproto::{ClientRequest, Config, Error, MaybeTlsStream, Message, WebSocket};

/// Log in as `user` (no deflate, bounded time-outs): the socket, or the
/// error, e.g. `HttpStatus` for a refusal.
fn try_login(server: &Server, user: &str) -> Result<WebSocket<MaybeTlsStream>, Error> {
    let request = ClientRequest::new(&server.url(user))?
        .with_connect_timeout(IO_TIMEOUT)
        .with_handshake_timeout(IO_TIMEOUT);
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let (mut ws, response) = wsproto::connect_with(&request, &config)?;
    assert_eq!(response.status, 101);
    ws.get_mut().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    Ok(ws)
}

/// Assert that logging in as `user` is refused with 503 whose body
/// contains `why`.
fn assert_refused(server: &Server, user: &str, why: &str) {
    match try_login(server, user) {
        Err(Error::HttpStatus { status, body }) => {
            let body = String::from_utf8_lossy(&body);
            assert_eq!(status, 503, "{body}");
            assert!(
                body.contains(why),
                "503 for {user} says {body:?}, not {why:?}"
            );
        }
        Err(e) => panic!("{user}: expected HTTP 503 ({why}), got error {e}"),
        Ok(_) => panic!("{user}: expected HTTP 503 ({why}), got a connection"),
    }
}

/// The number after `key=` in `line`.
fn number(line: &str, key: &str) -> usize {
    line.split(key)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key}N in {line:?}"))
}

fn has_prlimit() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v prlimit"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("skipped: prlimit (util-linux) is not installed");
    }
    found
}

/// The server's `capacity` log line.
fn capacity_line(server: &Server) -> String {
    server.wait_log("capacity:", 1);
    server
        .log()
        .into_iter()
        .find(|l| l.contains("capacity:"))
        .unwrap()
}

#[test]
fn a_low_nofile_limit_lowers_max_connections_and_refuses_with_503() {
    if !has_prlimit() {
        return;
    }
    let mut server = Server::start_wrapped(
        &["prlimit", "--nofile=96:96", "--"],
        &[
            "--no-deflate",
            "--max-connections",
            "1000",
            "--handshake-timeout",
            "60s",
        ],
    );
    let capacity = capacity_line(&server);
    assert!(
        capacity.contains("bound_by=\"RLIMIT_NOFILE\""),
        "{capacity}"
    );
    let max = number(&capacity, "max_connections=");
    let total = number(&capacity, "total=");
    assert!((1..1000).contains(&max) && max <= total, "{capacity}");
    let lowered = server
        .log()
        .into_iter()
        .find(|l| l.contains("--max-connections lowered"))
        .expect("a warning that --max-connections was lowered");
    assert!(lowered.contains("requested=1000"), "{lowered}");
    assert_eq!(number(&lowered, "max_connections="), max, "{lowered}");
    assert!(lowered.contains("ulimit -Hn"), "{lowered}");

    // Every connection that fits logs in...
    let mut clients: Vec<_> = (0..max)
        .map(|i| try_login(&server, &format!("u{i}")).expect("a login within capacity"))
        .collect();
    // ...and the next ones get the normal 503, not a dropped connection.
    for i in 0..3 {
        assert_refused(&server, &format!("over{i}"), "too many connections");
    }
    // Handshaking connections fill the rest of the threads; past them,
    // the accept loop itself answers 503, still without running out of
    // descriptors.
    let idle: Vec<_> = (max..total)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    assert_refused(&server, "past-slack", "server overloaded");
    drop(idle);

    // Alive, and serving: two leave, a new login gets in and chats.
    assert!(server.is_running());
    clients.truncate(max.saturating_sub(2));
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut newcomer = loop {
        match try_login(&server, "newcomer") {
            Ok(ws) => break ws,
            Err(Error::HttpStatus { status: 503, .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("no slot freed for a new login: {e}"),
        }
    };
    newcomer.send(Message::text("hello")).unwrap();
    if let Some(first) = clients.first_mut() {
        assert_eq!(read_text(first), "hello -- FROM newcomer");
    }
    assert!(server.is_running());
    let log = server.log();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "a panic in the log: {log:#?}"
    );
}

#[test]
fn a_max_connections_that_fits_is_kept() {
    if !has_prlimit() {
        return;
    }
    let server = Server::start_wrapped(
        &["prlimit", "--nofile=96:96", "--"],
        &["--no-deflate", "--max-connections", "2"],
    );
    let capacity = capacity_line(&server);
    assert!(number(&capacity, "max_connections=") >= 2, "{capacity}");
    assert!(
        !server.log().iter().any(|l| l.contains("lowered")),
        "{:#?}",
        server.log()
    );
    let _a = try_login(&server, "a").unwrap();
    let _b = try_login(&server, "b").unwrap();
    assert_refused(&server, "c", "too many connections");
}

#[test]
fn a_machine_that_holds_no_connection_refuses_to_start_and_says_why() {
    if !has_prlimit() {
        return;
    }
    let out = Command::new("prlimit")
        .args(["--nofile=30:30", "--", env!("CARGO_BIN_EXE_chatserv")])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run chatserv under prlimit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot hold a single connection") && stderr.contains("ulimit -Hn"),
        "{stderr}"
    );
    assert!(!stderr.contains("started"), "{stderr}");
}

/// A limit on the server's threads imposed after it started, so that the
/// capacity it worked out is not enough and a thread fails to start, as
/// when something else on the machine takes the pids.
enum ThreadLimit {
    /// The server was moved into a new pids cgroup (v1 or v2) whose
    /// `pids.max` is what it has now.
    Cgroup {
        dir: PathBuf,
        /// Where the server was (its `cgroup.procs`), to move it back.
        home: PathBuf,
        pid: u32,
    },
    /// `RLIMIT_NPROC` soft limit lowered to 1 (not root: root is exempt).
    Nproc { pid: u32, soft: String },
}

impl ThreadLimit {
    /// Let the server `pid` start no more threads, or `Err(why not)`.
    fn impose(pid: u32) -> Result<ThreadLimit, String> {
        match Self::cgroup(pid) {
            Ok(limit) => return Ok(limit),
            Err(why) => eprintln!("no pids cgroup: {why}"),
        }
        if users_uid() == "0" {
            return Err(
                "running as root, where RLIMIT_NPROC is not enforced, and no writable pids \
                 cgroup"
                    .into(),
            );
        }
        let limits =
            fs::read_to_string(format!("/proc/{pid}/limits")).map_err(|e| e.to_string())?;
        let soft = limits
            .lines()
            .find(|l| l.starts_with("Max processes"))
            .and_then(|l| l.split_whitespace().nth(2))
            .ok_or("no Max processes in /proc/PID/limits")?
            .to_owned();
        prlimit(pid, "--nproc=1:")?;
        Ok(ThreadLimit::Nproc { pid, soft })
    }

    fn cgroup(pid: u32) -> Result<ThreadLimit, String> {
        let groups =
            fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
        // cgroup v1's pids hierarchy, else v2 with the pids controller.
        let (root, path) = if let Some(path) = groups
            .lines()
            .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_owned()))
        {
            (PathBuf::from("/sys/fs/cgroup/pids"), path)
        } else {
            let path = groups
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .ok_or("no cgroup v2 entry")?
                .to_owned();
            let root = PathBuf::from("/sys/fs/cgroup");
            let controllers = fs::read_to_string(root.join("cgroup.controllers"))
                .map_err(|e| format!("no cgroup v2 at /sys/fs/cgroup: {e}"))?;
            if !controllers.split_whitespace().any(|c| c == "pids") {
                return Err("cgroup v2 has no pids controller".into());
            }
            let _ = fs::write(root.join("cgroup.subtree_control"), "+pids");
            (root, path)
        };
        let home = root.join(path.trim_start_matches('/'));
        let dir = root.join(format!("chatserv-capacity-test-{pid}"));
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let limit = ThreadLimit::Cgroup {
            dir: dir.clone(),
            home,
            pid,
        };
        fs::write(dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("cannot move the server into {}: {e}", dir.display()))?;
        let current = fs::read_to_string(dir.join("pids.current")).map_err(|e| e.to_string())?;
        fs::write(dir.join("pids.max"), current.trim()).map_err(|e| e.to_string())?;
        Ok(limit)
    }

    /// Let the server start threads again.
    fn lift(&self) {
        match self {
            ThreadLimit::Cgroup { dir, home, pid } => {
                let _ = fs::write(dir.join("pids.max"), "max");
                let _ = fs::write(home.join("cgroup.procs"), pid.to_string());
            }
            ThreadLimit::Nproc { pid, soft } => {
                let _ = prlimit(*pid, &format!("--nproc={soft}:"));
            }
        }
    }
}

impl Drop for ThreadLimit {
    fn drop(&mut self) {
        self.lift();
        if let ThreadLimit::Cgroup { dir, .. } = self {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn prlimit(pid: u32, limit: &str) -> Result<(), String> {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), limit])
        .status()
        .map_err(|e| format!("cannot run prlimit: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("prlimit {limit} failed: {status}"))
}

fn users_uid() -> String {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn cgroup_dir_exists(limit: &ThreadLimit) -> bool {
    match limit {
        ThreadLimit::Cgroup { dir, .. } => Path::new(dir).exists(),
        ThreadLimit::Nproc { .. } => false,
    }
}

#[test]
fn a_thread_that_cannot_start_gets_503_and_the_server_keeps_serving() {
    let mut server = Server::start(&["--no-deflate"]);
    let mut ann = try_login(&server, "ann").unwrap();
    let mut bob = try_login(&server, "bob").unwrap();
    let limit = match ThreadLimit::impose(server.pid()) {
        Ok(limit) => limit,
        Err(why) => {
            eprintln!("skipped: cannot limit the server's threads: {why}");
            return;
        }
    };
    if cgroup_dir_exists(&limit) {
        eprintln!("server moved into a pids cgroup with pids.max = its threads");
    }
    // The old code dropped these connections without an answer.
    for i in 0..3 {
        assert_refused(&server, &format!("carl{i}"), "cannot start a thread");
    }
    // One warning for the burst, not one per client.
    server.wait_log("cannot start a connection thread", 1);
    let warnings = server
        .log()
        .iter()
        .filter(|l| l.contains("cannot start a connection thread"))
        .count();
    assert_eq!(warnings, 1, "{:#?}", server.log());
    // Those already in keep chatting.
    ann.send(Message::text("still here")).unwrap();
    assert_eq!(read_text(&mut bob), "still here -- FROM ann");
    assert!(server.is_running());

    limit.lift();
    let mut carl = try_login(&server, "carl").expect("a login once threads can start again");
    bob.send(Message::text("welcome")).unwrap();
    assert_eq!(read_text(&mut carl), "welcome -- FROM bob");
    assert_eq!(read_text(&mut ann), "welcome -- FROM bob");
    assert!(server.is_running());
    drop(limit);
}
