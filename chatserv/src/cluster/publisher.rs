//! The publisher thread: writes the outbox into the stream, in order, on
//! its own connection; after a failure, everything not yet read back is
//! written again (the readers drop duplicates by message id).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::backoff::Backoff;
use super::outbox::Kind;
use super::{entry_fields, lock, Cluster};

/// Entries written per round trip (one pipeline).
const BATCH: usize = 256;
/// Time-out of one pipeline's reply.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A login: take a generation and append the entry in one atomic step, so
/// that the stream order is the generation order.
const LOGIN_SCRIPT: &str = "local g = redis.call('INCR', KEYS[2]) \
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'k', 'l', 'o', ARGV[2], \
    's', ARGV[3], 'u', ARGV[4], 'c', ARGV[5], 'ts', ARGV[6], 'g', g) \
    return g";

pub fn run(cluster: Arc<Cluster>) {
    let mut backoff = Backoff::default();
    loop {
        // Publish only once the reader knows where it reads from, or it
        // could miss this node's first entries.
        if !cluster.reader_up.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let result = session(&cluster, &mut backoff);
        if cluster.publisher_up.swap(false, Ordering::AcqRel) {
            cluster.refresh_online();
        }
        if let Err(e) = result {
            let delay = backoff.next_delay();
            debug!(error = %e, retry_in = ?delay, "redis publisher: connection lost");
            std::thread::sleep(delay);
        }
    }
}

fn session(cluster: &Cluster, backoff: &mut Backoff) -> redis::RedisResult<()> {
    let mut con = cluster.connect(READ_TIMEOUT)?;
    // Before writing anything: if Redis came back empty, the history goes
    // first.
    cluster.check_epoch(&mut con)?;
    backoff.reset();
    lock(&cluster.state).outbox.republish_all();
    cluster.publisher_up.store(true, Ordering::Release);
    cluster.refresh_online();
    let keys = &cluster.keys;
    loop {
        let batch = {
            let mut st = lock(&cluster.state);
            loop {
                let batch = st.outbox.unpublished(BATCH);
                if !batch.is_empty() {
                    break batch;
                }
                if !cluster.reader_up.load(Ordering::Acquire) {
                    return Ok(());
                }
                st = cluster
                    .publish_wake
                    .wait_timeout(st, Duration::from_millis(500))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        let mut pipe = redis::pipe();
        for e in &batch {
            match e.kind {
                Kind::Message(_) => {
                    let cmd = pipe
                        .cmd("XADD")
                        .arg(&keys.stream)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(cluster.stream_maxlen)
                        .arg("*");
                    for (k, v) in entry_fields(e, &cluster.origin) {
                        cmd.arg(k).arg(v);
                    }
                    cmd.ignore();
                }
                Kind::Login => {
                    pipe.cmd("EVAL")
                        .arg(LOGIN_SCRIPT)
                        .arg(2)
                        .arg(&keys.stream)
                        .arg(&keys.gen)
                        .arg(cluster.stream_maxlen)
                        .arg(&cluster.origin)
                        .arg(e.seq)
                        .arg(&*e.user)
                        .arg(e.conn)
                        .arg(e.micros)
                        .ignore();
                }
            }
        }
        pipe.exec(&mut con)?;
        let last = batch.last().map_or(0, |e| e.seq);
        lock(&cluster.state).outbox.published(last);
    }
}
