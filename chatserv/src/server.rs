//! The accept loop and the orderly shutdown.

use std::io::{self, Read, Write};
use std::net::{Shutdown as TcpShutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::auth::Auth;
use crate::capacity::{self, Capacity, Limits, Resource, PER_CONNECTION};
use crate::cli::Args;
use crate::connection;
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use crate::state::{Settings, Shared, DEFLATE_STACK_SIZE};

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Accepted TCP connections (handshaking or live) beyond `max_connections`
/// that still get a thread; past that, connections get a 503 from the
/// accept loop itself. Keeps a flood of half-open handshakes from
/// exhausting threads.
const HANDSHAKE_SLACK: usize = 256;
/// At most one warning per kind of refusal in this interval: at thousands
/// of connections a second, one line each would drown the log (and cost
/// the accept loop its time).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// `Retry-After` (seconds) of a 503 from the accept loop.
const RETRY_AFTER: &str = "5";

/// Bind, serve until a shutdown signal, then close every client with 1001
/// and wait up to `shutdown_timeout` for them.
pub fn run(args: &Args, signals: Shutdown) -> Result<()> {
    let secret =
        crate::auth::load_secret(args.auth_secret_file.as_deref()).map_err(Error::Config)?;
    let auth = secret.map(|key| Auth::new(key, args.auth_audience.clone()));
    if auth.is_none() && args.auth_audience.is_some() {
        return Err(Error::Config(
            "--auth-audience needs --auth-secret-file (or CHATSERV_AUTH_SECRET)".into(),
        ));
    }
    let mut settings = Settings::from_args(args, auth);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        settings.tls = Some(wsproto::tls::server_config_from_pem_files(cert, key)?);
        // The TLS handshake (ring's key exchange and signature) runs on
        // the connection thread: give it the larger stack.
        settings.stack_size = settings.stack_size.max(DEFLATE_STACK_SIZE);
        // Pages are served over https: that is this server's own origin.
        settings.own_scheme = "https";
    }
    let open_limit = fit_to_capacity(&mut settings)?;
    let listener = TcpListener::bind(args.listen).map_err(|source| Error::Bind {
        addr: args.listen,
        source,
    })?;
    let local = listener.local_addr()?;
    let stop = signals.flag();
    // `accept` blocks; the signal thread wakes it with a connection.
    signals.watch(local)?;
    let signed = settings.auth.is_some();
    let tls = settings.tls.is_some();
    let shared = Arc::new(Shared::new(settings)?);
    // Cluster mode and the admin port (both off by default).
    crate::cluster::start(&args.cluster, &args.id, &shared)?;
    crate::admin::start(&args.admin, &shared)?;
    info!(id = %args.id, listen = ?local.to_string(), signed_logins = signed, tls, "started");
    if !signed {
        warn!(
            "logins are not signed: anyone can take any name with ?user=NAME; give \
             --auth-secret-file (see chatserv --help) before exposing this server"
        );
    }

    let mut refusals = Refusals::default();
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            break;
        }
        match accepted {
            Ok((stream, peer)) => {
                start_connection(stream, peer, &shared, open_limit, &mut refusals)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of file descriptors (EMFILE, ENFILE), aborted
                // handshakes...: transient. Pause so that a persistent
                // error does not spin; the client waits in the backlog.
                if let Some(suppressed) = refusals.accept_failed.ready() {
                    warn!(error = %e, suppressed, "accept failed; pausing accepts briefly");
                }
                std::thread::sleep(ACCEPT_ERROR_PAUSE);
            }
        }
    }
    drop(listener);

    let clients = shared.hub.shutdown();
    info!(id = %args.id, clients, "shutting down: closing every client with 1001");
    // The writers wait up to shutdown_timeout for each Close reply; give
    // them a moment beyond that to finish and log.
    let deadline = Instant::now() + args.shutdown_timeout + Duration::from_millis(200);
    while shared.open_connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = shared.open_connections();
    if left > 0 {
        warn!(id = %args.id, left, "connections still open at the shutdown deadline");
    }
    info!(id = %args.id, "stopped");
    Ok(())
}

