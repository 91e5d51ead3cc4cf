//! One client connection: the HTTP request, the upgrade, and the reader
//! loop that turns incoming text into broadcasts.
//!
//! The thread that runs [`handle`] reads the request head (within the
//! handshake deadline), answers plain HTTP itself, and after an upgrade
//! becomes the connection's reader thread. It starts the writer thread
//! ([`crate::writer`]) and joins it before returning, so when it returns
//! the connection is completely gone.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use tracing::{debug, info, warn};
use wsproto::{error_response, read_request, upgrade, Accept};
use wsproto::{CloseCode, CloseFrame, Message, Response, WsReader};

use crate::error::{Error, Result};
use crate::flood::Bucket;
use crate::gate;
use crate::http::{is_timeout, plain_response, DeadlineReader};
use crate::hub::LoginError;
use crate::session::{Control, Outgoing, Session};
use crate::state::Shared;

/// `Retry-After` (seconds) of a 429 for too many connections from one IP.
const RETRY_AFTER: &str = "10";

/// Close reason (with 1013) for a sender whose message cannot be queued
/// for the cluster (the outbox is full while Redis is unreachable).
pub const TRY_AGAIN_LATER: &str = "try again later";

/// Close reason for a client over `--rate-limit`.
pub const RATE_LIMITED: &str = "rate limit exceeded";

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

fn serve(mut stream: Stream, peer: SocketAddr, shared: &Arc<Shared>) -> Result<()> {
    let settings = &shared.settings;
    stream.get_ref().set_nonblocking(false)?;
    stream.get_ref().set_nodelay(true)?;
    stream.set_write_timeout(Some(settings.write_timeout))?;

    let read = read_request(
        &mut DeadlineReader::new(&mut stream, settings.handshake_timeout),
        &settings.ws,
    );
    let (request, leftover) = match read {
        Ok(ok) => ok,
        Err(wsproto::Error::Io(e)) if is_timeout(&e) && tls_handshaking(&stream) => {
            info!(%peer, "TLS handshake not complete within the handshake time-out; closing");
            return Ok(());
        }
        // Not TLS (plain HTTP or garbage on the TLS port), or a TLS
        // failure: nothing sensible to answer.
        Err(e @ (wsproto::Error::Tls(_) | wsproto::Error::Certificate(_))) => {
            debug!(%peer, error = %e, "TLS handshake failed; closing");
            return Ok(());
        }
        Err(wsproto::Error::Io(e)) if is_timeout(&e) => {
            info!(%peer, "request head not complete within the handshake time-out; closing");
            let _ = Response::text(408, "request head took too long").write_to(&mut stream);
            return Ok(());
        }
        // Connected and left without a word (port probes, health checks).
        Err(wsproto::Error::UnexpectedEof) => return Ok(()),
        Err(e) => {
            warn!(%peer, error = %e, "bad HTTP request");
            if e.http_status().is_some() {
                let _ = error_response(&e).write_to(&mut stream);
            }
            return Ok(());
        }
    };

    if !request.is_upgrade() {
        let response = crate::admin::users_response(&request, shared)
            .unwrap_or_else(|| plain_response(&request, &settings.page_config));
        debug!(%peer, method = request.method(), path = request.path(), status = response.status, "http");
        response.write_to(&mut stream)?;
        return Ok(());
    }
    let refuse = |stream: &mut Stream, response: Response, why: &str| -> Result<()> {
        // `why` never holds a token: refusals name the reason only.
        info!(%peer, status = response.status, "upgrade refused: {why}");
        crate::metrics::get().rejected(response.status);
        response.write_to(stream)?;
        Ok(())
    };
    // Checked here so that a broken upgrade gets the precise error status
    // before the application's own checks (`upgrade` checks again).
    if let Err(e) = request.check_upgrade() {
        return refuse(&mut stream, error_response(&e), &e.to_string());
    }
    if let Err((response, why)) =
        gate::check_origin(&request, settings.own_scheme, &settings.allowed_origins)
    {
        return refuse(&mut stream, response, &why);
    }
    let user = match gate::login(&request, settings.auth.as_ref()) {
        Ok(user) => user,
        Err((response, why)) => return refuse(&mut stream, response, &why),
    };
    let _per_ip = match settings.max_per_ip {
        Some(max) => match shared.per_ip.acquire(peer.ip(), max) {
            Some(guard) => Some(guard),
            None => {
                let why = format!("too many connections from {} (at most {max})", peer.ip());
                let response = Response::text(429, &why).with_header("Retry-After", RETRY_AFTER);
                return refuse(&mut stream, response, &why);
            }
        },
        None => None,
    };
    let Some(slot) = shared.acquire_slot() else {
        let why = "too many connections";
        return refuse(&mut stream, Response::text(503, why), why);
    };

    let (tx, rx) = sync_channel(settings.send_queue);
    let conn = Conn {
        id: shared.hub.next_id(),
        user: Arc::from(user),
        peer,
        control: Arc::new(Control::default()),
        tx,
    };
    // Log in before answering 101: a client that has seen the 101 receives
    // every message sent after that, with no window where it is connected
    // but not yet registered.
    let session = Session::new(
        conn.id,
        Arc::clone(&conn.user),
        peer,
        conn.tx.clone(),
        Arc::clone(&conn.control),
    );
    match shared.hub.login(session) {
        Ok(Some(old)) => info!(peer = %old.peer, conn = old.id, new_peer = %peer,
            "user {} logged in elsewhere; closing the old connection with 4001", conn.user),
        Ok(None) => {}
        Err(LoginError::ShuttingDown) => {
            let why = "server is shutting down";
            return refuse(&mut stream, Response::text(503, why), why);
        }
    }
    let started = upgrade(stream, &request, Accept::default(), &settings.ws, leftover)
        .map_err(Error::from)
        .and_then(|mut ws| {
            // From now on the read time-out is the idle time-out (the pings
            // sent every ping interval make a live client answer well
            // within it).
            ws.get_mut().set_read_timeout(Some(settings.idle_timeout))?;
            if let Some(params) = ws.deflate_params() {
                debug!(%peer, ?params, "permessage-deflate negotiated");
            }
            Ok(ws.split()?)
        })
        .and_then(|(reader, writer)| {
            let socket = reader.get_ref().get_ref().try_clone()?;
            let control = Arc::clone(&conn.control);
            let ping_interval = settings.ping_interval;
            let shutdown_timeout = settings.shutdown_timeout;
            let thread = shared.spawn(peer, move || {
                crate::writer::run(writer, socket, rx, control, ping_interval, shutdown_timeout)
            })?;
            Ok((reader, thread))
        });
    match started {
        Ok((reader, writer_thread)) => {
            info!(%peer, conn = conn.id, online = shared.hub.online(), "user {} in", conn.user);
            run_session(reader, writer_thread, conn, shared);
            drop(slot);
            Ok(())
        }
        Err(e) => {
            // The socket was closed when the failed step dropped it.
            shared.hub.logout(&conn.user, conn.id);
            Err(e)
        }
    }
}

