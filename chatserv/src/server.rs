//! The accept loop and the orderly shutdown.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::auth::Auth;
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

fn start_connection(stream: std::net::TcpStream, peer: SocketAddr, shared: &Arc<Shared>) {
    let limit = shared
        .settings
        .max_connections
        .saturating_add(HANDSHAKE_SLACK);
    let Some(guard) = shared.open_connection(limit) else {
        warn!(%peer, "too many open connections; refusing with 503");
        connection::refuse_overloaded(stream);
        return;
    };
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