/// Raise the `RLIMIT_NOFILE` soft limit, work out what this machine can
/// hold ([`capacity`]), log it, and lower `settings.max_connections` to
/// it with a warning naming the knob that would raise it. Returns the most
/// connections (handshaking or live) that may hold a thread at once.
///
/// Lowered rather than refused, even when `--max-connections` was given
/// explicitly: the default must keep working on small machines, the same
/// command line may run on hosts with different limits, and a server
/// holding what fits beats one that does not start. Only a machine that
/// cannot hold a single connection stops the server.
fn fit_to_capacity(settings: &mut Settings) -> Result<usize> {
    match capacity::raise_nofile() {
        Ok(raise) if raise.from != raise.to => info!(
            from = ?raise.from,
            to = ?raise.to,
            "raised the RLIMIT_NOFILE soft limit to the hard limit"
        ),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot raise the RLIMIT_NOFILE soft limit; keeping it"),
    }
    let cap = Capacity::compute(
        &Limits::read(),
        &if settings.ws.deflate.is_some() {
            PER_CONNECTION.with_deflate()
        } else {
            PER_CONNECTION
        },
        settings.stack_size,
        HANDSHAKE_SLACK,
    );
    let bound_by = cap.bound_by.map_or("nothing", Resource::name);
    info!(
        max_connections = cap.max_connections,
        total = cap.total,
        bound_by,
        "capacity: {cap}"
    );
    if cap.max_connections == 0 {
        return Err(Error::Config(format!(
            "this machine cannot hold a single connection ({cap}); to allow some: {}",
            cap.knob(1).unwrap_or_default()
        )));
    }
    if let Some(knob) = cap.knob(settings.max_connections) {
        warn!(
            requested = settings.max_connections,
            max_connections = cap.max_connections,
            bound_by,
            "--max-connections lowered to what this machine can hold; to allow more: {knob}"
        );
        settings.max_connections = cap.max_connections;
    }
    Ok(settings
        .max_connections
        .saturating_add(HANDSHAKE_SLACK)
        .min(cap.total))
}

/// Lets a warning through at most once per [`REFUSAL_LOG_INTERVAL`],
/// counting the ones it held back.
#[derive(Debug, Default)]
struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// `Some(held back since the last one)` if a warning may be logged now.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The accept loop's rate-limited warnings.
#[derive(Debug, Default)]
struct Refusals {
    overloaded: LogLimiter,
    spawn_failed: LogLimiter,
    accept_failed: LogLimiter,
}

/// Give an accepted connection its thread, or answer 503: when
/// `open_limit` connections hold one, or when the thread cannot be started
/// (EAGAIN, ENOMEM: a thread or memory limit was reached after all).
fn start_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    open_limit: usize,
    refusals: &mut Refusals,
) {
    let Some(guard) = shared.open_connection(open_limit) else {
        if let Some(suppressed) = refusals.overloaded.ready() {
            warn!(%peer, suppressed, "too many open connections; refusing with 503");
        }
        crate::metrics::get().rejected(503);
        connection::refuse_overloaded(stream);
        return;
    };
    // The stream goes to the thread through this slot so that it is still
    // here when the thread cannot start (`spawn` drops the closure then).
    let slot = Arc::new(Mutex::new(Some(stream)));
    let theirs = Arc::clone(&slot);
    let conn_shared = Arc::clone(shared);
    let spawned = shared.spawn(peer, move || {
        let _guard = guard;
        let stream = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(theirs);
        if let Some(stream) = stream {
            connection::handle(stream, peer, &conn_shared);
        }
    });
    if let Err(e) = spawned {
        crate::metrics::get().rejected(503);
        if let Some(suppressed) = refusals.spawn_failed.ready() {
            warn!(%peer, error = %e, suppressed, open = shared.open_connections(),
                "cannot start a connection thread; answering 503 (a thread, pid or memory \
                 limit was reached: see the capacity line at start-up)");
        }
        let stream = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(stream) = stream {
            refuse_unstarted(stream);
        }
    }
}

/// Answer 503 on a connection whose thread could not start, from the
/// accept loop, without blocking it. What the client sent already is read
/// first: closing a socket with unread data sends a reset, which can
/// destroy the answer before the client reads it.
fn refuse_unstarted(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    discard_pending(&mut stream);
    let mut out = Vec::new();
    let response = wsproto::Response::text(503, "server overloaded: cannot start a thread")
        .with_header("Retry-After", RETRY_AFTER);
    if response.write_to(&mut out).is_ok() {
        let _ = stream.write_all(&out);
    }
    let _ = stream.shutdown(TcpShutdown::Write);
    discard_pending(&mut stream);
}

/// Read and drop what has arrived on a non-blocking stream (a request head
/// or so; bounded, never waits).
fn discard_pending(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    for _ in 0..4 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}
