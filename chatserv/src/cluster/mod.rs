//! Cluster mode: many chatserv nodes, one chat, through Redis.
//!
//! - **One log.** Every chat line and every login is an entry of one Redis
//!   Stream (`{P}:stream`). Each node reads it with `XREAD BLOCK` from the
//!   last ID it has seen ([`reader`]) and delivers what it reads to its own
//!   users, so every user on every node sees the same order; a node's own
//!   users get its messages from the stream too, not directly.
//! - **Nothing lost on a Redis blip.** What a user sends goes into this
//!   node's bounded [`outbox`] and stays there until the reader sees it come
//!   back from the stream. The [`publisher`] writes it (`XADD … MAXLEN ~ N`)
//!   and after any failure writes again everything not yet seen: every entry
//!   carries its message id (`origin` = node id + boot id, `seq`), and
//!   readers drop an entry whose `seq` is not above the last one they saw
//!   from that origin, so a write that timed out but ran later (a paused
//!   Redis waking up) is harmless. While Redis cannot be reached, local users
//!   get the messages directly (marked `local_done`, so not again later).
//! - **Kicks.** A login is an entry too, written by a Lua script that takes a
//!   generation from `INCR {P}:gen` and appends the entry atomically, so the
//!   stream order is the generation order. A node reading another node's
//!   login of a name closes its own session of that name if that session's
//!   login came back from the stream earlier (a smaller generation); if its
//!   own login has not come back yet, it is the later one and survives,
//!   and the other node closes its session when it reads it. Of two racing
//!   logins exactly one survives.
//! - **Presence and readiness** ([`presence`]): every second a node writes
//!   its user set and a heartbeat key with a 10 s TTL, and a heartbeat entry
//!   into the stream; it is ready while its own heartbeat comes back through
//!   the stream.
//! - **Redis restarted empty**: the reader checks an epoch key on every
//!   (re)connection; a new epoch means the data is gone: it warns and reads
//!   the new stream from its start, and the outboxes fill it again.
//!
//! Every key shares the hash tag `{P}`, so a Redis Cluster keeps them in
//! one slot.

mod backoff;
pub mod outbox;
mod presence;
mod publisher;
mod reader;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::hub::Broadcast;
use crate::state::Shared;
use outbox::{Entry, Kind, Outbox};

/// Time-out of a TCP connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time-out of a command's write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A node's heartbeat and user set expire after this long without a
/// refresh (a dead node's users vanish from presence within it).
pub const PRESENCE_TTL: Duration = Duration::from_secs(10);
/// A node is ready while its own heartbeat came back through Redis within
/// this long.
const READY_WITHIN: Duration = Duration::from_secs(4);

/// Command-line options of cluster mode (flattened into [`crate::cli::Args`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Join a cluster through this Redis: `redis://HOST:PORT[/DB]`. All
    /// nodes given the same Redis (and prefix) are one chat. Without it,
    /// chatserv is a single node.
    #[arg(long, value_name = "URL", env = "CHATSERV_REDIS", value_parser = parse_redis_url)]
    pub redis: Option<String>,

    /// This node's name in the cluster (unique per node) [default: --id
    /// and the process id].
    #[arg(long, value_name = "ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,

    /// Prefix of every Redis key; all keys share the hash tag `{PREFIX}`.
    #[arg(long, value_name = "P", default_value = "chatserv", value_parser = parse_node_id)]
    pub redis_prefix: String,

    /// Messages of this node's users that may wait for Redis; when full, a
    /// sender is closed with 1013 "try again later".
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub outbox_size: u32,

    /// Approximate length the stream is trimmed to (`XADD … MAXLEN ~ N`).
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(100..))]
    pub stream_maxlen: u32,
}

/// Check a `--redis` URL without connecting.
pub fn parse_redis_url(text: &str) -> std::result::Result<String, String> {
    let bad =
        |why: String| format!("invalid Redis URL {text:?}: {why}; expected redis://HOST:PORT[/DB]");
    if !text.starts_with("redis://") {
        return Err(bad("the scheme must be redis://".into()));
    }
    let info = redis::Client::open(text).map_err(|e| bad(e.to_string()))?;
    if let redis::ConnectionAddr::Tcp(host, _) = info.get_connection_info().addr() {
        if host.is_empty() {
            return Err(bad("no host".into()));
        }
    }
    Ok(text.to_owned())
}

fn parse_node_id(text: &str) -> std::result::Result<String, String> {
    if text.is_empty()
        || text.len() > 64
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "invalid name {text:?}: 1 to 64 of A-Z a-z 0-9 - _ ."
        ));
    }
    Ok(text.to_owned())
}

