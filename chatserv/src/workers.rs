//! Connection threads, kept for the next connection when theirs ends.
//!
//! A connection has one thread for its whole life (the reader), but
//! starting and ending a thread is most of what a handshake costs the
//! server: measured under 1,000-connection handshake bursts, 88 % of
//! chatserv's CPU was in the kernel, mostly mapping and unmapping thread
//! stacks (the unmaps interrupt every core to flush its TLB) and
//! switching tasks. So a thread whose connection ended waits a while
//! ([`KEEP_IDLE`]) for the next one instead of exiting; a new connection
//! takes the most recently idle thread (its stack is still warm) and only
//! starts a thread when none is idle. Threads that are idle never
//! outnumber the connections that ran at once, so the capacity computed at
//! start-up still bounds them.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a thread without a connection waits for one before exiting.
pub const KEEP_IDLE: Duration = Duration::from_secs(10);

/// Most threads kept idle at once.
pub const MAX_IDLE: usize = 4096;

/// What a connection thread runs.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// The connection threads (see the [module docs](self)).
#[derive(Debug)]
pub struct Workers {
    stack_size: usize,
    /// Idle threads, the most recent last: each waits on its own channel.
    idle: Mutex<Vec<(u64, SyncSender<Job>)>>,
    next_id: AtomicU64,
}

impl Workers {
    /// No threads yet; new ones get `stack_size` bytes of stack.
    pub fn new(stack_size: usize) -> Workers {
        Workers {
            stack_size,
            idle: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(u64, SyncSender<Job>)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Threads waiting for a connection now.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Run `job` on an idle thread, or on a new one. `Err` when no thread
    /// is idle and none can be started (the job is dropped then).
    pub fn run(self: &Arc<Self>, mut job: Job) -> io::Result<()> {
        loop {
            let idle = self.lock().pop();
            let Some((_, tx)) = idle else { break };
            match tx.send(job) {
                Ok(()) => return Ok(()),
                // That thread is gone (it panicked): try the next.
                Err(returned) => job = returned.0,
            }
        }
        let workers = Arc::clone(self);
        std::thread::Builder::new()
            .name("conn".into())
            .stack_size(self.stack_size)
            .spawn(move || workers.work(job))
            .map(|_| ())
    }

    /// A thread's life: run jobs until none comes for [`KEEP_IDLE`].
    fn work(&self, mut job: Job) {
        loop {
            job();
            let (tx, rx) = sync_channel(1);
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            {
                let mut idle = self.lock();
                if idle.len() >= MAX_IDLE {
                    return;
                }
                idle.push((id, tx));
            }
            job = match rx.recv_timeout(KEEP_IDLE) {
                Ok(next) => next,
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let mut idle = self.lock();
                    if let Some(at) = idle.iter().position(|(i, _)| *i == id) {
                        idle.swap_remove(at);
                        return;
                    }
                    drop(idle);
                    // Taken from the list just now: its job is on the way.
                    match rx.recv() {
                        Ok(next) => next,
                        Err(_) => return,
                    }
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// Run a job that reports the thread it ran on.
    fn thread_of(workers: &Arc<Workers>) -> std::thread::ThreadId {
        let (tx, rx) = channel();
        workers
            .run(Box::new(move || {
                tx.send(std::thread::current().id()).unwrap();
            }))
            .unwrap();
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    /// Wait until `n` threads are idle.
    fn wait_idle(workers: &Workers, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while workers.idle() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} idle",
                workers.idle()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_thread_whose_job_ended_runs_the_next_one() {
        let workers = Arc::new(Workers::new(64 * 1024));
        let first = thread_of(&workers);
        for _ in 0..3 {
            // Once the thread is idle again, the next job goes to it.
            wait_idle(&workers, 1);
            assert_eq!(thread_of(&workers), first);
        }
    }

    #[test]
    fn jobs_at_once_get_threads_of_their_own() {
        let workers = Arc::new(Workers::new(64 * 1024));
        let barrier = Arc::new(std::sync::Barrier::new(9));
        for _ in 0..8 {
            let b = Arc::clone(&barrier);
            workers
                .run(Box::new(move || {
                    b.wait();
                }))
                .unwrap();
        }
        // All eight run at the same time, or this would never return.
        barrier.wait();
    }
}
