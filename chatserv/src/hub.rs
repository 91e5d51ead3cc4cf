//! The registry of logged-in users and the broadcast.
//!
//! The map is behind an `RwLock` that is held to look sessions up and to
//! hand each recipient the broadcast: one frame, encoded once
//! ([`PreparedMessage`]), written to each non-blocking socket or queued
//! for it ([`crate::outlet`]). Nothing under the lock ever waits, so a
//! slow or dead client can never hold up the lock or the other clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use wsproto::{CloseCode, PreparedMessage};

use crate::outlet::QueueError;
use crate::session::{Session, LOGGED_IN_ELSEWHERE};

/// Reason sent with close code 1008 to a client whose queue is full.
pub const TOO_SLOW: &str = "too slow: send queue full";

/// The set of logged-in users.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: RwLock<HashMap<Arc<str>, Session>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    /// Cluster mode: broadcasts go through Redis (see [`crate::cluster`]).
    cluster: OnceLock<Arc<crate::cluster::Cluster>>,
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

    /// Users online: on this node, plus the other nodes in cluster mode.
    pub fn online(&self) -> usize {
        self.len() + self.cluster.get().map_or(0, |c| c.remote_online())
    }

    /// Turn on cluster mode (once, before serving).
    pub fn set_cluster(&self, cluster: Arc<crate::cluster::Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// The cluster, in cluster mode.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    /// Whether [`Hub::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// The current session of `user`.
    pub fn session(&self, user: &str) -> Option<Session> {
        self.read().get(user).cloned()
    }

    /// Every logged-in user with its connection id, sorted by name.
    pub fn snapshot(&self) -> Vec<(Arc<str>, u64)> {
        let mut v: Vec<(Arc<str>, u64)> = self
            .read()
            .values()
            .map(|s| (Arc::clone(&s.user), s.id))
            .collect();
        v.sort();
        v
    }

    /// Register `session` under its user name. An older connection with the
    /// same name is replaced and told to close with 4001 "logged in
    /// elsewhere"; it is returned for logging.
    pub fn login(&self, session: Session) -> Result<Option<Session>, LoginError> {
        let (session_name, session_id) = (Arc::clone(&session.user), session.id);
        let old = {
            let mut sessions = self.write();
            // Checked under the lock so that `shutdown` sees every session
            // registered before it and none is registered after it.
            if self.shutting_down.load(Ordering::Acquire) {
                return Err(LoginError::ShuttingDown);
            }
            sessions.insert(Arc::clone(&session.user), session)
        };
        crate::metrics::get().logins.inc();
        if let Some(cluster) = self.cluster.get() {
            cluster.login(&session_name, session_id);
        }
        if let Some(old) = &old {
            crate::metrics::get().kick("local");
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
    ///
    /// In cluster mode the line goes into the cluster's outbox instead
    /// (`outbox_full` if it does not fit) and reaches the users of every
    /// node, this one included, from the Redis stream.
    pub fn broadcast(&self, from: &str, from_id: u64, text: &Arc<str>) -> Broadcast {
        crate::metrics::get().messages_in.inc();
        if let Some(cluster) = self.cluster.get() {
            let sender = match self.read().get(from) {
                Some(s) if s.id == from_id => Arc::clone(&s.user),
                _ => {
                    return Broadcast {
                        sender_replaced: true,
                        ..Broadcast::default()
                    }
                }
            };
            return cluster.submit(&sender, from_id, text);
        }
        let mut result = Broadcast::default();
        let line = PreparedMessage::text(text);
        {
            let sessions = self.read();
            if sessions.get(from).is_none_or(|s| s.id != from_id) {
                result.sender_replaced = true;
                return result;
            }
            send_each(
                sessions.values().filter(|s| s.id != from_id),
                &line,
                &mut result,
            );
        }
        self.drop_slow(&result);
        result
    }

    /// Queue `text` for every logged-in user except `skip` (the sender's
    /// name): the cluster's delivery of a line read from the stream.
    pub fn deliver(&self, text: &Arc<str>, skip: &str) -> Broadcast {
        let mut result = Broadcast::default();
        let line = PreparedMessage::text(text);
        {
            let sessions = self.read();
            send_each(
                sessions.values().filter(|s| *s.user != *skip),
                &line,
                &mut result,
            );
        }
        self.drop_slow(&result);
        result
    }

    fn drop_slow(&self, result: &Broadcast) {
        let metrics = crate::metrics::get();
        metrics.deliveries.inc_by(result.delivered as u64);
        for slow in &result.too_slow {
            metrics.close(1008);
            self.logout(&slow.user, slow.id);
            slow.drop_stalled(CloseCode::Policy, TOO_SLOW);
        }
    }

    /// Ask every logged-in client to close with `code` and `reason`
    /// (waiting for the reply); returns how many were asked.
    pub fn close_all(&self, code: CloseCode, reason: &str) -> usize {
        let sessions: Vec<Session> = self.read().values().cloned().collect();
        for session in &sessions {
            session.close(code, reason, true);
        }
        sessions.len()
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

/// Hand `line` to each of `recipients`, counting who took it and who
/// is too slow.
fn send_each<'a>(
    recipients: impl Iterator<Item = &'a Session>,
    line: &PreparedMessage,
    result: &mut Broadcast,
) {
    for session in recipients {
        match session.try_send(line) {
            Ok(()) => result.delivered += 1,
            Err(QueueError::Full) => result.too_slow.push(session.clone()),
            Err(QueueError::Gone) => {}
        }
    }
}

/// What a broadcast did.
#[derive(Debug, Default)]
pub struct Broadcast {
    /// Recipients whose socket or queue took the message.
    pub delivered: usize,
    /// Recipients disconnected because their queue was full.
    pub too_slow: Vec<Session>,
    /// The sender is not the current session of its name; nothing was sent.
    pub sender_replaced: bool,
    /// Cluster mode: the outbox is full (Redis has been unreachable for a
    /// while); nothing was sent and the sender should try again later.
    pub outbox_full: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Stream;
    use crate::outlet::{Limits, Outlet};
    use crate::pool::Pool;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;
    use wsproto::{Config, Message, Role, WebSocket};

    /// A logged-out session over a real loopback socket, and the client's
    /// end of it.
    fn session(
        hub: &Hub,
        pool: &Arc<Pool>,
        user: &str,
        queue: usize,
    ) -> (Session, WebSocket<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let ws =
            WebSocket::from_raw_socket(Stream::Plain(server), Role::Server, &Config::default());
        let (_reader, writer) = ws.split().unwrap();
        let limits = Limits {
            queue,
            write_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(1),
        };
        let outlet = Outlet::new(hub.next_id(), limits, Arc::clone(pool));
        outlet.attach(writer);
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let client = WebSocket::from_raw_socket(client, Role::Client, &Config::default());
        (Session::new(user.into(), peer, outlet), client)
    }

    fn text(ws: &mut WebSocket<TcpStream>) -> String {
        match ws.read().unwrap() {
            Message::Text(t) => t,
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn broadcast_skips_sender_and_keeps_order() {
        let hub = Hub::new();
        let pool = Pool::start().unwrap();
        let (a, mut a_ws) = session(&hub, &pool, "a", 8);
        let (b, mut b_ws) = session(&hub, &pool, "b", 8);
        hub.login(a.clone()).unwrap();
        hub.login(b).unwrap();
        for i in 0..3 {
            let r = hub.broadcast("a", a.id, &Arc::from(format!("m{i}")));
            assert_eq!(r.delivered, 1);
        }
        for i in 0..3 {
            assert_eq!(text(&mut b_ws), format!("m{i}"));
        }
        a_ws.get_mut()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(
            matches!(a_ws.read(), Err(wsproto::Error::Io(_))),
            "the sender got its own line"
        );
    }

    #[test]
    fn old_connection_cannot_remove_new_session() {
        let hub = Hub::new();
        let pool = Pool::start().unwrap();
        let (old, mut old_ws) = session(&hub, &pool, "u", 8);
        let (new, _new_ws) = session(&hub, &pool, "u", 8);
        hub.login(old.clone()).unwrap();
        let replaced = hub.login(new.clone()).unwrap();
        assert_eq!(replaced.map(|s| s.id), Some(old.id));
        match old_ws.read().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), LOGGED_IN_ELSEWHERE),
            other => panic!("expected the 4001 Close, got {other:?}"),
        }
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
        let pool = Pool::start().unwrap();
        let (a, _a_ws) = session(&hub, &pool, "a", 8);
        let (slow, _slow_ws) = session(&hub, &pool, "slow", 4);
        let (fast, mut fast_ws) = session(&hub, &pool, "fast", 100_000);
        hub.login(a.clone()).unwrap();
        hub.login(slow).unwrap();
        hub.login(fast).unwrap();
        // The fast client reads everything; the slow one reads nothing, so
        // its socket fills up, then its queue of 4.
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            loop {
                match fast_ws.read() {
                    Ok(Message::Text(t)) if t == "end" => return seen,
                    Ok(Message::Text(t)) => seen.push(t.len()),
                    Ok(_) => {}
                    Err(e) => panic!("fast client: {e}"),
                }
            }
        });
        let big = "x".repeat(64 * 1024);
        let mut sent = 0;
        let slow_user = loop {
            let r = hub.broadcast("a", a.id, &Arc::from(big.as_str()));
            sent += 1;
            if let Some(s) = r.too_slow.first() {
                break Arc::clone(&s.user);
            }
            assert!(sent < 10_000, "the slow client was never dropped");
        };
        assert_eq!(&*slow_user, "slow");
        assert_eq!(hub.len(), 2);
        hub.broadcast("a", a.id, &Arc::from("end"));
        let seen = reader.join().unwrap();
        assert_eq!(seen.len(), sent, "the fast client lost messages");
    }

    #[test]
    fn no_login_after_shutdown() {
        let hub = Hub::new();
        let pool = Pool::start().unwrap();
        let (a, _ws) = session(&hub, &pool, "a", 8);
        hub.shutdown();
        assert!(matches!(hub.login(a), Err(LoginError::ShuttingDown)));
    }
}