/// The Redis keys of one cluster.
#[derive(Debug, Clone)]
struct Keys {
    stream: String,
    gen: String,
    epoch: String,
    nodes: String,
    prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let p = format!("{{{prefix}}}");
        Keys {
            stream: format!("{p}:stream"),
            gen: format!("{p}:gen"),
            epoch: format!("{p}:epoch"),
            nodes: format!("{p}:nodes"),
            prefix: p,
        }
    }
    fn node(&self, id: &str) -> String {
        format!("{}:node:{id}", self.prefix)
    }
    fn users(&self, id: &str) -> String {
        format!("{}:users:{id}", self.prefix)
    }
}

struct State {
    outbox: Outbox,
    /// Local users get their node's messages from the stream (true) or
    /// directly (false: Redis cannot be reached).
    online: bool,
    /// Redis' epoch as this node last saw it ([`Cluster::check_epoch`]).
    epoch: Option<String>,
}

/// This node's side of the cluster; shared by the hub and the three
/// Redis threads.
pub struct Cluster {
    node_id: String,
    /// Node id and boot id: the origin of this process's entries.
    origin: String,
    client: redis::Client,
    keys: Keys,
    stream_maxlen: u32,
    shared: std::sync::OnceLock<std::sync::Weak<Shared>>,
    state: Mutex<State>,
    publish_wake: std::sync::Condvar,
    reader_up: AtomicBool,
    publisher_up: AtomicBool,
    /// Generations of this node's sessions whose login came back from the
    /// stream, by connection id.
    gens: Mutex<HashMap<u64, u64>>,
    /// Signalled when a login of this node comes back (`gens` grows).
    gen_seen: std::sync::Condvar,
    own_heartbeat: Mutex<Option<Instant>>,
    presence: Mutex<BTreeMap<String, Vec<String>>>,
    remote_online: AtomicUsize,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start cluster mode if `--redis` was given: the reader, publisher and
/// presence threads. Redis need not be up: they keep trying.
pub fn start(args: &ClusterArgs, id: &str, shared: &Arc<Shared>) -> Result<Option<Arc<Cluster>>> {
    let Some(url) = &args.redis else {
        return Ok(None);
    };
    let client = redis::Client::open(url.as_str())
        .map_err(|e| Error::Config(format!("--redis {url:?}: {e}")))?;
    let node_id = args
        .node_id
        .clone()
        .unwrap_or_else(|| format!("{id}-{}", std::process::id()));
    let boot: u64 = rand::random();
    let cluster = Arc::new(Cluster {
        origin: format!("{node_id}/{boot:016x}"),
        node_id,
        client,
        keys: Keys::new(&args.redis_prefix),
        stream_maxlen: args.stream_maxlen,
        shared: std::sync::OnceLock::new(),
        state: Mutex::new(State {
            outbox: Outbox::new(args.outbox_size as usize),
            online: false,
            epoch: None,
        }),
        publish_wake: std::sync::Condvar::new(),
        reader_up: AtomicBool::new(false),
        publisher_up: AtomicBool::new(false),
        gens: Mutex::default(),
        gen_seen: std::sync::Condvar::new(),
        own_heartbeat: Mutex::new(None),
        presence: Mutex::default(),
        remote_online: AtomicUsize::new(0),
    });
    let _ = cluster.shared.set(Arc::downgrade(shared));
    shared.hub.set_cluster(Arc::clone(&cluster));
    info!(node = %cluster.node_id, redis = %redact(url), prefix = %args.redis_prefix,
          "cluster mode: joining through Redis");
    for (name, run) in [
        ("redis reader", reader::run as fn(Arc<Cluster>)),
        ("redis publisher", publisher::run),
        ("redis presence", presence::run),
    ] {
        let c = Arc::clone(&cluster);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(c))?;
    }
    Ok(Some(cluster))
}

/// A URL for the logs, without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

