//! One client connection, from the request head to the live session.
//!
//! The thread that runs [`handle`] reads the request head (within the
//! handshake deadline), answers plain HTTP itself, admits or refuses the
//! upgrade, and after the 101 becomes the connection's reader
//! ([`crate::live`]). It is the only thread a connection has: writes go
//! through its [`Outlet`], finished by the writer pool when the socket is
//! full. When [`handle`] returns, the connection is gone.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use tracing::{debug, info, warn};
use wsproto::{error_response, read_request, upgrade, Accept, Request, Response};

use crate::error::{Error, Result};
use crate::flood::IpGuard;
use crate::gate;
use crate::http::{is_timeout, plain_response, DeadlineReader};
use crate::hub::LoginError;
use crate::outlet::Outlet;
use crate::session::Session;
use crate::state::{Settings, Shared, SlotGuard};

/// Longest wait for a login to come back from the Redis stream before
/// the 101 (cluster mode; normally a round trip or two to Redis).
const CLUSTER_LOGIN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `Retry-After` (seconds) of a 429 for too many connections from one IP.
const RETRY_AFTER: &str = "10";

/// A connection's stream: plain TCP, or TLS with `--tls-cert`.
pub type Stream = wsproto::MaybeTlsStream;

/// Serve one accepted TCP connection to the end. Errors are logged with
/// the peer address; they never affect other connections.
pub fn handle(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>) {
    let stream = match &shared.settings.tls {
        None => Stream::Plain(stream),
        // The TLS handshake runs inside the first read of the request
        // head, so the handshake deadline covers it.
        Some(config) => match wsproto::tls::TlsStream::accept(stream, Arc::clone(config)) {
            Ok(tls) => Stream::Tls(Box::new(tls)),
            Err(e) => return warn!(%peer, error = %e, "cannot start TLS"),
        },
    };
    if let Err(e) = serve(stream, peer, shared) {
        warn!(%peer, error = %e, "connection failed");
    }
}

/// The steps of a connection: read the request head, answer plain HTTP,
/// admit the upgrade, start the live session.
fn serve(mut stream: Stream, peer: SocketAddr, shared: &Arc<Shared>) -> Result<()> {
    let settings = &shared.settings;
    stream.get_ref().set_nonblocking(false)?;
    stream.get_ref().set_nodelay(true)?;
    stream.set_write_timeout(Some(settings.write_timeout))?;
    let Some((request, leftover)) = read_head(&mut stream, peer, settings)? else {
        return Ok(());
    };
    if !request.is_upgrade() {
        let response = crate::admin::users_response(&request, shared)
            .unwrap_or_else(|| plain_response(&request, &settings.page_config));
        debug!(%peer, method = request.method(), path = request.path(), status = response.status, "http");
        response.write_to(&mut stream)?;
        return Ok(());
    }
    match admit(&request, peer, shared) {
        Ok(admitted) => start(stream, &request, leftover, admitted, peer, shared),
        Err((response, why)) => {
            // `why` never holds a token: refusals name the reason only.
            info!(%peer, status = response.status, "upgrade refused: {why}");
            crate::metrics::get().rejected(response.status);
            response.write_to(&mut stream)?;
            Ok(())
        }
    }
}

/// Read the request head within the handshake deadline (which covers the
/// TLS handshake too). `None` when there is nothing to serve: the error
/// was answered or logged here.
fn read_head(
    stream: &mut Stream,
    peer: SocketAddr,
    settings: &Settings,
) -> Result<Option<(Request, Vec<u8>)>> {
    let read = read_request(
        &mut DeadlineReader::new(&mut *stream, settings.handshake_timeout),
        &settings.ws,
    );
    match read {
        Ok(head) => Ok(Some(head)),
        Err(wsproto::Error::Io(e)) if is_timeout(&e) && tls_handshaking(stream) => {
            info!(%peer, "TLS handshake not complete within the handshake time-out; closing");
            Ok(None)
        }
        // Not TLS (plain HTTP or garbage on the TLS port), or a TLS
        // failure: nothing sensible to answer.
        Err(e @ (wsproto::Error::Tls(_) | wsproto::Error::Certificate(_))) => {
            debug!(%peer, error = %e, "TLS handshake failed; closing");
            Ok(None)
        }
        Err(wsproto::Error::Io(e)) if is_timeout(&e) => {
            info!(%peer, "request head not complete within the handshake time-out; closing");
            let _ = Response::text(408, "request head took too long").write_to(stream);
            Ok(None)
        }
        // Connected and left without a word (port probes, health checks).
        Err(wsproto::Error::UnexpectedEof) => Ok(None),
        Err(e) => {
            warn!(%peer, error = %e, "bad HTTP request");
            if e.http_status().is_some() {
                let _ = error_response(&e).write_to(stream);
            }
            Ok(None)
        }
    }
}

