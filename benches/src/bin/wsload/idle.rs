//! `--idle N`: hold N upgraded connections open and quiet, to measure what
//! an idle connection costs a server. Whatever the server sends meanwhile
//! (pings, chat notices) is read and answered, so its queues stay empty and
//! only the connections themselves are measured.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use wsproto::{client_handshake, ClientRequest, CloseCode, Config, Error, Message, WebSocket};

use crate::stream::Stream;

/// How long the close handshake of all connections may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Threads opening connections at the same time.
const OPENERS: usize = 16;

fn open(
    url: &str,
    config: &Config,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<WebSocket<Stream>, Error> {
    let request = ClientRequest::new(url)?;
    let sock = TcpStream::connect((request.url.host.as_str(), request.url.port))?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let stream = Stream::over(sock, &request, tls)?;
    let (ws, _response) = client_handshake(stream, &request, config)?;
    ws.get_ref().inner().set_nonblocking(true)?;
    Ok(ws)
}

fn would_block(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

/// Open `count` connections to `url_for(i)` (`wss://` ones trusting
/// `tls`), report readiness on stdout,
/// hold them until stdin ends or `hold` passes, then close them all.
/// Returns the number of errors.
pub fn run(
    count: usize,
    url_for: &(dyn Fn(usize) -> String + Sync),
    tls: Option<&Arc<ClientConfig>>,
    hold: Option<Duration>,
) -> u64 {
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let started = Instant::now();
    // A few handshakes at a time: a server that polls its listener (e.g.
    // every 25 ms) would otherwise make N sequential upgrades take N polls.
    let workers = OPENERS.min(count.max(1));
    let results: Vec<(usize, Result<WebSocket<Stream>, Error>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let config = &config;
                scope.spawn(move || {
                    (w..count)
                        .step_by(workers)
                        .map(|i| (i, open(&url_for(i), config, tls)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut conns: Vec<Option<WebSocket<Stream>>> = Vec::with_capacity(count);
    let mut errors = 0u64;
    for (i, result) in results {
        match result {
            Ok(ws) => conns.push(Some(ws)),
            Err(e) => {
                errors += 1;
                if errors <= 3 {
                    tracing::warn!(connection = i, error = %e, "connect failed");
                }
            }
        }
    }
    let opened = conns.len();
    println!(
        "ready connections={opened} errors={errors} open_s={:.3}",
        started.elapsed().as_secs_f64()
    );
    let _ = io::stdout().flush();

    let stdin_done = Arc::new(AtomicBool::new(false));
    if hold.is_none() {
        let flag = Arc::clone(&stdin_done);
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = io::stdin();
            while !matches!(stdin.read(&mut sink), Ok(0) | Err(_)) {}
            flag.store(true, Ordering::Release);
        });
    }
    let deadline = hold.map(|h| Instant::now() + h);
    let mut received = 0u64;
    while !stdin_done.load(Ordering::Acquire) && deadline.is_none_or(|d| Instant::now() < d) {
        errors += drain(&mut conns, &mut received);
    }

    for ws in conns.iter_mut().flatten() {
        let ok = ws.get_ref().inner().set_nonblocking(false).is_ok()
            && ws.close(CloseCode::Normal, "").is_ok();
        if !ok {
            errors += 1;
        }
    }
    let close_deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut clean = 0u64;
    for ws in conns.iter_mut().flatten() {
        loop {
            let left = close_deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || ws.get_ref().inner().set_read_timeout(Some(left)).is_err() {
                errors += 1;
                break;
            }
            match ws.read() {
                Ok(Message::Close(_)) => {}
                Ok(_) => received += 1,
                Err(Error::ConnectionClosed) => {
                    clean += 1;
                    break;
                }
                Err(_) => {
                    errors += 1;
                    break;
                }
            }
        }
    }
    println!(
        "RESULT mode=idle connections={count} opened={opened} closed_cleanly={clean} received={received} errors={errors}"
    );
    errors
}

/// Wait up to 100 ms for any connection to have input and read it all.
/// Returns the number of connections that failed.
fn drain(conns: &mut [Option<WebSocket<Stream>>], received: &mut u64) -> u64 {
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(conns.len());
    let mut which = Vec::with_capacity(conns.len());
    for (i, ws) in conns.iter().enumerate() {
        if let Some(ws) = ws {
            fds.push(libc::pollfd {
                fd: ws.get_ref().inner().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            which.push(i);
        }
    }
    if fds.is_empty() {
        std::thread::sleep(Duration::from_millis(100));
        return 0;
    }
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
    #[allow(unsafe_code)]
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
    if r <= 0 {
        return 0;
    }
    let mut failed = 0;
    for (pfd, &i) in fds.iter().zip(&which) {
        if pfd.revents == 0 {
            continue;
        }
        let Some(ws) = conns[i].as_mut() else {
            continue;
        };
        loop {
            match ws.read() {
                Ok(_) => *received += 1,
                Err(e) if would_block(&e) => break,
                Err(e) => {
                    tracing::warn!(connection = i, error = %e, "idle connection ended");
                    failed += 1;
                    conns[i] = None;
                    break;
                }
            }
        }
    }
    failed
}
