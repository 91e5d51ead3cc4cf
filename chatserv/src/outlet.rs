//! The sending side of one connection: its WebSocket writer, the messages
//! waiting for its socket, and the close the server asked for.
//!
//! There is no writer thread. The socket is non-blocking, and whoever has
//! something for the client writes it at once, under this outlet's lock:
//! a broadcast ([`Outlet::deliver`], the shared frame of a
//! [`PreparedMessage`] with no copy), a kick or shutdown
//! ([`Outlet::request_close`]), the reader's keepalive ([`Outlet::ping`]).
//! The lock is held only for non-blocking writes, never while waiting.
//!
//! When the socket does not take everything, the rest stays queued in
//! wsproto (whole frames, resumed at the exact byte) and the outlet asks
//! the [writer pool](crate::pool) to finish when the socket is writable;
//! until then new messages wait in a queue of at most `--send-queue`
//! messages (shared, reference-counted frames). A full queue means the
//! client reads too slowly: [`QueueError::Full`], and the hub closes it
//! with 1008. A socket that takes nothing for `--write-timeout` is cut.
//!
//! Order: one sender's messages reach each recipient in the order sent,
//! because one reader thread delivers them one after the other and each
//! outlet writes (or queues) in the order it is called.

use std::collections::VecDeque;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wsproto::{CloseCode, Message, PreparedMessage, WsWriter};

use crate::connection::Stream;
use crate::pool::Pool;

/// How long to wait for the client's Close reply to a Close the server
/// started before closing the TCP connection anyway (RFC 6455 §7.1.1 lets
/// the server close first). The 1001 Close of a shutdown waits
/// `--shutdown-timeout` instead.
pub const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Queued messages moved into wsproto's buffer per step: enough to fill a
/// socket buffer in one `send`, few enough to keep the copy small.
const BATCH: usize = 64;

/// Why a message could not be queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is full: the client reads too slowly.
    Full,
    /// The connection is closing or gone.
    Gone,
}

/// Why the server cut a connection without the close handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// No Close reply came within this time.
    CloseReply(Duration),
    /// The client took no data for this long (`--write-timeout`).
    Stalled(Duration),
}

/// Limits of every outlet.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages that may wait while the socket is full.
    pub queue: usize,
    /// How long a socket may take no data while output is pending.
    pub write_timeout: Duration,
    /// How long the 1001 Close of a shutdown waits for the reply.
    pub shutdown_timeout: Duration,
}

#[derive(Debug)]
struct State {
    /// `None` until the upgrade ([`Outlet::attach`]) and again once the
    /// connection is over and its last bytes are out.
    writer: Option<WsWriter<Stream>>,
    /// The socket's descriptor, valid while `writer` is `Some`.
    fd: RawFd,
    /// [`Outlet::attach`] was called.
    attached: bool,
    /// A close asked for before the upgrade finished, done at `attach`.
    early_close: Option<(CloseCode, String, bool)>,
    /// Messages for the client while the socket is full.
    queue: VecDeque<PreparedMessage>,
    /// The pool waits for this socket to become writable.
    watching: bool,
    /// When the socket last took data while output was pending.
    last_progress: Instant,
    /// When the pending stall check is due, if one is scheduled.
    stall_check: Option<Instant>,
    /// The close asked for (the first one wins) and whether to wait for
    /// the peer's reply.
    close: Option<bool>,
    /// Give up on the Close reply at this time.
    close_deadline: Option<(Instant, Duration)>,
    /// The peer's Close frame has been read.
    peer_closed: bool,
    /// The reader has ended: flush what is left, then let go.
    ended: bool,
    /// The socket was shut down (both ways).
    shut: bool,
    gave_up: Option<GaveUp>,
}

/// One connection's sending side (see the [module docs](self)).
#[derive(Debug)]
pub struct Outlet {
    id: u64,
    limits: Limits,
    pool: Arc<Pool>,
    state: Mutex<State>,
}