/// What an admitted upgrade holds until the connection ends.
struct Admitted {
    user: String,
    _per_ip: Option<IpGuard>,
    _slot: SlotGuard,
}

/// Decide whether this upgrade may go ahead: a well-formed upgrade, an
/// allowed Origin, a valid login, the per-IP limit, a free slot. A refusal
/// is the response to send and the reason to log.
fn admit(
    request: &Request,
    peer: SocketAddr,
    shared: &Arc<Shared>,
) -> std::result::Result<Admitted, (Response, String)> {
    let settings = &shared.settings;
    // Checked here so that a broken upgrade gets the precise error status
    // before the application's own checks (`upgrade` checks again).
    request
        .check_upgrade()
        .map_err(|e| (error_response(&e), e.to_string()))?;
    gate::check_origin(request, settings.own_scheme, &settings.allowed_origins)?;
    let user = gate::login(request, settings.auth.as_ref())?;
    let per_ip = match settings.max_per_ip {
        Some(max) => Some(shared.per_ip.acquire(peer.ip(), max).ok_or_else(|| {
            let why = format!("too many connections from {} (at most {max})", peer.ip());
            let response = Response::text(429, &why).with_header("Retry-After", RETRY_AFTER);
            (response, why)
        })?),
        None => None,
    };
    let slot = shared.acquire_slot().ok_or_else(|| {
        let why = "too many connections";
        (Response::text(503, why), why.to_owned())
    })?;
    Ok(Admitted {
        user,
        _per_ip: per_ip,
        _slot: slot,
    })
}

/// Log the user in, answer 101 and run the session on this thread until
/// the connection ends.
fn start(
    mut stream: Stream,
    request: &Request,
    leftover: Vec<u8>,
    admitted: Admitted,
    peer: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<()> {
    let settings = &shared.settings;
    let user: Arc<str> = Arc::from(admitted.user.as_str());
    let outlet = Outlet::new(
        shared.hub.next_id(),
        settings.outlet_limits(),
        Arc::clone(&shared.pool),
    );
    let id = outlet.id();
    // Log in before answering 101: a client that has seen the 101 receives
    // every message sent after that, with no window where it is connected
    // but not yet registered.
    match shared
        .hub
        .login(Session::new(Arc::clone(&user), peer, Arc::clone(&outlet)))
    {
        Ok(Some(old)) => info!(peer = %old.peer, conn = old.id, new_peer = %peer,
            "user {user} logged in elsewhere; closing the old connection with 4001"),
        Ok(None) => {}
        Err(LoginError::ShuttingDown) => {
            let why = "server is shutting down";
            info!(%peer, status = 503, "upgrade refused: {why}");
            Response::text(503, why).write_to(&mut stream)?;
            return Ok(());
        }
    }
    if let Some(cluster) = shared.hub.cluster() {
        // Cluster mode: answer 101 once the login is in the stream, so a
        // login that starts after this 101, on any node, wins over it.
        if !cluster.wait_login(id, CLUSTER_LOGIN_WAIT) {
            debug!(%peer, conn = id, "login not back from the stream in time; answering anyway");
        }
    }
    let started = upgrade(stream, request, Accept::default(), &settings.ws, leftover)
        .map_err(Error::from)
        .and_then(|ws| {
            if let Some(params) = ws.deflate_params() {
                debug!(%peer, ?params, "permessage-deflate negotiated");
            }
            // From now on nobody blocks on this socket: writes that do not
            // fit wait in the outlet, the reader waits in `poll`.
            ws.get_ref().get_ref().set_nonblocking(true)?;
            Ok(ws.split()?)
        });
    match started {
        Ok((reader, writer)) => {
            outlet.attach(writer);
            info!(%peer, conn = id, online = shared.hub.online(), "user {user} in");
            crate::live::run(reader, &outlet, &user, peer, shared);
            drop(admitted);
            Ok(())
        }
        Err(e) => {
            // The socket was closed when the failed step dropped it.
            shared.hub.logout(&user, id);
            outlet.end();
            Err(e)
        }
    }
}

/// Whether `stream` is TLS and its handshake has not finished.
fn tls_handshaking(stream: &Stream) -> bool {
    match stream {
        Stream::Tls(tls) => tls.is_handshaking(),
        _ => false,
    }
}

/// Write a 503 straight from the accept loop, best effort, for a
/// connection that cannot even get a thread.
pub fn refuse_overloaded(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let mut out = Vec::new();
    if Response::text(503, "server overloaded")
        .write_to(&mut out)
        .is_ok()
    {
        let _ = stream.write_all(&out);
    }
}
