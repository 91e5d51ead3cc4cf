//! Sockets without wsproto: epoll, non-blocking connects and a hand-written
//! HTTP upgrade, so that one thread can open (and later read) thousands of
//! connections and the generator's own cost per connection stays small
//! beside the server's. Linux only, like the /proc figures chatload reads.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The `Sec-WebSocket-Key` of every upgrade (RFC 6455 §4.1's example). A
/// fixed key costs the server the same SHA-1 as a random one and lets the
/// expected `Sec-WebSocket-Accept` be computed once.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Where a `ws://host:port/path` URL points: its socket address and what
/// goes into the request line and `Host` header.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    /// Parse a `ws://` URL (no TLS: the load generator measures the chat
    /// fan-out, not a TLS stack).
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        let path = path.trim_end_matches('/');
        Ok(Target {
            addr,
            host: host.to_owned(),
            path: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
        })
    }

    /// The upgrade request logging in `user`.
    fn request(&self, user: &str) -> Vec<u8> {
        format!(
            "GET {}/?user={user} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.path, self.host
        )
        .into_bytes()
    }
}

/// An epoll instance, level-triggered: a readiness event is answered with
/// one `read`, and whatever that read left in the socket is reported again
/// by the next `epoll_wait`, with no extra `read` to see `EAGAIN`.
pub struct Epoll(OwnedFd);

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[allow(unsafe_code)]
impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call; the descriptor it returns is ours.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the call's duration.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Wait up to `timeout_ms` for events; returns how many `events` holds.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> usize {
        // SAFETY: `events` is a writable array of `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        n.max(0) as usize
    }
}

