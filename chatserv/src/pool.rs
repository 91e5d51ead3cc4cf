//! The writer pool: one thread that finishes the writes the sockets could
//! not take at once, and keeps every connection's deadlines.
//!
//! Deliveries are written by whoever produces them (the broadcasting
//! reader thread, the thread that kicks a duplicate login, a connection's
//! own reader for its pings) straight to the socket, which is
//! non-blocking: while a client keeps up, that is one `send` per delivery
//! and no thread is woken. Only a socket that did not take everything is
//! handed here ([`Pool::watch`]): the pool waits for it to become
//! writable (epoll through `mio`), writes the rest and the messages queued
//! meanwhile, and lets go of it once it is drained. So a connection costs
//! no writer thread, and a client that stops reading never holds up
//! anyone: its messages wait in its bounded queue.
//!
//! The pool also fires the time limits other threads set
//! ([`Pool::schedule`]): how long a stalled socket may take no data, and
//! how long to wait for the peer's Close reply. A timer holds only a weak
//! reference: a connection that ended needs no cancelling.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use tracing::warn;

use crate::outlet::Outlet;

/// The token of the waker (connection ids start at 1).
const WAKER: Token = Token(0);

/// Longest sleep without a timer due: the pool re-checks its timer heap at
/// least this often (a safety net; a new, earlier timer wakes it at once).
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// A time limit of one connection.
#[derive(Debug)]
struct Timer {
    at: Instant,
    /// Breaks ties, so that the heap never compares outlets.
    seq: u64,
    outlet: Weak<Outlet>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug, Default)]
struct State {
    /// Sockets waiting to become writable, by connection id.
    watched: HashMap<u64, Arc<Outlet>>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    /// When the pool thread wakes up next, if it is asleep.
    sleeping_until: Option<Instant>,
}

/// The writer pool (see the [module docs](self)).
#[derive(Debug)]
pub struct Pool {
    registry: Registry,
    waker: Waker,
    state: Mutex<State>,
}

impl Pool {
    /// Start the pool thread.
    pub fn start() -> io::Result<Arc<Pool>> {
        let poll = Poll::new()?;
        let pool = Arc::new(Pool {
            registry: poll.registry().try_clone()?,
            waker: Waker::new(poll.registry(), WAKER)?,
            state: Mutex::default(),
        });
        let worker = Arc::clone(&pool);
        std::thread::Builder::new()
            .name("writer pool".into())
            .spawn(move || worker.run(poll))?;
        Ok(pool)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for `fd` (the socket of `outlet`) to become writable, then call
    /// [`Outlet::on_writable`]. Called with the outlet's lock held, once per
    /// episode: until [`Pool::unwatch`].
    pub fn watch(&self, outlet: &Arc<Outlet>, fd: RawFd) -> io::Result<()> {
        let id = outlet.id();
        // Registered before it is in the map, an event may come before the
        // map has it; the pool then finds nothing and skips it, but
        // edge-triggered epoll would not report the socket again. So: map
        // first, then register.
        self.lock().watched.insert(id, Arc::clone(outlet));
        let registered = self
            .registry
            .register(&mut SourceFd(&fd), token(id), Interest::WRITABLE);
        if registered.is_err() {
            self.lock().watched.remove(&id);
        }
        registered
    }

    /// Stop watching the socket of connection `id` (with the outlet's
    /// lock held, before the socket may close).
    pub fn unwatch(&self, id: u64, fd: RawFd) {
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        self.lock().watched.remove(&id);
    }

    /// Call [`Outlet::on_deadline`] at `at` (or soon after), if the outlet
    /// still exists then.
    pub fn schedule(&self, outlet: &Arc<Outlet>, at: Instant) {
        let mut state = self.lock();
        state.seq += 1;
        let seq = state.seq;
        state.timers.push(Reverse(Timer {
            at,
            seq,
            outlet: Arc::downgrade(outlet),
        }));
        let wake = state.sleeping_until.is_some_and(|until| at < until);
        drop(state);
        if wake {
            let _ = self.waker.wake();
        }
    }

    fn run(&self, mut poll: Poll) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.sleep_until().saturating_duration_since(Instant::now());
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!(error = %e, "writer pool: poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            self.lock().sleeping_until = None;
            for event in &events {
                if event.token() == WAKER {
                    continue;
                }
                let id = event.token().0 as u64;
                let outlet = self.lock().watched.get(&id).cloned();
                if let Some(outlet) = outlet {
                    outlet.on_writable();
                }
            }
            self.fire_timers();
        }
    }

    /// When the next timer is due (at most [`MAX_SLEEP`] away); recorded
    /// so that [`Pool::schedule`] knows whether to wake the thread.
    fn sleep_until(&self) -> Instant {
        let mut state = self.lock();
        let max = Instant::now() + MAX_SLEEP;
        let until = state.timers.peek().map_or(max, |Reverse(t)| t.at.min(max));
        state.sleeping_until = Some(until);
        until
    }

    fn fire_timers(&self) {
        let now = Instant::now();
        loop {
            let due = {
                let mut state = self.lock();
                match state.timers.peek() {
                    Some(Reverse(t)) if t.at <= now => state.timers.pop().map(|Reverse(t)| t),
                    _ => None,
                }
            };
            let Some(timer) = due else { return };
            if let Some(outlet) = timer.outlet.upgrade() {
                outlet.on_deadline(now);
            }
        }
    }
}

fn token(id: u64) -> Token {
    Token(id as usize)
}