/// The parts of a live connection the reader thread keeps.
struct Conn {
    id: u64,
    user: Arc<str>,
    peer: SocketAddr,
    control: Arc<Control>,
    /// The reader's own sender, for pongs and wake-ups.
    tx: SyncSender<Outgoing>,
}

/// How a reader loop ended, for the log and for what the writer must do.
#[derive(Debug)]
enum End {
    /// The client sent a Close (first, or as the reply to ours).
    Closed(Option<CloseFrame>),
    /// Nothing arrived for the idle time-out.
    Idle,
    /// The TCP stream ended or failed without a Close.
    Gone(String),
    /// The client broke the protocol; wsproto sent the Close with the
    /// matching code.
    Failed(wsproto::Error),
}

fn run_session(
    mut reader: WsReader<Stream>,
    writer_thread: JoinHandle<()>,
    conn: Conn,
    shared: &Shared,
) {
    let end = read_loop(&mut reader, &conn, shared);
    let Conn {
        id,
        user,
        peer,
        control,
        tx,
    } = conn;

    // The end of this loop must not remove a newer session of the same
    // user: `logout` checks the id.
    shared.hub.logout(&user, id);
    let closing = control.pending_close().is_some();
    control.stop();
    if !closing {
        // Nothing left to say: unblock the writer if it is stuck in a write.
        let _ = reader.get_ref().get_ref().shutdown(Shutdown::Both);
    }
    let _ = tx.try_send(Outgoing::Wake);
    drop(tx);
    let _ = writer_thread.join();

    let gave_up = control.gave_up();
    match &end {
        End::Closed(None) | End::Gone(_) if gave_up.is_some() => info!(
            %peer, conn = id, waited = ?gave_up.unwrap_or_default(),
            "connection of {user} closed by the server: no Close reply within its time-out"),
        End::Closed(frame) => info!(
            %peer, conn = id,
            code = frame.as_ref().map(|f| u16::from(f.code)),
            reason = frame.as_ref().map(|f| f.reason.as_str()).unwrap_or(""),
            "connection of {user} closed"),
        End::Idle => info!(%peer, conn = id, "connection of {user} closed: idle time-out"),
        End::Gone(why) => info!(%peer, conn = id, why = %why, "connection of {user} closed"),
        End::Failed(e) => warn!(%peer, conn = id, error = %e,
            "connection of {user} closed: protocol error"),
    }
}