fn is_retryable(e: &wsproto::Error) -> bool {
    matches!(e, wsproto::Error::Io(io)
        if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

impl Outlet {
    /// The outlet of connection `id`. Until [`Outlet::attach`] gives it
    /// the writer, messages wait in its queue: the user is logged in
    /// before the 101 goes out, so that a client that has seen the 101
    /// misses nothing sent after it.
    pub fn new(id: u64, limits: Limits, pool: Arc<Pool>) -> Arc<Outlet> {
        Arc::new(Outlet {
            id,
            limits,
            pool,
            state: Mutex::new(State {
                writer: None,
                fd: -1,
                attached: false,
                early_close: None,
                queue: VecDeque::new(),
                watching: false,
                last_progress: Instant::now(),
                stall_check: None,
                close: None,
                close_deadline: None,
                peer_closed: false,
                ended: false,
                shut: false,
                gave_up: None,
            }),
        })
    }

    /// Start writing with `writer` (whose socket must be non-blocking):
    /// what was queued meanwhile goes out first, then any close asked for
    /// meanwhile.
    pub fn attach(self: &Arc<Self>, writer: WsWriter<Stream>) {
        let mut s = self.lock();
        s.fd = writer.with_stream(|w| w.get_ref().as_raw_fd());
        s.writer = Some(writer);
        s.attached = true;
        if let Some((code, reason, wait_reply)) = s.early_close.take() {
            s.close = None;
            drop(s);
            self.request_close(code, &reason, wait_reply);
            return;
        }
        if self.pump(&mut s).is_err() {
            return self.shut_down(&mut s);
        }
        self.settle(&mut s);
    }

    /// The connection id.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it;
        // the state is still consistent enough to close the connection.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send `message` to the client, or queue it while the socket is full.
    pub fn deliver(self: &Arc<Self>, message: &PreparedMessage) -> Result<(), QueueError> {
        let mut s = self.lock();
        if s.close.is_some() || s.ended || s.shut {
            return Err(QueueError::Gone);
        }
        if s.watching || !s.attached {
            if s.queue.len() >= self.limits.queue {
                return Err(QueueError::Full);
            }
            s.queue.push_back(message.clone());
            return Ok(());
        }
        let Some(writer) = s.writer.as_mut() else {
            return Err(QueueError::Gone);
        };
        match writer.send_prepared(message) {
            Ok(()) => {}
            // Queued in wsproto: the pool finishes it.
            Err(e) if is_retryable(&e) => {}
            Err(wsproto::Error::WriteBufferFull) => s.queue.push_back(message.clone()),
            Err(_) => {
                self.shut_down(&mut s);
                return Err(QueueError::Gone);
            }
        }
        self.settle(&mut s);
        Ok(())
    }

    /// Send a Ping (RFC 6455 §5.5.2), the keepalive the reader asks for
    /// every ping interval; skipped once a close has started.
    pub fn ping(self: &Arc<Self>) {
        let mut s = self.lock();
        if s.close.is_some() || s.ended || s.shut {
            return;
        }
        let watching = s.watching;
        let Some(writer) = s.writer.as_mut() else {
            return;
        };
        let sent = match writer.write(Message::Ping(Vec::new())) {
            Ok(()) if !watching => writer.flush(),
            other => other,
        };
        match sent {
            Ok(()) => {}
            Err(e) if is_retryable(&e) => {}
            Err(_) => return self.shut_down(&mut s),
        }
        self.settle(&mut s);
    }

    /// Ask the client to close with `code` and `reason`: queued messages
    /// not yet written are dropped, the Close follows what is already on
    /// its way. With `wait_reply`, the peer's Close reply (RFC 6455
    /// §7.1.2) is awaited for a bounded time, then the socket is shut
    /// down; without, the socket is shut down once the Close is out.
    /// Returns false if a close was already asked for (the first wins).
    pub fn request_close(
        self: &Arc<Self>,
        code: CloseCode,
        reason: &str,
        wait_reply: bool,
    ) -> bool {
        let mut s = self.lock();
        if s.close.is_some() || s.ended {
            return false;
        }
        s.close = Some(wait_reply);
        s.queue.clear();
        if !s.attached {
            s.early_close = Some((code, reason.to_owned(), wait_reply));
            return true;
        }
        if let Some(writer) = s.writer.as_mut() {
            // A no-op when wsproto already sent a Close (the echo of the
            // client's, or the one failing a protocol error).
            match writer.close(code, reason) {
                Ok(()) => {}
                Err(e) if is_retryable(&e) => {}
                Err(_) => {
                    self.shut_down(&mut s);
                    return true;
                }
            }
        }
        if wait_reply && !s.peer_closed {
            let wait = if code == CloseCode::Away {
                self.limits.shutdown_timeout
            } else {
                CLOSE_REPLY_TIMEOUT
            };
            let at = Instant::now() + wait;
            s.close_deadline = Some((at, wait));
            self.pool.schedule(self, at);
        }
        self.settle(&mut s);
        true
    }

    /// The peer's Close has been read (wsproto has answered it).
    pub fn set_peer_closed(&self) {
        self.lock().peer_closed = true;
    }

    /// After the reader read a ping or a Close, or failed: wsproto may
    /// have queued an answer the socket did not take; make sure it goes.
    pub fn note_replies(self: &Arc<Self>) {
        let mut s = self.lock();
        self.settle(&mut s);
    }

    /// The reader has ended. What is already queued in wsproto (the echo
    /// of a Close, say) is still written out, by the pool if need be,
    /// within the write time-out; then the socket is released. Returns
    /// why the server gave up on the connection, if it did.
    pub fn end(self: &Arc<Self>) -> Option<GaveUp> {
        let mut s = self.lock();
        s.ended = true;
        s.queue.clear();
        self.settle(&mut s);
        s.gave_up
    }

    /// The pool: the socket is writable again.
    pub fn on_writable(self: &Arc<Self>) {
        let mut s = self.lock();
        if !s.watching {
            return;
        }
        s.last_progress = Instant::now();
        if self.pump(&mut s).is_err() {
            return self.shut_down(&mut s);
        }
        self.settle(&mut s);
    }

    /// Write out wsproto's buffer, then the queue, batch by batch, until
    /// the socket stops taking data or all is written. `Err` when the
    /// connection failed.
    fn pump(&self, s: &mut State) -> Result<(), ()> {
        loop {
            let Some(writer) = s.writer.as_mut() else {
                return Ok(());
            };
            match writer.flush() {
                Ok(()) => {}
                Err(e) if is_retryable(&e) => return Ok(()),
                Err(_) => return Err(()),
            }
            if s.queue.is_empty() {
                return Ok(());
            }
            let n = s.queue.len().min(BATCH);
            for message in s.queue.drain(..n) {
                match writer.write_prepared(&message) {
                    Ok(()) => {}
                    Err(e) if is_retryable(&e) => {}
                    Err(_) => return Err(()),
                }
            }
        }
    }

    /// The pool: a time limit of this outlet may have passed.
    pub fn on_deadline(self: &Arc<Self>, now: Instant) {
        let mut s = self.lock();
        if s.shut {
            return;
        }
        if let Some((at, wait)) = s.close_deadline {
            if now >= at && !s.peer_closed && !s.ended {
                s.gave_up = Some(GaveUp::CloseReply(wait));
                return self.shut_down(&mut s);
            }
        }
        if s.stall_check.is_some_and(|at| now >= at) {
            s.stall_check = None;
            if s.watching {
                let due = s.last_progress + self.limits.write_timeout;
                if now >= due {
                    s.gave_up = Some(GaveUp::Stalled(self.limits.write_timeout));
                    return self.shut_down(&mut s);
                }
                s.stall_check = Some(due);
                self.pool.schedule(self, due);
            }
        }
    }

    /// Bring the pool in or let it go, after any write: watch the socket
    /// while output is pending; shut it down once a Close that needs no
    /// reply is out; release the writer once the reader has ended and
    /// nothing is left to write.
    fn settle(self: &Arc<Self>, s: &mut State) {
        if !s.attached {
            // Nothing can be written yet; the queue waits for `attach`.
            return;
        }
        let pending =
            !s.queue.is_empty() || s.writer.as_ref().is_some_and(|w| w.has_pending_output());
        if pending && !s.watching && !s.shut {
            if self.pool.watch(self, s.fd).is_err() {
                return self.shut_down(s);
            }
            s.watching = true;
            s.last_progress = Instant::now();
            if s.stall_check.is_none() {
                let at = s.last_progress + self.limits.write_timeout;
                s.stall_check = Some(at);
                self.pool.schedule(self, at);
            }
        } else if !pending && s.watching {
            self.pool.unwatch(self.id, s.fd);
            s.watching = false;
        }
        if !pending && !s.shut && s.close == Some(false) {
            // The Close is out and no reply is awaited (a stalled or
            // misbehaving client): end the TCP connection.
            self.shut_down(s);
        }
        if s.ended && (!pending || s.shut) {
            if s.watching {
                self.pool.unwatch(self.id, s.fd);
                s.watching = false;
            }
            // The last reference to the socket besides the reader's,
            // which is dropped as the reader thread ends.
            s.writer = None;
        }
    }

    /// Shut the socket down both ways: wakes the reader (its next read
    /// ends), stops all writing. Whatever is queued is dropped.
    fn shut_down(self: &Arc<Self>, s: &mut State) {
        if s.watching {
            self.pool.unwatch(self.id, s.fd);
            s.watching = false;
        }
        s.queue.clear();
        s.shut = true;
        if let Some(writer) = &s.writer {
            writer.with_stream(|w| {
                let _ = w.get_ref().shutdown(Shutdown::Both);
            });
        }
        if s.ended {
            s.writer = None;
        }
    }
}
