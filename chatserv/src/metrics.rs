//! Prometheus metrics (`/metrics` on `--admin-listen`), through the
//! `prometheus-client` crate.
//!
//! One process-wide set, reached with [`get`], so that each place that
//! counts something needs one line and no plumbing.

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric chatserv exports.
#[derive(Debug)]
pub struct Metrics {
    /// Logged-in WebSocket connections on this node (set at scrape time).
    pub connections: Gauge,
    /// Users online across the cluster (set at scrape time).
    pub online: Gauge,
    /// Logins accepted.
    pub logins: Counter,
    /// Sessions closed with 4001, by `scope`: `local` (the new login was on
    /// this node) or `remote` (on another node).
    pub kicks: Family<Labels, Counter>,
    /// Text messages received from this node's users.
    pub messages_in: Counter,
    /// Messages queued to a recipient on this node.
    pub deliveries: Counter,
    /// Connections the server closed, by `code` (1008, 1009, 1013).
    pub closes: Family<Labels, Counter>,
    /// Upgrade requests refused, by HTTP `status`.
    pub handshake_rejections: Family<Labels, Counter>,
    /// 1 while this node's Redis links are up (cluster mode).
    pub redis_connected: Gauge,
    /// Messages of this node not yet read back from the stream.
    pub outbox_depth: Gauge,
    /// Age of the newest stream entry read, in seconds (0 when caught up).
    pub stream_lag_seconds: Gauge<f64, AtomicU64>,
    /// Entries of other nodes lost from the stream before this node read
    /// them (a gap in a node's sequence numbers).
    pub stream_entries_lost: Counter,
    /// From a remote user's send to its queueing here, in seconds.
    pub cross_node_latency: Histogram,
    registry: Registry,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// A one-label set.
pub fn label(name: &'static str, value: impl ToString) -> Labels {
    vec![(name, value.to_string())]
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("chatserv");
        let connections = Gauge::default();
        let online = Gauge::default();
        let logins = Counter::default();
        let kicks = Family::default();
        let messages_in = Counter::default();
        let deliveries = Counter::default();
        let closes = Family::default();
        let handshake_rejections = Family::default();
        let redis_connected = Gauge::default();
        let outbox_depth = Gauge::default();
        let stream_lag_seconds = Gauge::<f64, AtomicU64>::default();
        let stream_entries_lost = Counter::default();
        let cross_node_latency = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register(
            "connections",
            "Logged-in WebSocket connections on this node",
            connections.clone(),
        );
        registry.register(
            "online_users",
            "Users online across the cluster",
            online.clone(),
        );
        registry.register("logins", "Logins accepted", logins.clone());
        registry.register(
            "kicks",
            "Sessions closed with 4001 because the name logged in again (scope: local or remote)",
            kicks.clone(),
        );
        registry.register(
            "messages_in",
            "Text messages received from this node's users",
            messages_in.clone(),
        );
        registry.register(
            "deliveries",
            "Messages queued to a recipient on this node",
            deliveries.clone(),
        );
        registry.register(
            "closes",
            "Connections closed by the server, by close code",
            closes.clone(),
        );
        registry.register(
            "handshake_rejections",
            "WebSocket upgrade requests refused, by HTTP status",
            handshake_rejections.clone(),
        );
        registry.register(
            "redis_connected",
            "1 while the Redis links of this node are up",
            redis_connected.clone(),
        );
        registry.register(
            "outbox_depth",
            "Messages of this node not yet read back from the Redis stream",
            outbox_depth.clone(),
        );
        registry.register(
            "stream_lag_seconds",
            "Age of the newest stream entry read by this node",
            stream_lag_seconds.clone(),
        );
        registry.register(
            "stream_entries_lost",
            "Entries of other nodes trimmed or lost from the Redis stream before this node read them",
            stream_entries_lost.clone(),
        );
        registry.register(
            "cross_node_latency_seconds",
            "Time from a user's send on another node to the message being queued here",
            cross_node_latency.clone(),
        );
        Metrics {
            connections,
            online,
            logins,
            kicks,
            messages_in,
            deliveries,
            closes,
            handshake_rejections,
            redis_connected,
            outbox_depth,
            stream_lag_seconds,
            stream_entries_lost,
            cross_node_latency,
            registry,
        }
    }

    /// Count a close the server decided on.
    pub fn close(&self, code: u16) {
        self.closes.get_or_create(&label("code", code)).inc();
    }

    /// Count a refused upgrade.
    pub fn rejected(&self, status: u16) {
        self.handshake_rejections
            .get_or_create(&label("status", status))
            .inc();
    }

    /// Count a 4001.
    pub fn kick(&self, scope: &'static str) {
        self.kicks.get_or_create(&label("scope", scope)).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