/// Read messages until the connection ends; every other thread only ever
/// hears from this one through the hub, the queue and the control block.
fn read_loop(reader: &mut WsReader<Stream>, conn: &Conn, shared: &Shared) -> End {
    let Conn {
        id,
        user,
        peer,
        control,
        tx,
    } = conn;
    let close = |code: CloseCode, reason: &str, wait_reply: bool| {
        if control.request_close(code, reason, wait_reply) {
            let _ = tx.try_send(Outgoing::Wake);
        }
    };
    let mut bucket = shared
        .settings
        .rate
        .map(|(rate, burst)| Bucket::new(rate, burst));
    let mut limited = false;
    loop {
        match reader.read() {
            // After the 1008, whatever still arrives before the client's
            // Close reply is dropped.
            Ok(Message::Text(_)) if limited => {}
            Ok(Message::Text(_))
                if bucket
                    .as_mut()
                    .is_some_and(|b| !b.take(std::time::Instant::now())) =>
            {
                limited = true;
                info!(%peer, conn = id, "{user} exceeded the rate limit; closing with 1008");
                close(CloseCode::Policy, RATE_LIMITED, true);
            }
            Ok(Message::Text(text)) => {
                let line: Arc<str> = Arc::from(format!("{text} -- FROM {user}"));
                let result = shared.hub.broadcast(user, *id, &line);
                for slow in &result.too_slow {
                    warn!(peer = %slow.peer, conn = slow.id,
                          "dropping {}: send queue full (client reads too slowly), close 1008",
                          slow.user);
                }
                if result.outbox_full {
                    warn!(%peer, conn = id,
                          "outbox full (redis unreachable): closing {user} with 1013");
                    crate::metrics::get().close(1013);
                    limited = true;
                    close(CloseCode::Other(1013), TRY_AGAIN_LATER, true);
                } else if result.sender_replaced {
                    debug!(%peer, conn = id, "message from a replaced session of {user} ignored");
                } else {
                    debug!(
                        conn = id,
                        delivered = result.delivered,
                        "message from {user}"
                    );
                }
            }
            Ok(Message::Binary(data)) => {
                info!(%peer, conn = id, bytes = data.len(),
                      "binary message from {user}; closing with 1003");
                close(
                    CloseCode::Unsupported,
                    "binary messages are not supported",
                    true,
                );
            }
            // wsproto answers pings itself, outside the chat queue, and
            // always the latest one (RFC 6455 §5.5.3).
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(frame)) => {
                // wsproto has echoed it (RFC 6455 §5.5.1) unless it was the
                // reply to our Close.
                control.set_peer_closed();
                return End::Closed(frame);
            }
            Err(wsproto::Error::ConnectionClosed) => return End::Closed(None),
            Err(wsproto::Error::Io(e)) if is_timeout(&e) => {
                close(CloseCode::Error, "idle time-out", false);
                return End::Idle;
            }
            // wsproto has sent the Close with the error's code itself.
            Err(e) if e.close_code().is_some() => {
                if let Some(code) = e.close_code() {
                    crate::metrics::get().close(code.into());
                }
                return End::Failed(e);
            }
            Err(e) => return End::Gone(e.to_string()),
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
