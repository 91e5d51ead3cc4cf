//! The registry of logged-in users and the broadcast.
//!
//! The map is behind an `RwLock` that is held only to look sessions up and
//! to `try_send` into their queues, which never blocks and never touches a
//! socket. Socket writes happen on each connection's own writer thread, so
//! a slow or dead client can never hold up the lock or the other clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use wsproto::CloseCode;

use crate::session::{QueueError, Session, LOGGED_IN_ELSEWHERE};

/// Reason sent with close code 1008 to a client whose queue is full.
pub const TOO_SLOW: &str = "too slow: send queue full";

/// The set of logged-in users.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: RwLock<HashMap<Arc<str>, Session>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// The server is shutting down.
    ShuttingDown,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Session>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Session>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Number of logged-in users.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Register `session` under its user name. An older connection with the
    /// same name is replaced and told to close with 4001 "logged in
    /// elsewhere"; it is returned for logging.
    pub fn login(&self, session: Session) -> Result<Option<Session>, LoginError> {
        let old = {
            let mut sessions = self.write();
            // Checked under the lock so that `shutdown` sees every session
            // registered before it and none is registered after it.
            if self.shutting_down.load(Ordering::Acquire) {
                return Err(LoginError::ShuttingDown);
            }
            sessions.insert(Arc::clone(&session.user), session)
        };
        if let Some(old) = &old {
            old.close(
                CloseCode::Other(LOGGED_IN_ELSEWHERE),
                "logged in elsewhere",
                true,
            );
        }
        Ok(old)
    }

    /// Remove `user` if it is still connection `id`.
    ///
    /// The Go demo this server replaces deleted the name unconditionally
    /// when a read loop ended, so the *old* connection of a user who logged
    /// in twice removed the *new* session. Comparing ids fixes that.
    pub fn logout(&self, user: &str, id: u64) -> bool {
        let mut sessions = self.write();
        if sessions.get(user).is_some_and(|s| s.id == id) {
            sessions.remove(user);
            true
        } else {
            false
        }
    }

    /// Send `text` from connection `from_id` of `from` to every other
    /// logged-in user. Recipients whose queue is full are disconnected with
    /// 1008 and returned (for logging). Nothing is sent if `from_id` is no
    /// longer the session of `from` (it was replaced by a newer login).
    ///
    /// Per-sender order holds because one reader thread calls this for all
    /// messages of its connection, one after the other, and every queue is
    /// FIFO.
    pub fn broadcast(&self, from: &str, from_id: u64, text: &Arc<str>) -> Broadcast {
        let mut result = Broadcast::default();
        {
            let sessions = self.read();
            if sessions.get(from).is_none_or(|s| s.id != from_id) {
                result.sender_replaced = true;
                return result;
            }
            for session in sessions.values().filter(|s| s.id != from_id) {
                match session.try_send(text) {
                    Ok(()) => result.delivered += 1,
                    Err(QueueError::Full) => result.too_slow.push(session.clone()),
                    Err(QueueError::Gone) => {}
                }
            }
        }
        for slow in &result.too_slow {
            self.logout(&slow.user, slow.id);
            slow.drop_stalled(CloseCode::Policy, TOO_SLOW);
        }
        result
    }

    /// Refuse further logins and ask every client to close with 1001
    /// "going away" (RFC 6455 §7.4.1). Returns how many were asked.
    pub fn shutdown(&self) -> usize {
        let sessions: Vec<Session> = {
            let sessions = self.write();
            self.shutting_down.store(true, Ordering::Release);
            sessions.values().cloned().collect()
        };
        for session in &sessions {
            session.close(CloseCode::Away, "going away", true);
        }
        sessions.len()
    }
}

/// What a broadcast did.
#[derive(Debug, Default)]
pub struct Broadcast {
    /// Recipients whose queue took the message.
    pub delivered: usize,
    /// Recipients disconnected because their queue was full.
    pub too_slow: Vec<Session>,
    /// The sender is not the current session of its name; nothing was sent.
    pub sender_replaced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Control, Outgoing};
    use std::sync::mpsc::{sync_channel, Receiver};

    fn session(hub: &Hub, user: &str, queue: usize) -> (Session, Receiver<Outgoing>) {
        let (tx, rx) = sync_channel(queue);
        let peer = "127.0.0.1:9".parse().unwrap();
        let s = Session::new(
            hub.next_id(),
            user.into(),
            peer,
            tx,
            Arc::new(Control::default()),
        );
        (s, rx)
    }

    fn texts(rx: &Receiver<Outgoing>) -> Vec<String> {
        rx.try_iter()
            .filter_map(|o| match o {
                Outgoing::Text(t) => Some(t.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn broadcast_skips_sender_and_keeps_order() {
        let hub = Hub::new();
        let (a, a_rx) = session(&hub, "a", 8);
        let (b, b_rx) = session(&hub, "b", 8);
        hub.login(a.clone()).unwrap();
        hub.login(b).unwrap();
        for i in 0..3 {
            let r = hub.broadcast("a", a.id, &Arc::from(format!("m{i}")));
            assert_eq!(r.delivered, 1);
        }
        assert_eq!(texts(&b_rx), ["m0", "m1", "m2"]);
        assert!(texts(&a_rx).is_empty());
    }

    #[test]
    fn old_connection_cannot_remove_new_session() {
        let hub = Hub::new();
        let (old, old_rx) = session(&hub, "u", 8);
        let (new, _new_rx) = session(&hub, "u", 8);
        hub.login(old.clone()).unwrap();
        let replaced = hub.login(new.clone()).unwrap();
        assert_eq!(replaced.map(|s| s.id), Some(old.id));
        assert!(matches!(old_rx.try_recv(), Ok(Outgoing::Wake)));
        // The old read loop ends and logs out: the new session must stay.
        assert!(!hub.logout("u", old.id));
        assert_eq!(hub.len(), 1);
        // A message from the stale connection is not broadcast.
        assert!(hub.broadcast("u", old.id, &Arc::from("x")).sender_replaced);
        assert!(hub.logout("u", new.id));
        assert_eq!(hub.len(), 0);
    }

    #[test]
    fn full_queue_disconnects_only_that_recipient() {
        let hub = Hub::new();
        let (a, _a_rx) = session(&hub, "a", 8);
        let (slow, _slow_rx) = session(&hub, "slow", 1);
        let (fast, fast_rx) = session(&hub, "fast", 8);
        hub.login(a.clone()).unwrap();
        hub.login(slow).unwrap();
        hub.login(fast).unwrap();
        assert!(hub
            .broadcast("a", a.id, &Arc::from("1"))
            .too_slow
            .is_empty());
        let r = hub.broadcast("a", a.id, &Arc::from("2"));
        assert_eq!(r.too_slow.len(), 1);
        assert_eq!(&*r.too_slow[0].user, "slow");
        assert_eq!(hub.len(), 2);
        assert_eq!(texts(&fast_rx), ["1", "2"]);
    }

    #[test]
    fn no_login_after_shutdown() {
        let hub = Hub::new();
        let (a, _rx) = session(&hub, "a", 8);
        hub.shutdown();
        assert!(matches!(hub.login(a), Err(LoginError::ShuttingDown)));
    }
}
