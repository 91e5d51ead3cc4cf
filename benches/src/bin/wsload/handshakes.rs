//! `--handshakes N`: the cost of a connection's life, not of its traffic.
//! N connections are opened from `--connections K` threads (each opens
//! its share one after another): TCP connect, the TLS handshake for a
//! `wss://` URL (rustls' `StreamOwned` on the client side, the same for
//! every server, session resumption off unless `--resume`, so each is a
//! full handshake), the WebSocket upgrade, then the WebSocket close
//! handshake and the TCP close. `--handshake-warmup` more go first,
//! uncounted.
//!
//! Reported: handshakes/s (N over the wall time of the counted ones),
//! the time from `connect` to the `101` response (p50/p99), the
//! generator's own CPU per handshake, with `--server-pid` the server
//! process's CPU per handshake (utime + stime of all its threads, from
//! `/proc/PID/stat`), and the TLS version and cipher suite negotiated (so
//! a comparison can check both servers negotiated the same).

use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use wsproto::{client_handshake, ClientRequest, CloseCode, Config, Error};

use crate::hist::Histogram;
use crate::stream::Stream;

/// Read and write time-out of each socket: a stuck server is an error,
/// not a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What to run.
pub struct Plan<'a> {
    /// Counted handshakes.
    pub count: usize,
    /// Uncounted handshakes before them.
    pub warmup: usize,
    /// Threads opening connections at the same time.
    pub threads: usize,
    /// URL of connection `i`.
    pub url_for: &'a (dyn Fn(usize) -> String + Sync),
    /// The client's TLS config for `wss://` URLs.
    pub tls: Option<Arc<ClientConfig>>,
    /// Keep rustls' client session cache (resumed handshakes).
    pub resume: bool,
    /// The server process, to measure its CPU time.
    pub server_pid: Option<u32>,
    /// Stack size of each thread.
    pub stack: usize,
}

/// What one connection negotiated: TLS version and cipher suite.
type Negotiated = Option<(String, String)>;

/// One connection's life. Returns the time from `connect` to the `101`
/// response and what TLS negotiated.
fn one(
    url: &str,
    config: &Config,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<(Duration, Negotiated), Error> {
    let request = ClientRequest::new(url)?;
    let start = Instant::now();
    let sock = TcpStream::connect((request.url.host.as_str(), request.url.port))?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    let stream = Stream::over(sock, &request, tls)?;
    let (mut ws, _response) = client_handshake(stream, &request, config)?;
    let upgraded = start.elapsed();
    let negotiated = match ws.get_ref() {
        Stream::Tls(s) => Some((
            s.conn
                .protocol_version()
                .map_or("-".to_owned(), |v| format!("{v:?}")),
            s.conn
                .negotiated_cipher_suite()
                .map_or("-".to_owned(), |c| format!("{:?}", c.suite())),
        )),
        Stream::Plain(_) => None,
    };
    ws.close(CloseCode::Normal, "")?;
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(Error::ConnectionClosed) => break,
            Err(e) => return Err(e),
        }
    }
    Ok((upgraded, negotiated))
}

#[derive(Default)]
struct Outcome {
    done: usize,
    errors: usize,
    first_error: Option<String>,
    upgrade: Histogram,
    negotiated: Negotiated,
}