/// Raise the soft descriptor limit to the hard one: holding 10,000
/// connections needs more than the usual 1,024.
#[allow(unsafe_code)]
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Start a non-blocking connect to `addr` (it completes, or fails, when the
/// socket becomes writable).
#[allow(unsafe_code)]
fn connect_nonblocking(addr: SocketAddr) -> io::Result<OwnedFd> {
    let (family, storage, len) = sockaddr(addr);
    // SAFETY: plain system call; the descriptor it returns is ours.
    let fd = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `storage` holds a sockaddr of `len` bytes.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(fd)
}

#[allow(unsafe_code)]
fn sockaddr(addr: SocketAddr) -> (libc::c_int, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (
                libc::AF_INET,
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                libc::AF_INET6,
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// Write all of `buf` to a non-blocking socket, waiting (poll) while the
/// kernel's send buffer is full.
#[allow(unsafe_code)]
pub fn write_all(mut stream: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut pfd = libc::pollfd {
                    fd: stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 1000) };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An upgraded connection: its user's index, the socket (non-blocking,
/// TCP_NODELAY) and any bytes that followed the 101 response in the same
/// read (the first frames).
pub struct Opened {
    pub user: usize,
    pub stream: TcpStream,
    pub leftover: Vec<u8>,
}

/// What [`open_many`] got.
#[derive(Default)]
pub struct OpenReport {
    pub conns: Vec<Opened>,
    /// Responses other than 101, by status code (e.g. 503 past
    /// `--max-connections`), and 101s without the right accept key (as 0).
    pub refused: std::collections::BTreeMap<u16, u64>,
    /// Connections that failed before a response (refused, reset, timed out).
    pub failed: u64,
    pub first_error: Option<String>,
    /// From the first connect to the last response, over all threads.
    pub secs: f64,
}

/// One connection being opened.
struct Pending {
    user: usize,
    fd: OwnedFd,
    sent: bool,
    buf: Vec<u8>,
}

enum Step {
    Wait,
    /// Upgraded (with the bytes after the response head), or refused
    /// (status) or failed (why).
    Done(Result<Vec<u8>, Result<u16, String>>),
}

impl Pending {
    /// Advance on a readiness event: send the request once writable, then
    /// read until the response head is complete.
    fn step(&mut self, target: &Target, name: &dyn Fn(usize) -> String, accept: &str) -> Step {
        let stream = std::mem::ManuallyDrop::new(tcp_view(&self.fd));
        if !self.sent {
            let request = target.request(&name(self.user));
            match (&*stream).write(&request) {
                Ok(n) if n == request.len() => self.sent = true,
                Ok(_) => return Step::Done(Err(Err("short write of the request".into()))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                Err(e) => return Step::Done(Err(Err(format!("connect/send: {e}")))),
            }
            return Step::Wait;
        }
        let mut chunk = [0u8; 4096];
        match (&*stream).read(&mut chunk) {
            Ok(0) => return Step::Done(Err(Err("closed before the response".into()))),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) => return Step::Done(Err(Err(format!("read: {e}")))),
        }
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Step::Wait;
        };
        let head = &self.buf[..end];
        let status = std::str::from_utf8(head.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if status != 101 || !contains(head, accept.as_bytes()) {
            return Step::Done(Err(Ok(if status == 101 { 0 } else { status })));
        }
        Step::Done(Ok(self.buf.split_off(end + 4)))
    }
}

/// A `TcpStream` over a descriptor it must not close (wrap it in
/// `ManuallyDrop`).
#[allow(unsafe_code)]
fn tcp_view(fd: &OwnedFd) -> TcpStream {
    // SAFETY: the caller never drops the result, so `fd` stays owned once.
    unsafe { TcpStream::from_raw_fd(fd.as_raw_fd()) }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Open and upgrade the connections of `users`, `name(i)` logging in user
/// `i`, from `threads` threads with up to `concurrency` handshakes in
/// flight each (a bounded number, as a server's listen backlog is). A
/// connection that gets no response within `timeout` of the thread's last
/// progress fails.
pub fn open_many(
    target: &Target,
    users: &[usize],
    name: &(dyn Fn(usize) -> String + Sync),
    threads: usize,
    concurrency: usize,
    timeout: Duration,
) -> OpenReport {
    let accept = wsproto::accept_key(KEY);
    let threads = threads.max(1).min(users.len().max(1));
    let parts: Vec<(OpenReport, Option<Instant>, Option<Instant>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<usize> = users.iter().copied().skip(t).step_by(threads).collect();
                let accept = accept.as_str();
                s.spawn(move || open_part(target, &mine, name, concurrency, timeout, accept))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("opener thread"))
            .collect()
    });
    let mut report = OpenReport::default();
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for (part, f, l) in parts {
        report.conns.extend(part.conns);
        for (k, v) in part.refused {
            *report.refused.entry(k).or_default() += v;
        }
        report.failed += part.failed;
        report.first_error = report.first_error.or(part.first_error);
        first = match (first, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = last.max(l);
    }
    if let (Some(f), Some(l)) = (first, last) {
        report.secs = l.duration_since(f).as_secs_f64();
    }
    report.conns.sort_by_key(|c| c.user);
    report
}

fn open_part(
    target: &Target,
    mine: &[usize],
    name: &(dyn Fn(usize) -> String + Sync),
    concurrency: usize,
    timeout: Duration,
    accept: &str,
) -> (OpenReport, Option<Instant>, Option<Instant>) {
    let mut report = OpenReport::default();
    let ep = Epoll::new().expect("epoll");
    let mut slots: Vec<Option<Pending>> = (0..concurrency.max(1)).map(|_| None).collect();
    let mut free: Vec<usize> = (0..slots.len()).rev().collect();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; slots.len()];
    let (mut next, mut active) = (0, 0);
    let (mut first, mut last) = (None, None);
    let mut progress = Instant::now();
    let fail = |report: &mut OpenReport, why: String| {
        report.failed += 1;
        report.first_error.get_or_insert(why);
    };
    while next < mine.len() || active > 0 {
        while next < mine.len() && !free.is_empty() {
            let user = mine[next];
            next += 1;
            first.get_or_insert_with(Instant::now);
            match connect_nonblocking(target.addr) {
                Ok(fd) => {
                    let slot = free.pop().unwrap();
                    let events = (libc::EPOLLOUT | libc::EPOLLIN) as u32;
                    if let Err(e) = ep.add(fd.as_raw_fd(), events, slot as u64) {
                        fail(&mut report, format!("epoll: {e}"));
                        free.push(slot);
                        continue;
                    }
                    slots[slot] = Some(Pending {
                        user,
                        fd,
                        sent: false,
                        buf: Vec::new(),
                    });
                    active += 1;
                }
                Err(e) => fail(&mut report, format!("connect: {e}")),
            }
        }
        let n = ep.wait(&mut events, 100);
        if n == 0 && progress.elapsed() > timeout {
            for slot in slots.iter_mut().filter(|s| s.is_some()) {
                *slot = None;
                fail(&mut report, "no response (timed out)".into());
            }
            active = 0;
            free = (0..concurrency.max(1)).collect();
            continue;
        }
        for ev in &events[..n] {
            let slot = ev.u64 as usize;
            let Some(p) = slots[slot].as_mut() else {
                continue;
            };
            let was_sent = p.sent;
            let step = p.step(target, name, accept);
            if !was_sent && p.sent {
                let _ = ep.modify(p.fd.as_raw_fd(), libc::EPOLLIN as u32, slot as u64);
            }
            let Step::Done(outcome) = step else {
                continue;
            };
            progress = Instant::now();
            last = Some(progress);
            let p = slots[slot].take().unwrap();
            let _ = ep.delete(p.fd.as_raw_fd());
            free.push(slot);
            active -= 1;
            match outcome {
                Ok(leftover) => {
                    let stream = TcpStream::from(p.fd);
                    let _ = stream.set_nodelay(true);
                    report.conns.push(Opened {
                        user: p.user,
                        stream,
                        leftover,
                    });
                }
                Err(Ok(status)) => *report.refused.entry(status).or_default() += 1,
                Err(Err(why)) => fail(&mut report, why),
            }
        }
    }
    (report, first, last)
}
