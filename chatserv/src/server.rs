//! The accept loop, the state shared by all connections, and the orderly
//! shutdown.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::auth::Auth;
use crate::cli::Args;
use crate::connection;
use crate::error::{Error, Result};
use crate::flood::{PerIp, Rate};
use crate::gate::OriginPattern;
use crate::hub::Hub;
use crate::shutdown::Shutdown;

/// Stack size of every per-connection thread. Two threads per client;
/// with the default 2 MiB (mostly untouched, but reserved address space and
/// page tables), ten thousand clients would reserve 40 GiB. Nothing on these
/// threads keeps large buffers on the stack: frame buffers live on the heap.
/// Measured: every test passes with 40 KiB in a debug build (which uses
/// more stack than release), so 64 KiB leaves a margin.
pub const STACK_SIZE: usize = 64 * 1024;

/// Stack size when permessage-deflate may be negotiated: setting up the
/// zlib state needs more than 56 KiB in a debug build. Small next to the
/// few hundred KiB of zlib state such a connection keeps anyway.
pub const DEFLATE_STACK_SIZE: usize = 256 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepted TCP connections (handshaking or live) beyond `max_connections`
/// that still get a thread; past that, connections get a 503 from the
/// accept loop itself. Keeps a flood of half-open handshakes from
/// exhausting threads.
const HANDSHAKE_SLACK: usize = 256;

/// Limits and time-outs every connection uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// See [`Args::ping_interval`].
    pub ping_interval: Duration,
    /// See [`Args::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`Args::handshake_timeout`].
    pub handshake_timeout: Duration,
    /// See [`Args::write_timeout`].
    pub write_timeout: Duration,
    /// See [`Args::max_connections`].
    pub max_connections: usize,
    /// See [`Args::send_queue`].
    pub send_queue: usize,
    /// Limits of the WebSocket layer.
    pub ws: wsproto::Config,
    /// Stack size of connection threads.
    pub stack_size: usize,
    /// How long to wait for the Close reply when the server shuts down
    /// (see [`Args::shutdown_timeout`]).
    pub shutdown_timeout: Duration,
    /// Signed logins, if a secret was given.
    pub auth: Option<Auth>,
    /// See [`Args::allowed_origin`].
    pub allowed_origins: Vec<OriginPattern>,
    /// The scheme of this server's own origin: `http` on plain TCP (TLS
    /// makes it `https`). An `Origin` must match it (with the `Host`
    /// header) or an allowed origin.
    pub own_scheme: &'static str,
    /// Per-connection message rate and burst, if limited.
    pub rate: Option<(Rate, u32)>,
    /// See [`Args::max_connections_per_ip`].
    pub max_per_ip: Option<usize>,
    /// The JSON served as `/config` to the page.
    pub page_config: String,
    /// With `--tls-cert`/`--tls-key`: every connection is TLS (https, wss).
    pub tls: Option<Arc<wsproto::tls::rustls::ServerConfig>>,
}

impl Settings {
    /// Settings from the command line; `auth` from the secret, if any.
    pub fn from_args(args: &Args, auth: Option<Auth>) -> Settings {
        Settings {
            page_config: crate::http::config_json(args.max_message_size, auth.is_some()),
            shutdown_timeout: args.shutdown_timeout,
            auth,
            allowed_origins: args.allowed_origin.clone(),
            own_scheme: "http",
            rate: args
                .rate_limit
                .map(|rate| (rate, args.burst.unwrap_or(rate.count))),
            max_per_ip: args.max_connections_per_ip.map(|n| n as usize),
            ping_interval: args.ping_interval,
            idle_timeout: args.idle_timeout,
            handshake_timeout: args.handshake_timeout,
            write_timeout: args.write_timeout,
            max_connections: args.max_connections,
            send_queue: args.send_queue as usize,
            ws: wsproto::Config {
                max_message_size: args.max_message_size,
                max_frame_size: args.max_message_size,
                deflate: args.deflate().then(wsproto::DeflateConfig::default),
                ..wsproto::Config::default()
            },
            stack_size: if args.deflate() {
                DEFLATE_STACK_SIZE
            } else {
                STACK_SIZE
            },
            tls: None,
        }
    }
}

/// State shared by the accept loop and every connection thread.
#[derive(Debug)]
pub struct Shared {
    /// Logged-in users.
    pub hub: Hub,
    /// Limits and time-outs.
    pub settings: Settings,
    /// Upgraded WebSocket connections.
    live: AtomicUsize,
    /// Connection threads (handshaking or live).
    open: AtomicUsize,
    /// Live connections per client IP.
    pub per_ip: Arc<PerIp>,
}

/// One of the `max_connections` WebSocket slots; released on drop.
#[derive(Debug)]
pub struct SlotGuard(Arc<Shared>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a connection thread; released on drop.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    /// Shared state with `settings` and nobody connected.
    pub fn new(settings: Settings) -> Shared {
        Shared {
            hub: Hub::new(),
            settings,
            live: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            per_ip: Arc::default(),
        }
    }

    /// Take a WebSocket slot, or `None` if `max_connections` are live.
    pub fn acquire_slot(self: &Arc<Self>) -> Option<SlotGuard> {
        let max = self.settings.max_connections;
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| SlotGuard(Arc::clone(self)))
    }

    /// Start a thread with the small per-connection stack.
    pub fn spawn<F>(&self, peer: SocketAddr, f: F) -> Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        std::thread::Builder::new()
            .name(format!("conn {peer}"))
            .stack_size(self.settings.stack_size)
            .spawn(f)
            .map_err(|source| Error::Spawn { peer, source })
    }
}

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
    let shared = Arc::new(Shared::new(settings));
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

    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            break;
        }
        match accepted {
            Ok((stream, peer)) => start_connection(stream, peer, &shared),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of file descriptors, aborted handshakes...: transient.
                // Pause so that a persistent error does not spin.
                warn!(error = %e, "accept failed");
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
    while shared.open.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = shared.open.load(Ordering::Acquire);
    if left > 0 {
        warn!(id = %args.id, left, "connections still open at the shutdown deadline");
    }
    info!(id = %args.id, "stopped");
    Ok(())
}

fn start_connection(stream: std::net::TcpStream, peer: SocketAddr, shared: &Arc<Shared>) {
    let limit = shared
        .settings
        .max_connections
        .saturating_add(HANDSHAKE_SLACK);
    if shared.open.load(Ordering::Acquire) >= limit {
        warn!(%peer, "too many open connections; refusing with 503");
        connection::refuse_overloaded(stream);
        return;
    }
    shared.open.fetch_add(1, Ordering::AcqRel);
    let guard = OpenGuard(Arc::clone(shared));
    let conn_shared = Arc::clone(shared);
    let spawned = shared.spawn(peer, move || {
        let _guard = guard;
        connection::handle(stream, peer, &conn_shared);
    });
    if let Err(e) = spawned {
        // The closure (and with it the guard and the stream) was dropped.
        warn!(%peer, error = %e, "connection dropped");
    }
}