impl Cluster {
    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.get().and_then(std::sync::Weak::upgrade)
    }

    fn connect(&self, read_timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(read_timeout))?;
        con.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(con)
    }

    /// One of this node's entries came back as a duplicate (see
    /// [`Outbox::drop_replayed`]).
    fn drop_replayed(&self, seq: u64) {
        lock(&self.state).outbox.drop_replayed(seq);
    }

    /// Redis' epoch: a random value the first node to find it missing
    /// sets, so a new value means Redis came back empty (its stream is
    /// lost). Both the reader and the publisher check it on every new
    /// connection, before reading or writing anything; whichever sees a
    /// change first puts the outbox's history back in front of the queue
    /// (under the state lock, once per change), so this node's last
    /// entries reach the new stream before anything newer.
    fn check_epoch(&self, con: &mut redis::Connection) -> redis::RedisResult<String> {
        let mine = format!("{:016x}", rand::random::<u64>());
        redis::cmd("SET")
            .arg(&self.keys.epoch)
            .arg(&mine)
            .arg("NX")
            .exec(con)?;
        let now: String = redis::cmd("GET").arg(&self.keys.epoch).query(con)?;
        let mut st = lock(&self.state);
        if st.epoch.as_deref().is_some_and(|old| old != now) {
            let replayed = st.outbox.replay_history();
            warn!(node = %self.node_id, replayed,
                  "redis lost its stream: writing this node's last entries again first, \
                   for nodes that had not read them yet");
            self.publish_wake.notify_all();
        }
        st.epoch = Some(now.clone());
        Ok(now)
    }

    /// A text from local user `from` (connection `conn`), formatted as
    /// `line`: into the outbox, and straight to the local users if Redis is
    /// out of reach. `outbox_full` if it does not fit (the caller closes
    /// the sender with 1013).
    pub fn submit(&self, from: &Arc<str>, conn: u64, line: &Arc<str>) -> Broadcast {
        let mut result = Broadcast::default();
        let mut st = lock(&self.state);
        if !st.outbox.has_room() {
            result.outbox_full = true;
            return result;
        }
        let online = st.online;
        if !online {
            if let Some(shared) = self.shared() {
                result = shared.hub.deliver(line, from);
            }
        }
        st.outbox.push(
            Arc::clone(from),
            conn,
            Kind::Message(Arc::clone(line)),
            now_micros(),
            !online,
        );
        crate::metrics::get()
            .outbox_depth
            .set(st.outbox.messages() as i64);
        drop(st);
        self.publish_wake.notify_one();
        result
    }

    /// Local user `user` logged in as connection `conn`: tell the others.
    pub fn login(&self, user: &Arc<str>, conn: u64) {
        lock(&self.state)
            .outbox
            .push(Arc::clone(user), conn, Kind::Login, now_micros(), true);
        self.publish_wake.notify_one();
    }

    /// Wait (at most `timeout`) until the login of connection `conn` has
    /// come back from the stream, so that a login answered with 101 here
    /// is before, in the stream, any login that starts after it on any
    /// node: "the later login wins" then means later in time, as users
    /// see it. No wait while Redis is unreachable (local-only service).
    /// Returns whether the login is in the stream.
    pub fn wait_login(&self, conn: u64, timeout: Duration) -> bool {
        if !lock(&self.state).online {
            return false;
        }
        let gens = lock(&self.gens);
        let (gens, _) = self
            .gen_seen
            .wait_timeout_while(gens, timeout, |g| !g.contains_key(&conn))
            .unwrap_or_else(|e| e.into_inner());
        gens.contains_key(&conn)
    }

    /// Recompute whether local delivery goes through the stream. Going
    /// offline delivers, in order, what the local users have not had yet.
    fn refresh_online(&self) {
        let up =
            self.reader_up.load(Ordering::Acquire) && self.publisher_up.load(Ordering::Acquire);
        crate::metrics::get().redis_connected.set(i64::from(up));
        let mut st = lock(&self.state);
        if st.online == up {
            return;
        }
        st.online = up;
        if up {
            info!(node = %self.node_id, "redis reachable: delivering through the stream");
            return;
        }
        let pending = st.outbox.take_local();
        warn!(node = %self.node_id, pending = pending.len(), queued = st.outbox.messages(),
              "redis unreachable: serving local users directly, queueing for the others");
        if let Some(shared) = self.shared() {
            for e in &pending {
                if let Kind::Message(line) = &e.kind {
                    log_slow(&shared.hub.deliver(line, &e.user));
                }
            }
        }
    }

    /// Whether this node's own heartbeat came back through Redis lately.
    pub fn heartbeat_ok(&self) -> bool {
        lock(&self.own_heartbeat).is_some_and(|t| t.elapsed() < READY_WITHIN)
    }

    /// Users online on the other nodes (from the last presence read).
    pub fn remote_online(&self) -> usize {
        self.remote_online.load(Ordering::Relaxed)
    }

    /// `/users`: who is online, across the cluster.
    pub fn users_json(&self, local: Vec<String>) -> String {
        let mut nodes = lock(&self.presence).clone();
        nodes.insert(self.node_id.clone(), local);
        let all: BTreeSet<&String> = nodes.values().flatten().collect();
        serde_json::json!({
            "node": self.node_id,
            "online": all.len(),
            "users": all,
            "nodes": nodes,
        })
        .to_string()
    }

    /// One entry read from the stream (after de-duplication).
    /// `missed` entries of node `origin` left the stream before this node
    /// read them: it lagged further behind than `--stream-maxlen`, or Redis
    /// lost them. Its users may have missed messages and cannot get them
    /// back, so rather than let them read on as if nothing happened, each
    /// is closed with 4002 "missed messages; reconnect".
    fn entries_lost(&self, origin: &str, missed: u64) {
        crate::metrics::get().stream_entries_lost.inc_by(missed);
        let Some(shared) = self.shared() else { return };
        let closed = shared.hub.close_all(
            wsproto::CloseCode::Other(crate::session::MISSED_MESSAGES),
            "missed messages; reconnect",
        );
        warn!(node = %self.node_id, origin, missed, closed,
              "entries of another node were lost from the stream before this node read them \
               (it lagged past --stream-maxlen, or Redis lost them); closing this node's \
               users with 4002 so that they reconnect");
    }

    fn process(&self, e: &reader::Read) {
        let Some(shared) = self.shared() else { return };
        let hub = &shared.hub;
        if e.origin == self.origin {
            // Under the state lock: going offline (which delivers what is
            // not yet `local_done`) cannot run between the ack and this
            // delivery, so each line reaches the local users once.
            let mut st = lock(&self.state);
            for d in st.outbox.ack(e.seq) {
                match d.kind {
                    Kind::Message(line) if !d.local_done => {
                        log_slow(&hub.deliver(&line, &d.user));
                    }
                    Kind::Login if d.seq == e.seq => {
                        lock(&self.gens).insert(d.conn, e.gen);
                        self.gen_seen.notify_all();
                    }
                    _ => {}
                }
            }
            crate::metrics::get()
                .outbox_depth
                .set(st.outbox.messages() as i64);
            drop(st);
            return;
        }
        match &e.kind {
            reader::ReadKind::Message(line) => {
                let r = hub.deliver(line, &e.user);
                log_slow(&r);
                let latency = now_micros().saturating_sub(e.micros) as f64 / 1e6;
                crate::metrics::get().cross_node_latency.observe(latency);
            }
            reader::ReadKind::Login => {
                let Some(session) = hub.session(&e.user) else {
                    return;
                };
                if !lock(&self.gens).contains_key(&session.id) {
                    // Our login of this name is later in the stream: the
                    // other node closes its session when it reads ours.
                    return;
                }
                hub.logout(&session.user, session.id);
                session.close(
                    wsproto::CloseCode::Other(crate::session::LOGGED_IN_ELSEWHERE),
                    "logged in elsewhere",
                    true,
                );
                crate::metrics::get().kick("remote");
                info!(peer = %session.peer, conn = session.id, gen = e.gen,
                      "user {} logged in on node {}; closing the old connection with 4001",
                      e.user, e.origin.split('/').next().unwrap_or(""));
            }
        }
    }

    /// Forget generations of connections that are gone.
    fn prune_gens(&self, live: &BTreeSet<u64>) {
        lock(&self.gens).retain(|id, _| live.contains(id));
    }
}

