//! `chatload`: broadcast load on a chatserv cluster (or one node).
//!
//! ```text
//! chatload --nodes ws://127.0.0.1:8001,ws://127.0.0.1:8002 --users 200 --senders 2 \
//!          --rate 1000 --duration 5s
//! ```
//!
//! `--users` users are spread round-robin over the nodes; the first
//! `--senders` of them (on different nodes when there are several) send
//! `--rate` messages per second between them, each stamped with its send
//! time. Every user counts what it receives and times each message from
//! send to receipt, apart for recipients on the sender's node and on
//! another node. The last line on stdout is `RESULT key=value ...`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wsproto::MaybeTlsStream;

use clap::Parser;
use wsproto::{ClientRequest, Config, Message, WebSocket};

#[derive(Debug, Parser)]
#[command(name = "chatload", about = "broadcast load on chatserv nodes")]
struct Args {
    /// Comma-separated WebSocket base URLs of the nodes.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// Users in total, spread over the nodes.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// How many of them send.
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds to send.
    #[arg(long, default_value_t = 5)]
    duration: u64,
}

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn connect(base: &str, user: &str) -> WebSocket<MaybeTlsStream> {
    let url = format!("{}/?user={user}", base.trim_end_matches('/'));
    let request = ClientRequest::new(&url).expect("url");
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let (ws, _) = wsproto::connect_with(&request, &config).expect("connect");
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    ws
}

#[derive(Default)]
struct Stats {
    received: u64,
    same_node: Vec<u32>,
    cross_node: Vec<u32>,
}

fn percentile(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    f64::from(v[i]) / 1000.0
}

fn main() {
    let args = Args::parse();
    let n_nodes = args.nodes.len();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut writers = Vec::new();
    let mut threads = Vec::new();
    for i in 0..args.users {
        let node = i % n_nodes;
        let ws = connect(&args.nodes[node], &format!("load{i}"));
        let (mut reader, writer) = ws.split().expect("split");
        if i < args.senders {
            writers.push((node, writer));
        }
        let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
        threads.push(std::thread::spawn(move || {
            let mut mine = Stats::default();
            let mut idle_since = None::<Instant>;
            loop {
                match reader.read() {
                    Ok(Message::Text(t)) => {
                        idle_since = None;
                        let body = t.split(" -- FROM ").next().unwrap_or("");
                        let mut parts = body.split(':');
                        let from: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                        let sent: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                        let lat = micros().saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
                        mine.received += 1;
                        if from == node {
                            mine.same_node.push(lat);
                        } else {
                            mine.cross_node.push(lat);
                        }
                    }
                    Ok(Message::Close(f)) => {
                        eprintln!("load{i}: closed by the server: {f:?}");
                        break;
                    }
                    Ok(_) => {}
                    Err(wsproto::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if stop.load(Ordering::Acquire) {
                            let since = *idle_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(2) {
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("load{i}: {e}");
                        break;
                    }
                }
            }
            let mut s = stats.lock().unwrap();
            s.received += mine.received;
            s.same_node.extend(mine.same_node);
            s.cross_node.extend(mine.cross_node);
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let total = args.rate * args.duration;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let mut sent = 0u64;
    while sent < total {
        let (node, w) = &mut writers[(sent as usize) % args.senders.max(1)];
        w.send(Message::text(format!("{node}:{}", micros())))
            .expect("send");
        sent += 1;
        let due = started + interval.mul_f64(sent as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Release);
    for t in threads {
        let _ = t.join();
    }
    let mut s = stats.lock().unwrap();
    let expected = sent * (args.users as u64 - 1);
    let elapsed = started.elapsed().as_secs_f64() - 2.0;
    let (c50, c99) = (
        percentile(&mut s.cross_node, 0.5),
        percentile(&mut s.cross_node, 0.99),
    );
    let (l50, l99) = (
        percentile(&mut s.same_node, 0.5),
        percentile(&mut s.same_node, 0.99),
    );
    println!(
        "{n_nodes} node(s), {} users, {sent} messages in {send_secs:.2}s: {} of {expected} deliveries, \
         {:.0} deliveries/s; cross-node p50 {c50:.2} ms p99 {c99:.2} ms; same-node p50 {l50:.2} ms p99 {l99:.2} ms",
        args.users,
        s.received,
        s.received as f64 / elapsed.max(send_secs),
    );
    println!(
        "RESULT nodes={n_nodes} users={} sent={sent} deliveries={} expected={expected} \
         deliveries_per_s={:.1} cross_p50_ms={c50:.3} cross_p99_ms={c99:.3} same_p50_ms={l50:.3} same_p99_ms={l99:.3}",
        args.users,
        s.received,
        s.received as f64 / elapsed.max(send_secs)
    );
}
