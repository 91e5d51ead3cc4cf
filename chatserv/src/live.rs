//! A live connection's reader: the loop that turns incoming text into
//! broadcasts, keeps the connection alive and ends it.
//!
//! The socket is non-blocking (its writes must never wait), so the reader
//! waits for input in `poll(2)`, bounded by the next ping and the idle
//! deadline: this one thread also keeps the connection's keepalive
//! (RFC 6455 §5.5.2) and idle time-out, and no other thread exists for the
//! connection. Everything else hears from it only through the hub and the
//! [`Outlet`].

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use tracing::{debug, info, warn};
use wsproto::{CloseCode, CloseFrame, Message, WsReader};

use crate::connection::Stream;
use crate::flood::Bucket;
use crate::outlet::{GaveUp, Outlet};
use crate::state::Shared;

/// Close reason (with 1013) for a sender whose message cannot be queued
/// for the cluster (the outbox is full while Redis is unreachable).
pub const TRY_AGAIN_LATER: &str = "try again later";

/// Close reason for a client over `--rate-limit`.
pub const RATE_LIMITED: &str = "rate limit exceeded";

/// How a reader loop ended, for the log.
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

/// Run the session of `user` until the connection ends, then log it out
/// and log how it ended.
pub fn run(
    mut reader: WsReader<Stream>,
    outlet: &Arc<Outlet>,
    user: &Arc<str>,
    peer: SocketAddr,
    shared: &Shared,
) {
    let id = outlet.id();
    let end = read_loop(&mut reader, outlet, user, peer, shared);
    // The end of this loop must not remove a newer session of the same
    // user: `logout` checks the id.
    shared.hub.logout(user, id);
    let gave_up = outlet.end();
    match &end {
        End::Closed(None) | End::Gone(_) if gave_up.is_some() => {
            let (why, waited) = match gave_up {
                Some(GaveUp::Stalled(waited)) => {
                    ("the client took no data within the write time-out", waited)
                }
                Some(GaveUp::CloseReply(waited)) => ("no Close reply within its time-out", waited),
                None => ("", Duration::ZERO),
            };
            info!(%peer, conn = id, ?waited, "connection of {user} closed by the server: {why}")
        }
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

/// Wait until `reader`'s socket has input, or `timeout`. Returns whether
/// it has (an error or hang-up counts: the next read reports it).
fn wait_readable(reader: &WsReader<Stream>, timeout: Duration) -> std::io::Result<bool> {
    let socket = reader.get_ref().get_ref();
    let fd = socket.as_fd();
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    match poll(&mut fds, Some(&timeout)) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn read_loop(
    reader: &mut WsReader<Stream>,
    outlet: &Arc<Outlet>,
    user: &Arc<str>,
    peer: SocketAddr,
    shared: &Shared,
) -> End {
    let id = outlet.id();
    let settings = &shared.settings;
    let close = |code: CloseCode, reason: &str, wait_reply: bool| {
        outlet.request_close(code, reason, wait_reply);
    };
    let mut bucket = settings.rate.map(|(rate, burst)| Bucket::new(rate, burst));
    let mut limited = false;
    let mut next_ping = Instant::now() + settings.ping_interval;
    // The client's pong (or anything else it sends) moves this on.
    let mut last_input = Instant::now();
    loop {
        let read = reader.read();
        let now = Instant::now();
        if read.is_ok() {
            last_input = now;
        }
        if now >= next_ping {
            outlet.ping();
            next_ping = now + settings.ping_interval;
        }
        match read {
            Err(wsproto::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let idle_at = last_input + settings.idle_timeout;
                if now >= idle_at {
                    close(CloseCode::Error, "idle time-out", false);
                    return End::Idle;
                }
                match wait_readable(reader, next_ping.min(idle_at) - now) {
                    Ok(true) => last_input = Instant::now(),
                    Ok(false) => {}
                    Err(e) => return End::Gone(e.to_string()),
                }
            }
            // After the 1008, whatever still arrives before the client's
            // Close reply is dropped.
            Ok(Message::Text(_)) if limited => {}
            Ok(Message::Text(_)) if bucket.as_mut().is_some_and(|b| !b.take(now)) => {
                limited = true;
                info!(%peer, conn = id, "{user} exceeded the rate limit; closing with 1008");
                close(CloseCode::Policy, RATE_LIMITED, true);
            }
            Ok(Message::Text(text)) => {
                let line: Arc<str> = Arc::from(format!("{text} -- FROM {user}"));
                let result = shared.hub.broadcast(user, id, &line);
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
            // always the latest one (RFC 6455 §5.5.3); the socket may not
            // have taken the pong at once.
            Ok(Message::Ping(_)) => outlet.note_replies(),
            Ok(Message::Pong(_)) => {}
            Ok(Message::Close(frame)) => {
                // wsproto has echoed it (RFC 6455 §5.5.1) unless it was the
                // reply to our Close.
                outlet.set_peer_closed();
                outlet.note_replies();
                return End::Closed(frame);
            }
            Err(wsproto::Error::ConnectionClosed) => return End::Closed(None),
            // wsproto has sent the Close with the error's code itself.
            Err(e) if e.close_code().is_some() => {
                outlet.note_replies();
                if let Some(code) = e.close_code() {
                    crate::metrics::get().close(code.into());
                }
                return End::Failed(e);
            }
            Err(e) => return End::Gone(e.to_string()),
        }
    }
}