fn log_slow(r: &Broadcast) {
    for slow in &r.too_slow {
        warn!(peer = %slow.peer, conn = slow.id,
              "dropping {}: send queue full (client reads too slowly), close 1008", slow.user);
    }
}

/// Entries the reader and publisher exchange through Redis.
pub(crate) fn entry_fields(e: &Entry, origin: &str) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("o", origin.to_owned()),
        ("s", e.seq.to_string()),
        ("u", e.user.to_string()),
        ("c", e.conn.to_string()),
        ("ts", e.micros.to_string()),
    ];
    match &e.kind {
        Kind::Message(line) => {
            f.insert(0, ("k", "m".into()));
            f.push(("t", line.to_string()));
        }
        Kind::Login => f.insert(0, ("k", "l".into())),
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_redis_url("redis://127.0.0.1:6379").is_ok());
        assert!(parse_redis_url("redis://localhost:6379/2").is_ok());
        for bad in [
            "",
            "127.0.0.1:6379",
            "http://h:1",
            "redis://h:99999",
            "redis://h:1/x",
        ] {
            assert!(parse_redis_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let k = Keys::new("chat");
        let node = k.node("n1");
        let users = k.users("n1");
        for key in [&k.stream, &k.gen, &k.epoch, &k.nodes, &node, &users] {
            assert!(key.starts_with("{chat}:"), "{key}");
        }
        assert_eq!(redact("redis://u:pw@h:1/0"), "redis://***@h:1/0");
    }
}
