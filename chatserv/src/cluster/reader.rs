//! The reader thread: `XREAD BLOCK` on the stream from the last ID seen,
//! on its own connection, de-duplicating by message id.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::streams::StreamReadReply;
use redis::Value;
use tracing::{info, warn};

use super::backoff::Backoff;
use super::{lock, Cluster};

/// How long one `XREAD` blocks in Redis.
const BLOCK_MS: u64 = 1000;
/// Entries read at most per `XREAD`.
const COUNT: usize = 1000;
/// Socket read time-out: past the block time, Redis is taken for gone.
const READ_TIMEOUT: Duration = Duration::from_millis(BLOCK_MS + 1500);

/// An entry as read.
#[derive(Debug)]
pub struct Read {
    pub origin: String,
    pub seq: u64,
    pub user: Arc<str>,
    pub micros: u64,
    pub gen: u64,
    pub kind: ReadKind,
}

/// What an entry read carries.
#[derive(Debug)]
pub enum ReadKind {
    Message(Arc<str>),
    Login,
}

fn text(map: &HashMap<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn number(map: &HashMap<String, Value>, key: &str) -> u64 {
    text(map, key).and_then(|t| t.parse().ok()).unwrap_or(0)
}

/// The milliseconds part of a stream ID.
fn id_millis(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

pub fn run(cluster: Arc<Cluster>) {
    let mut backoff = Backoff::default();
    let mut epoch: Option<String> = None;
    let mut last_id: Option<String> = None;
    // Highest sequence number seen per origin: the de-duplication.
    let mut seen: HashMap<String, u64> = HashMap::new();
    loop {
        let result = session(&cluster, &mut epoch, &mut last_id, &mut seen, &mut backoff);
        let was_up = cluster.reader_up.swap(false, Ordering::AcqRel);
        if was_up {
            cluster.refresh_online();
        }
        let e = result
            .err()
            .map_or_else(|| "closed".to_owned(), |e| e.to_string());
        let delay = backoff.next_delay();
        warn!(node = %cluster.node_id, error = %e, attempt = backoff.failures(),
              retry_in = ?delay, "redis unreachable");
        std::thread::sleep(delay);
    }
}

/// One connection's life: connect, check the epoch, read until an error.
fn session(
    cluster: &Cluster,
    epoch: &mut Option<String>,
    last_id: &mut Option<String>,
    seen: &mut HashMap<String, u64>,
    backoff: &mut Backoff,
) -> redis::RedisResult<()> {
    let keys = &cluster.keys;
    let mut con = cluster.connect(READ_TIMEOUT)?;
    let now = cluster.check_epoch(&mut con)?;
    match epoch.as_deref() {
        Some(old) if old != now => {
            warn!(node = %cluster.node_id, old_epoch = old, new_epoch = %now,
                  "redis came back empty (its epoch changed): its stream is lost; continuing \
                   from the new stream, and republishing what this node has not seen delivered");
            *last_id = Some("0-0".into());
        }
        _ => {}
    }
    *epoch = Some(now);
    if last_id.is_none() {
        // A node joining reads from the stream's current end.
        let tail: Vec<(String, HashMap<String, Value>)> = redis::cmd("XREVRANGE")
            .arg(&keys.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query::<redis::streams::StreamRangeReply>(&mut con)?
            .ids
            .into_iter()
            .map(|s| (s.id, s.map))
            .collect();
        *last_id = Some(tail.first().map_or("0-0".to_owned(), |t| t.0.clone()));
    }
    if backoff.failures() > 0 {
        info!(node = %cluster.node_id, last_id = last_id.as_deref().unwrap_or(""),
              "redis reachable again; reading the stream from the last ID seen");
    }
    backoff.reset();
    cluster.reader_up.store(true, Ordering::Release);
    cluster.refresh_online();
    let metrics = crate::metrics::get();
    loop {
        let from = last_id.clone().unwrap_or_else(|| "0-0".into());
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&keys.stream)
            .arg(&from)
            .query(&mut con)?;
        let entries = reply
            .and_then(|r| r.keys.into_iter().next())
            .map(|k| k.ids)
            .unwrap_or_default();
        let Some(newest) = entries.last().map(|e| e.id.clone()) else {
            metrics.stream_lag_seconds.set(0.0);
            continue;
        };
        for entry in entries {
            let map = &entry.map;
            let origin = text(map, "o").unwrap_or_default();
            match text(map, "k").as_deref() {
                Some("h") => {
                    if origin == cluster.origin {
                        *lock(&cluster.own_heartbeat) = Some(std::time::Instant::now());
                    }
                    continue;
                }
                Some("m" | "l") => {}
                _ => continue,
            }
            let seq = number(map, "s");
            let last = seen.entry(origin.clone()).or_insert(0);
            if seq <= *last {
                // A duplicate of an idempotent retry, or an entry written
                // again from a node's history after Redis came back empty.
                if origin == cluster.origin {
                    cluster.drop_replayed(seq);
                }
                continue;
            }
            // A node numbers its entries 1, 2, 3...: a jump means entries
            // of it left the stream before this node read them. This
            // node's own entries are safe (its outbox delivers them
            // locally when a later one comes back).
            let missed = if *last > 0 && origin != cluster.origin {
                seq - *last - 1
            } else {
                0
            };
            *last = seq;
            if missed > 0 {
                cluster.entries_lost(&origin, missed);
            }
            let kind = if text(map, "k").as_deref() == Some("m") {
                ReadKind::Message(Arc::from(text(map, "t").unwrap_or_default()))
            } else {
                ReadKind::Login
            };
            cluster.process(&Read {
                origin,
                seq,
                user: Arc::from(text(map, "u").unwrap_or_default()),
                micros: number(map, "ts"),
                gen: number(map, "g"),
                kind,
            });
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        metrics
            .stream_lag_seconds
            .set(now_ms.saturating_sub(id_millis(&newest)) as f64 / 1e3);
        *last_id = Some(newest);
    }
}
