//! What other threads may hold of a connection: the sending end of its
//! bounded queue and a small control block to ask it to close.
//!
//! A connection has one reader thread and one writer thread. Chat lines and
//! the Closes the server decides on go through the writer thread; the
//! replies the protocol owes (pongs, the echo of a Close, the Close failing
//! a protocol error) are sent by wsproto's split halves themselves, never
//! interleaved with a frame in progress. Other threads (a broadcasting
//! reader, the hub kicking a duplicate login, the shutdown code) only
//! `try_send` into the queue or set a flag here.

use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use wsproto::{CloseCode, CloseFrame};

/// Close code sent to the older connection when the same name logs in again
/// (private-use range 4000-4999, RFC 6455 §7.4.2).
pub const LOGGED_IN_ELSEWHERE: u16 = 4001;

/// An item in a connection's send queue.
#[derive(Debug)]
pub enum Outgoing {
    /// A chat line, shared by all recipients of one broadcast.
    Text(Arc<str>),
    /// Nothing to send: look at the [`Control`] block.
    Wake,
}

/// A close the writer thread is asked to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// Code and reason to send; `None` for an empty Close (the echo of a
    /// Close that carried no code, RFC 6455 §5.5.1).
    pub frame: Option<CloseFrame>,
    /// Whether to wait (bounded) for the peer's Close reply before closing
    /// the TCP connection, as the close handshake asks (RFC 6455 §7.1.2).
    /// Not worth it for a peer that is dead, stalled or broke the protocol.
    pub wait_reply: bool,
}

#[derive(Debug, Default)]
struct State {
    /// First close asked for; later requests are ignored.
    close: Option<CloseRequest>,
    /// The peer's Close frame has been read.
    peer_closed: bool,
    /// The reader is gone: the writer should stop without a Close.
    stop: bool,
    /// The writer stopped waiting for the peer's Close reply after this
    /// long (a time-out the server chose, not the peer's failure).
    gave_up: Option<std::time::Duration>,
}

/// Flags shared by the reader, the writer and anyone who wants the
/// connection closed. The lock is held only to read or set these fields,
/// never across I/O.
#[derive(Debug, Default)]
pub struct Control {
    state: Mutex<State>,
    changed: Condvar,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it;
        // the flags are still meaningful.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ask for a close with `code` and `reason`. Returns false if a close
    /// was already asked for (the first one wins).
    pub fn request_close(&self, code: CloseCode, reason: &str, wait_reply: bool) -> bool {
        self.request(Some(CloseFrame::new(code, reason)), wait_reply)
    }

    fn request(&self, frame: Option<CloseFrame>, wait_reply: bool) -> bool {
        let mut state = self.lock();
        if state.close.is_some() {
            return false;
        }
        state.close = Some(CloseRequest { frame, wait_reply });
        self.changed.notify_all();
        true
    }

    /// The close to perform, if one was asked for.
    pub fn pending_close(&self) -> Option<CloseRequest> {
        self.lock().close.clone()
    }

    /// Record that the peer's Close arrived.
    pub fn set_peer_closed(&self) {
        self.lock().peer_closed = true;
        self.changed.notify_all();
    }

    /// Whether the peer's Close arrived.
    pub fn peer_closed(&self) -> bool {
        self.lock().peer_closed
    }

    /// Record that the writer closed the TCP connection after waiting
    /// `waited` for a Close reply that did not come.
    pub fn set_gave_up(&self, waited: Duration) {
        self.lock().gave_up = Some(waited);
    }

    /// How long the writer waited before giving up on the Close reply.
    pub fn gave_up(&self) -> Option<Duration> {
        self.lock().gave_up
    }

    /// Tell the writer to stop (the reader has ended).
    pub fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }

    /// Whether the writer should stop.
    pub fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Wait at most `timeout` for the peer's Close (or a stop). Returns
    /// whether the peer's Close arrived.
    pub fn wait_peer_closed(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| !s.peer_closed && !s.stop)
            .unwrap_or_else(|e| e.into_inner());
        state.peer_closed
    }
}

/// Why a message could not be queued for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The queue is full: the client reads too slowly.
    Full,
    /// The connection is ending.
    Gone,
}

/// A handle on one live connection, cheap to clone, held by the hub.
#[derive(Debug, Clone)]
pub struct Session {
    /// Unique per connection, so that a stale connection never removes a
    /// newer one logged in under the same name.
    pub id: u64,
    /// The user name.
    pub user: Arc<str>,
    /// The client's address, for logs.
    pub peer: SocketAddr,
    tx: SyncSender<Outgoing>,
    control: Arc<Control>,
}

impl Session {
    /// A handle for connection `id`.
    pub fn new(
        id: u64,
        user: Arc<str>,
        peer: SocketAddr,
        tx: SyncSender<Outgoing>,
        control: Arc<Control>,
    ) -> Session {
        Session {
            id,
            user,
            peer,
            tx,
            control,
        }
    }

    /// Queue a chat line without ever blocking.
    pub fn try_send(&self, text: &Arc<str>) -> Result<(), QueueError> {
        match self.tx.try_send(Outgoing::Text(Arc::clone(text))) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(QueueError::Full),
            Err(TrySendError::Disconnected(_)) => Err(QueueError::Gone),
        }
    }

    /// Ask the connection to close with `code` and `reason`, without
    /// blocking: the writer sends the Close as soon as it finishes the
    /// frame it may be writing.
    pub fn close(&self, code: CloseCode, reason: &str, wait_reply: bool) {
        if self.control.request_close(code, reason, wait_reply) {
            // A full queue means the writer is busy and will look at the
            // control block before its next message; no wake-up needed.
            let _ = self.tx.try_send(Outgoing::Wake);
        }
    }

    /// Disconnect a client that does not read: the writer thread, blocked
    /// in a write to it, sends the Close if the client ever reads again,
    /// and otherwise gives up after the socket's write time-out; either way
    /// it then shuts the socket down, which ends the reader thread too.
    /// Nobody else waits for any of this.
    pub fn drop_stalled(&self, code: CloseCode, reason: &str) {
        self.close(code, reason, false);
    }
}
