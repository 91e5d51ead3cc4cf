//! The state every connection shares: the settings taken from the command
//! line and the counters of open and live connections, with the guards
//! that release them.
//!
//! Kept apart from the accept loop ([`crate::server`]) so that the
//! connection code depends on this module only, never on the server that
//! starts it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Auth;
use crate::cli::Args;
use crate::error::{Error, Result};
use crate::flood::{PerIp, Rate};
use crate::gate::OriginPattern;
use crate::hub::Hub;
use crate::outlet::Limits;
use crate::pool::Pool;
use crate::workers::Workers;

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
    /// The limits every connection's outlet keeps.
    pub fn outlet_limits(&self) -> Limits {
        Limits {
            queue: self.send_queue,
            write_timeout: self.write_timeout,
            shutdown_timeout: self.shutdown_timeout,
        }
    }

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
    /// Finishes the writes sockets could not take at once.
    pub pool: Arc<Pool>,
    /// Connection threads, reused from one connection to the next.
    workers: Arc<Workers>,
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

/// Counts an accepted connection (handshaking or live); released on drop.
#[derive(Debug)]
pub struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    /// Shared state with `settings` and nobody connected; starts the
    /// writer pool's thread.
    pub fn new(settings: Settings) -> Result<Shared> {
        Ok(Shared {
            hub: Hub::new(),
            pool: Pool::start().map_err(Error::Pool)?,
            workers: Arc::new(Workers::new(settings.stack_size)),
            settings,
            live: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            per_ip: Arc::default(),
        })
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

    /// Count an accepted connection unless `limit` are open already.
    pub fn open_connection(self: &Arc<Self>, limit: usize) -> Option<OpenGuard> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| OpenGuard(Arc::clone(self)))
    }

    /// Accepted connections not yet finished.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Run `f` on a connection thread: an idle one, or a new one with
    /// the small per-connection stack ([`Workers`]).
    pub fn spawn<F>(&self, peer: SocketAddr, f: F) -> Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.workers
            .run(Box::new(f))
            .map_err(|source| Error::Spawn { peer, source })
    }
}
