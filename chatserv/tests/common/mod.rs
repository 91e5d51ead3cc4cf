//! Test harness: runs the real `chatserv` binary on an ephemeral port and
//! talks to it with wsproto's client.
#![allow(dead_code)]

pub mod flood;
pub mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wsproto::{CloseFrame, Error, MaybeTlsStream, Message, WebSocket};

/// Read time-out on every test socket: nothing in these tests waits longer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Start `chatserv --listen 127.0.0.1:0 ARGS...` and wait for its
    /// `started` line to learn the port.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::start_wrapped_with_env(&[], args, envs)
    }

    /// [`Server::start`] run through a wrapper command, e.g.
    /// `["prlimit", "--nofile=64:64", "--"]`; its process is the server's
    /// (the wrapper must exec it, as `prlimit` does).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Server {
        Server::start_wrapped_with_env(wrapper, args, &[])
    }

    fn start_wrapped_with_env(wrapper: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Server {
        let binary = env!("CARGO_BIN_EXE_chatserv");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chatserv");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = started_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(IO_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("no `started` line from chatserv: {:?}", log.lock().unwrap());
            }
        };
        Server { child, addr, log }
    }

    /// `ws://ADDR/?user=USER`.
    pub fn url(&self, user: &str) -> String {
        format!("ws://{}/?user={user}", self.addr)
    }

    /// Connect as `user` without offering permessage-deflate (the tests of
    /// compression connect on their own); the socket gets a read time-out.
    pub fn connect(&self, user: &str) -> WebSocket<MaybeTlsStream> {
        let request = wsproto::ClientRequest::new(&self.url(user)).expect("url");
        let config = wsproto::Config {
            deflate: None,
            ..wsproto::Config::default()
        };
        let (mut ws, response) = wsproto::connect_with(&request, &config).expect("connect");
        assert_eq!(response.status, 101);
        ws.get_mut().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        ws
    }

    /// A copy of the log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Wait until `count` log lines contain `needle`.
    pub fn wait_log(&self, needle: &str, count: usize) {
        self.wait_log_within(needle, count, IO_TIMEOUT);
    }

    /// [`Server::wait_log`] with its own time-out.
    pub fn wait_log_within(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.log().iter().filter(|l| l.contains(needle)).count();
            if n >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "log never had {count} x {needle:?}: {:#?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or been
    /// killed by a signal, e.g. SIGABRT).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL, and reap it.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The admin port's address, from its log line (`--admin-listen`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.wait_log("admin port", 1);
        self.log()
            .iter()
            .find_map(|l| {
                let rest = l.split("admin=\"").nth(1)?;
                rest.split('"').next()?.parse().ok()
            })
            .expect("admin address in the log")
    }

    /// Send SIGTERM.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Send a signal by name (`STOP`, `CONT`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "chatserv did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in a line like `INFO started id=demo listen="127.0.0.1:1234"`.
fn started_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("started") {
        return None;
    }
    let rest = line.split("listen=\"").nth(1)?;
    rest.split('"').next()?.parse().ok()
}

/// Next text message, skipping pings and pongs.
pub fn read_text(ws: &mut WebSocket<MaybeTlsStream>) -> String {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return t,
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Read until a Close arrives (skipping pings; text is collected), then
/// until the server closes the TCP connection. Returns the texts seen and
/// the Close frame.
pub fn read_until_close(ws: &mut WebSocket<MaybeTlsStream>) -> (Vec<String>, Option<CloseFrame>) {
    let mut texts = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => texts.push(t),
            Ok(Message::Close(frame)) => {
                // The echo was sent by `read`; the server now closes TCP.
                match ws.read() {
                    Err(Error::ConnectionClosed) => {}
                    other => panic!("expected the end of the connection, got {other:?}"),
                }
                return (texts, frame);
            }
            Ok(_) => {}
            Err(e) => panic!("expected a Close frame, got error {e}"),
        }
    }
}

/// Send a raw HTTP request and read the whole answer (the server closes).
/// Returns status, head and body.
pub fn http(addr: SocketAddr, request: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP head");
    let head = String::from_utf8(answer[..split].to_vec()).unwrap();
    let body = answer[split + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, head, body)
}

/// The close code of a frame, as a number.
pub fn code(frame: &Option<CloseFrame>) -> Option<u16> {
    frame.as_ref().map(|f| u16::from(f.code))
}