/// Run `total` connections from `threads` threads; connection indices
/// start at `first`.
fn batch(
    plan: &Plan<'_>,
    config: &Config,
    tls: Option<&Arc<ClientConfig>>,
    first: usize,
    total: usize,
) -> Outcome {
    let next = AtomicUsize::new(0);
    let outcome = Mutex::new(Outcome::default());
    std::thread::scope(|scope| {
        for t in 0..plan.threads.max(1) {
            let (next, outcome) = (&next, &outcome);
            let spawned = std::thread::Builder::new()
                .name(format!("hs{t}"))
                .stack_size(plan.stack)
                .spawn_scoped(scope, move || {
                    let mut mine = Outcome::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        match one(&(plan.url_for)(first + i), config, tls) {
                            Ok((took, negotiated)) => {
                                mine.done += 1;
                                mine.upgrade.record(took.as_nanos() as u64);
                                mine.negotiated = mine.negotiated.or(negotiated);
                            }
                            Err(e) => {
                                mine.errors += 1;
                                mine.first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    let mut all = outcome.lock().unwrap_or_else(|p| p.into_inner());
                    all.done += mine.done;
                    all.errors += mine.errors;
                    all.upgrade.merge(&mine.upgrade);
                    if all.first_error.is_none() {
                        all.first_error = mine.first_error;
                    }
                    if all.negotiated.is_none() {
                        all.negotiated = mine.negotiated;
                    }
                });
            if let Err(e) = spawned {
                let mut all = outcome.lock().unwrap_or_else(|p| p.into_inner());
                all.errors += 1;
                all.first_error
                    .get_or_insert_with(|| format!("cannot start a thread: {e}"));
            }
        }
    });
    outcome.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// CPU time (user + system, seconds) process `pid` has used so far, all
/// its threads (those that ended too), or `None` if it is gone.
fn process_cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks / hz.max(1) as f64)
}

pub fn run(plan: &Plan<'_>) -> ExitCode {
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let tls = plan.tls.as_ref().map(|tls| {
        let mut tls = ClientConfig::clone(tls);
        if !plan.resume {
            tls.resumption = rustls::client::Resumption::disabled();
        }
        Arc::new(tls)
    });
    let warm = batch(plan, &config, tls.as_ref(), 0, plan.warmup);
    if warm.errors > 0 {
        tracing::warn!(errors = warm.errors, first = ?warm.first_error, "errors during the warm-up");
    }
    let server0 = plan.server_pid.and_then(process_cpu_of);
    let cpu0 = crate::process_cpu();
    let t0 = Instant::now();
    let s = batch(plan, &config, tls.as_ref(), plan.warmup, plan.count);
    let elapsed = t0.elapsed().as_secs_f64();
    let client_cpu = crate::process_cpu() - cpu0;
    let server_cpu = match (server0, plan.server_pid.and_then(process_cpu_of)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    if let Some(e) = &s.first_error {
        tracing::warn!(errors = s.errors, first = %e, "errors during the run");
    }
    let rate = s.done as f64 / elapsed;
    let per = |cpu: f64| cpu * 1e6 / s.done.max(1) as f64;
    let us = |q: f64| s.upgrade.quantile(q) as f64 / 1e3;
    let (version, cipher) = s
        .negotiated
        .clone()
        .unwrap_or_else(|| ("none".to_owned(), "none".to_owned()));
    let server_us = server_cpu.map_or("-".to_owned(), |c| format!("{:.1}", per(c)));
    println!(
        "{} handshakes from {} threads: {rate:.0}/s, connect to 101 p50 {:.0} us p99 {:.0} us, \
         server CPU {server_us} us/handshake, generator CPU {:.1} us/handshake, {version} {cipher}, errors {}",
        s.done,
        plan.threads,
        us(0.5),
        us(0.99),
        per(client_cpu),
        s.errors
    );
    println!(
        "RESULT mode=handshakes handshakes={} threads={} resume={} duration_s={elapsed:.3} handshakes_per_s={rate:.1} \
         upgrade_p50_us={:.1} upgrade_p99_us={:.1} upgrade_max_us={:.1} server_cpu_s={} server_cpu_us_per_handshake={server_us} \
         client_cpu_s={client_cpu:.3} client_cpu_us_per_handshake={:.1} tls_version={version} cipher={cipher} errors={}",
        s.done,
        plan.threads,
        u8::from(plan.resume),
        us(0.5),
        us(0.99),
        s.upgrade.max() as f64 / 1e3,
        server_cpu.map_or("-".to_owned(), |c| format!("{c:.3}")),
        per(client_cpu),
        s.errors
    );
    if s.errors == 0 && s.done > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_read_from_proc() {
        let pid = std::process::id();
        let (proc0, own0) = (process_cpu_of(pid).unwrap(), crate::process_cpu());
        // Burn 200 ms of CPU (by getrusage's count), then /proc must agree
        // within its 10 ms ticks and the scheduler's accounting.
        let mut x = 0u64;
        while crate::process_cpu() - own0 < 0.2 {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let used = process_cpu_of(pid).unwrap() - proc0;
        assert!((0.15..0.5).contains(&used), "{used}");
        assert!(process_cpu_of(u32::MAX).is_none());
    }
}
