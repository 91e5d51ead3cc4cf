//! The presence thread: every second, this node's heartbeat key and user
//! set (both with a TTL, so a dead node's users vanish), a heartbeat entry
//! in the stream (readiness: it must come back through the reader), and a
//! read of every node's users for `/users` and `online=`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use tracing::debug;

use super::backoff::Backoff;
use super::{lock, now_micros, Cluster, PRESENCE_TTL};

const TICK: Duration = Duration::from_secs(1);

pub fn run(cluster: Arc<Cluster>) {
    let mut backoff = Backoff::default();
    let mut con: Option<redis::Connection> = None;
    loop {
        let started = Instant::now();
        if con.is_none() {
            match cluster.connect(Duration::from_secs(2)) {
                Ok(c) => con = Some(c),
                Err(e) => {
                    let delay = backoff.next_delay();
                    debug!(error = %e, retry_in = ?delay, "redis presence: cannot connect");
                    std::thread::sleep(delay);
                    continue;
                }
            }
        }
        if let Some(c) = con.as_mut() {
            match tick(&cluster, c) {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    debug!(error = %e, "redis presence: connection lost");
                    con = None;
                    std::thread::sleep(backoff.next_delay());
                    continue;
                }
            }
        }
        std::thread::sleep(TICK.saturating_sub(started.elapsed()));
    }
}

fn tick(cluster: &Cluster, con: &mut redis::Connection) -> redis::RedisResult<()> {
    let Some(shared) = cluster.shared() else {
        return Ok(());
    };
    let keys = &cluster.keys;
    let me = &cluster.node_id;
    let sessions = shared.hub.snapshot();
    let live: BTreeSet<u64> = sessions.iter().map(|s| s.1).collect();
    cluster.prune_gens(&live);
    let users: Vec<String> = sessions.iter().map(|s| s.0.to_string()).collect();
    let ttl = PRESENCE_TTL.as_millis() as u64;
    let users_key = keys.users(me);
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("SET")
        .arg(keys.node(me))
        .arg(&cluster.origin)
        .arg("PX")
        .arg(ttl)
        .ignore();
    pipe.cmd("SADD").arg(&keys.nodes).arg(me).ignore();
    pipe.cmd("DEL").arg(&users_key).ignore();
    if !users.is_empty() {
        pipe.cmd("SADD").arg(&users_key).arg(&users).ignore();
        pipe.cmd("PEXPIRE").arg(&users_key).arg(ttl).ignore();
    }
    pipe.cmd("XADD")
        .arg(&keys.stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(cluster.stream_maxlen)
        .arg("*")
        .arg("k")
        .arg("h")
        .arg("o")
        .arg(&cluster.origin)
        .arg("ts")
        .arg(now_micros())
        .ignore();
    pipe.exec(con)?;

    let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(&keys.nodes).query(con)?;
    let others: Vec<&String> = nodes.iter().filter(|n| *n != me).collect();
    let mut pipe = redis::pipe();
    for n in &others {
        pipe.cmd("EXISTS").arg(keys.node(n));
        pipe.cmd("SMEMBERS").arg(keys.users(n));
    }
    let replies: Vec<Value> = if others.is_empty() {
        Vec::new()
    } else {
        pipe.query(con)?
    };
    let mut presence = BTreeMap::new();
    let mut dead = Vec::new();
    for (n, pair) in others.iter().zip(replies.chunks(2)) {
        let alive = matches!(pair.first(), Some(Value::Int(1)));
        let users: Vec<String> = pair
            .get(1)
            .cloned()
            .and_then(|v| redis::from_redis_value(v).ok())
            .unwrap_or_default();
        if alive {
            presence.insert((*n).clone(), users);
        } else {
            dead.push((*n).clone());
        }
    }
    if !dead.is_empty() {
        redis::cmd("SREM").arg(&keys.nodes).arg(&dead).exec(con)?;
    }
    let remote: BTreeSet<&String> = presence.values().flatten().collect();
    cluster.remote_online.store(remote.len(), Ordering::Relaxed);
    *lock(&cluster.presence) = presence;
    Ok(())
}
