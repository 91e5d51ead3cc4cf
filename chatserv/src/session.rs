//! What other threads hold of a connection: a cheap handle on its
//! [`Outlet`], kept in the hub under the user's name.
//!
//! Chat lines, kicks and the Close of a shutdown all go through the
//! outlet, which writes to the non-blocking socket at once or queues; the
//! replies the protocol owes (pongs, the echo of a Close, the Close
//! failing a protocol error) are sent by wsproto's split halves
//! themselves, never interleaved with a frame in progress.

use std::net::SocketAddr;
use std::sync::Arc;

use wsproto::{CloseCode, PreparedMessage};

use crate::outlet::{Outlet, QueueError};

/// Close code sent to the older connection when the same name logs in again
/// (private-use range 4000-4999, RFC 6455 §7.4.2).
pub const LOGGED_IN_ELSEWHERE: u16 = 4001;

/// Close code for a user who may have missed messages the server cannot
/// deliver any more (cluster mode: this node lagged past the stream's
/// length); the client should reconnect.
pub const MISSED_MESSAGES: u16 = 4002;

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
    outlet: Arc<Outlet>,
}

impl Session {
    /// A handle on the connection whose sending side is `outlet`.
    pub fn new(user: Arc<str>, peer: SocketAddr, outlet: Arc<Outlet>) -> Session {
        Session {
            id: outlet.id(),
            user,
            peer,
            outlet,
        }
    }

    /// Send a chat line (framed once for all recipients) without ever
    /// blocking: written at once, or queued while the client's socket is
    /// full.
    pub fn try_send(&self, line: &PreparedMessage) -> Result<(), QueueError> {
        self.outlet.deliver(line)
    }

    /// Ask the connection to close with `code` and `reason`, waiting
    /// (bounded) for the client's Close reply if `wait_reply`. Never
    /// blocks.
    pub fn close(&self, code: CloseCode, reason: &str, wait_reply: bool) {
        self.outlet.request_close(code, reason, wait_reply);
    }

    /// Disconnect a client that does not read: the Close goes out if the
    /// client ever reads again, and the connection ends then, or after
    /// `--write-timeout` without progress. Nobody waits for any of this.
    pub fn drop_stalled(&self, code: CloseCode, reason: &str) {
        self.close(code, reason, false);
    }
}
