//! `chatload`: broadcast load on chatserv (one node or a cluster) or on
//! any server of the same chat protocol (the Node `ws` peer of
//! `benches/scripts/chat-bench.sh`).
//!
//! ```text
//! chatload --nodes ws://127.0.0.1:8000 --users 1000 --senders 1 --rate 100 \
//!          --duration 5 --warmup 1 --server-pid PID
//! chatload --nodes ws://127.0.0.1:8000 --users 200 --senders 2 --rate 0   # unpaced
//! chatload --nodes ws://127.0.0.1:8000 --hold --users 10000 --extra 100 --server-pid PID
//! chatload --nodes ws://127.0.0.1:8000 --handshakes --users 1000 --rounds 5
//! ```
//!
//! Broadcast mode: `--users` users are spread round-robin over the nodes;
//! the first `--senders` of them send `--rate` messages per second between
//! them (`--rate 0`: as fast as the server takes them, each sender keeping
//! at most `--window` messages not yet delivered to everyone), each message
//! `"<sender>:<seq>:<µs>"`. Every recipient checks the sequence numbers
//! (gaps are lost messages) and times each message from send to receipt.
//! After `--warmup` seconds, `--duration` seconds are measured: deliveries
//! received in the window (achieved vs asked deliveries/s), the latency of
//! messages sent in it (all, cross-node and same-node), and with
//! `--server-pid` the servers' CPU (utime+stime from /proc/PID/stat) in
//! the window, per delivery, their RSS and threads. Then the generator
//! waits until every message has arrived (or nothing came for `--drain`
//! seconds) and counts the lost ones exactly.
//!
//! The connections are non-blocking and read by `--threads` epoll threads
//! (see [`recv`]), so 10,000 users cost a few threads, not 10,000, and the
//! generator's CPU per delivery (reported as `client_cpu_us_per_delivery`)
//! stays small beside the server's on shared cores.
//!
//! `--hold` and `--handshakes` modes: see [`hold`] and [`handshakes`].
//! The last line on stdout is `RESULT key=value ...`.

#[path = "../wsload/cpu.rs"]
mod cpu;
#[path = "../wsload/hist.rs"]
mod hist;
mod net;
mod recv;

use std::io::Write as _;
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;

use net::{open_many, OpenReport, Target};
use recv::{client_frame, now_us, Conn, Shared, Stats};

#[derive(Debug, Parser)]
#[command(name = "chatload", about = "broadcast load on chat servers")]
struct Args {
    /// Comma-separated WebSocket base URLs (ws://) of the nodes.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<String>,
    /// Users in total, spread over the nodes.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// How many of them send.
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Messages per second, all senders together; 0 = unpaced.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds to measure.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Unpaced mode: messages per sender sent and not yet received by all
    /// others (counted in deliveries), so a server's per-recipient queue
    /// limit is not what is measured.
    #[arg(long, default_value_t = 32)]
    window: u64,
    /// Receiving threads (epoll loops).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Threads opening connections, and handshakes in flight per thread.
    #[arg(long, default_value_t = 4)]
    open_threads: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Server process(es) to measure (CPU, RSS, threads), comma-separated.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// After sending, wait this many seconds without any receipt before
    /// counting what is missing as lost.
    #[arg(long, default_value_t = 3.0)]
    drain: f64,
    /// Receivers sleep this many µs after each batch of readiness events,
    /// so that frames pile up in the sockets and one `read` takes many:
    /// fewer system calls and wake-ups per delivery for the generator,
    /// which shares the cores with the server. It delays receipts by up
    /// to that much, so the default is 0 when paced (latency counts) and
    /// 500 unpaced (throughput counts; latency there is the window's).
    #[arg(long)]
    coalesce_us: Option<u64>,
    /// Prefix of the user names (`<prefix><index>`).
    #[arg(long, default_value = "load")]
    prefix: String,
    /// Hold mode: log in --users users, send one message, time its fan-out.
    #[arg(long, conflicts_with = "handshakes")]
    hold: bool,
    /// Hold mode: then try this many more logins (past a server's limit
    /// they should get 503) and send a second message.
    #[arg(long, default_value_t = 0)]
    extra: usize,
    /// Handshake mode: open and upgrade --users connections as fast as
    /// possible, --rounds times.
    #[arg(long)]
    handshakes: bool,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// A server's (or several servers') CPU seconds, resident set and threads.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_s: f64,
    rss_kb: u64,
    threads: u64,
    alive: bool,
}

#[allow(unsafe_code)]
fn clock_ticks() -> f64 {
    // SAFETY: plain query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn sample(pids: &[u32]) -> ProcSample {
    let mut s = ProcSample {
        alive: !pids.is_empty(),
        ..ProcSample::default()
    };
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // After the ")" that ends the command name: field 3 (state) on, so
        // utime and stime (fields 14 and 15) are the 12th and 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 13 || f[0] == "Z" {
            s.alive = false;
            continue;
        }
        let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
        s.cpu_s += ticks / clock_ticks();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        for line in status.lines() {
            let num = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            };
            if line.starts_with("VmRSS:") {
                s.rss_kb += num(line).unwrap_or(0);
            } else if line.starts_with("Threads:") {
                s.threads += num(line).unwrap_or(0);
            }
        }
    }
    s
}

fn sleep_until_us(t: u64) {
    let now = now_us();
    if t > now {
        std::thread::sleep(Duration::from_micros(t - now));
    }
}

/// Send message `seq` of sender `s`, stamped with the current time, on
/// `stream` (a masked text frame built on the stack: no allocation).
fn send_one(stream: &TcpStream, s: usize, seq: u64) -> std::io::Result<()> {
    let mut text = [0u8; 64];
    let mut cur = std::io::Cursor::new(&mut text[..]);
    write!(cur, "{s}:{seq}:{}", now_us())?;
    let n = cur.position() as usize;
    let mut frame = [0u8; 136];
    let key = (seq as u32).wrapping_mul(0x9E37_79B9) ^ s as u32;
    let len = client_frame(0x1, &text[..n], key, &mut frame);
    net::write_all(stream, &frame[..len])
}

/// Log in the users `ids` (spread over `targets` by index), exiting with a
/// message if some could not.
fn open_users(args: &Args, targets: &[Target], ids: &[usize], prefix: &str) -> OpenReport {
    let mut all = OpenReport::default();
    for (n, target) in targets.iter().enumerate() {
        let mine: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|i| i % targets.len() == n)
            .collect();
        let name = |i: usize| format!("{prefix}{i}");
        let r = open_many(
            target,
            &mine,
            &name,
            args.open_threads,
            args.concurrency,
            Duration::from_secs(10),
        );
        all.conns.extend(r.conns);
        for (k, v) in r.refused {
            *all.refused.entry(k).or_default() += v;
        }
        all.failed += r.failed;
        all.first_error = all.first_error.or(r.first_error);
        all.secs += r.secs;
    }
    all.conns.sort_by_key(|c| c.user);
    all
}

fn refused_text(r: &OpenReport) -> String {
    if r.refused.is_empty() {
        return "none".into();
    }
    r.refused
        .iter()
        .map(|(k, v)| format!("{k}x{v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Start `threads` receiving threads over `conns` (round-robin) inside
/// `scope`.
fn spawn_receivers<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    conns: Vec<net::Opened>,
    threads: usize,
    shared: &'s Shared,
) -> Vec<std::thread::ScopedJoinHandle<'s, Stats>> {
    let threads = threads.max(1);
    let mut parts: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, c) in conns.into_iter().enumerate() {
        parts[i % threads].push(Conn {
            user: c.user,
            stream: c.stream,
            carry: c.leftover,
            dead: false,
            closed: false,
        });
    }
    parts
        .into_iter()
        .map(|part| scope.spawn(move || recv::run(part, shared)))
        .collect()
}

/// Wait until `shared.received` reaches `want`, or nothing arrived for
/// `idle`; returns whether it was reached.
fn wait_received(shared: &Shared, want: u64, idle: Duration, since_us: u64) -> bool {
    loop {
        if shared.received.load(Ordering::Acquire) >= want {
            return true;
        }
        let last = shared.last_rx_us.load(Ordering::Relaxed).max(since_us);
        if now_us().saturating_sub(last) > idle.as_micros() as u64 {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    now_us();
    net::raise_nofile();
    let targets: Vec<Target> = match args.nodes.iter().map(|u| Target::parse(u)).collect() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("chatload: {e}");
            return ExitCode::from(1);
        }
    };
    if args.handshakes {
        return handshakes(&args, &targets[0]);
    }
    if args.hold {
        return hold(&args, &targets);
    }
    broadcast(&args, &targets)
}

fn broadcast(args: &Args, targets: &[Target]) -> ExitCode {
    let n_nodes = targets.len();
    let senders = args.senders.clamp(1, args.users.max(1));
    let ids: Vec<usize> = (0..args.users).collect();
    let opened = open_users(args, targets, &ids, &args.prefix);
    if opened.conns.len() != args.users {
        eprintln!(
            "chatload: only {} of {} users logged in (refused: {}; failed: {}, first: {})",
            opened.conns.len(),
            args.users,
            refused_text(&opened),
            opened.failed,
            opened.first_error.as_deref().unwrap_or("-")
        );
        println!(
            "RESULT mode=broadcast users={} logged_in={} errors=1",
            args.users,
            opened.conns.len()
        );
        return ExitCode::from(1);
    }
    let writers: Vec<TcpStream> = opened.conns[..senders]
        .iter()
        .map(|c| c.stream.try_clone().expect("dup"))
        .collect();
    // Let the servers finish registering the logins: a message broadcast
    // before a recipient is in the server's user list never reaches it.
    std::thread::sleep(Duration::from_millis(500));
    let mut shared = Shared::new(senders, n_nodes);
    let coalesce = args
        .coalesce_us
        .unwrap_or(if args.rate > 0.0 { 0 } else { 500 });
    shared.coalesce = Duration::from_micros(coalesce);
    let peers = args.users as u64 - 1;
    let t0 = now_us();
    let start = t0 + (args.warmup * 1e6) as u64;
    let end = start + (args.duration * 1e6) as u64;
    shared.window_start.store(start, Ordering::Relaxed);
    shared.window_end.store(end, Ordering::Relaxed);
    let (stats, sent, before, after, cpu0, cpu1, send_err) = std::thread::scope(|scope| {
        let receivers = spawn_receivers(scope, opened.conns, args.threads, &shared);
        let shared = &shared;
        let writers = &writers;
        let sender = scope.spawn(move || {
            let _ = shared.sender.set(std::thread::current());
            let mut sent = vec![0u64; senders];
            let mut err = None;
            if args.rate > 0.0 {
                let interval = 1e6 / args.rate;
                for k in 0u64.. {
                    let due = t0 + (k as f64 * interval) as u64;
                    if due >= end {
                        break;
                    }
                    sleep_until_us(due);
                    let s = k as usize % senders;
                    if let Err(e) = send_one(&writers[s], s, sent[s]) {
                        err = Some(e);
                        break;
                    }
                    sent[s] += 1;
                }
            } else {
                let full = |s: usize, sent: &[u64]| {
                    sent[s] * peers - shared.delivered[s].load(Ordering::Acquire)
                        >= args.window * peers
                };
                'send: while now_us() < end {
                    let mut progress = false;
                    for s in 0..senders {
                        if !full(s, &sent) {
                            if let Err(e) = send_one(&writers[s], s, sent[s]) {
                                err = Some(e);
                                break 'send;
                            }
                            sent[s] += 1;
                            progress = true;
                        }
                    }
                    if !progress {
                        shared.sender_waiting.store(true, Ordering::Release);
                        if (0..senders).all(|s| full(s, &sent)) {
                            std::thread::park_timeout(Duration::from_millis(1));
                        }
                        shared.sender_waiting.store(false, Ordering::Release);
                    }
                }
            }
            (sent, err)
        });
        sleep_until_us(start);
        let (before, cpu0) = (sample(&args.server_pid), cpu::process_cpu());
        sleep_until_us(end);
        let (after, cpu1) = (sample(&args.server_pid), cpu::process_cpu());
        let (sent, err) = sender.join().expect("sender thread");
        let expected: u64 = sent.iter().sum::<u64>() * peers;
        wait_received(
            shared,
            expected,
            Duration::from_secs_f64(args.drain),
            now_us(),
        );
        shared.quit.store(true, Ordering::Release);
        let mut stats = Stats::default();
        for r in receivers {
            stats.merge(r.join().expect("receiver thread"));
        }
        (stats, sent, before, after, cpu0, cpu1, err)
    });
    let sent_total: u64 = sent.iter().sum();
    let expected = sent_total * peers;
    let unique = stats.received - stats.dups;
    let lost = expected.saturating_sub(unique);
    let window = (end - start) as f64 / 1e6;
    let achieved = stats.rx_window as f64 / window;
    let asked = args.rate * peers as f64;
    let mut all = stats.same.clone();
    all.merge(&stats.cross);
    let ms = |h: &hist::Histogram, q: f64| h.quantile(q) as f64 / 1e6;
    let server_cpu = after.cpu_s - before.cpu_s;
    let per_delivery = |cpu: f64| {
        if stats.rx_window > 0 {
            cpu * 1e6 / stats.rx_window as f64
        } else {
            0.0
        }
    };
    let closes: u64 = stats.closes.values().sum();
    let close_text = stats
        .closes
        .iter()
        .map(|(k, v)| format!("{k}x{v}"))
        .collect::<Vec<_>>()
        .join(",");
    let errors = stats.errors + stats.bad + closes + u64::from(send_err.is_some());
    if let Some(e) = &send_err {
        eprintln!("chatload: sending failed: {e}");
    }
    if let Some(e) = &stats.first_error {
        eprintln!("chatload: first connection error: {e}");
    }
    println!(
        "{n_nodes} node(s), {} users, {senders} sender(s) at {}: {sent_total} messages, {unique} of \
         {expected} deliveries ({lost} lost); in {window:.1}s: {achieved:.0} deliveries/s of {asked:.0} asked, \
         p50 {:.2} ms p99 {:.2} ms max {:.2} ms; server CPU {:.0}% ({:.2} µs/delivery), RSS {} kB, {} threads; \
         generator CPU {:.0}%; errors {errors} (closes: {})",
        args.users,
        if args.rate > 0.0 { format!("{} msg/s", args.rate) } else { "unpaced".into() },
        ms(&all, 0.5),
        ms(&all, 0.99),
        all.max() as f64 / 1e6,
        server_cpu / window * 100.0,
        per_delivery(server_cpu),
        after.rss_kb,
        after.threads,
        (cpu1 - cpu0) / window * 100.0,
        if close_text.is_empty() { "none" } else { &close_text },
    );
    println!(
        "RESULT mode=broadcast nodes={n_nodes} users={} senders={senders} rate={} window_s={window:.3} \
         sent={sent_total} deliveries={unique} expected={expected} lost={lost} gaps={} dups={} \
         asked_per_s={asked:.1} achieved_per_s={achieved:.1} deliveries_per_s={achieved:.1} \
         p50_ms={:.3} p99_ms={:.3} max_ms={:.3} cross_p50_ms={:.3} cross_p99_ms={:.3} \
         same_p50_ms={:.3} same_p99_ms={:.3} server_cpu_s={server_cpu:.3} server_cpu_pct={:.1} \
         server_cpu_us_per_delivery={:.3} server_rss_kb={} server_threads={} \
         client_cpu_pct={:.1} client_cpu_us_per_delivery={:.3} closes={closes} errors={errors}",
        args.users,
        args.rate,
        stats.gaps,
        stats.dups,
        ms(&all, 0.5),
        ms(&all, 0.99),
        all.max() as f64 / 1e6,
        ms(&stats.cross, 0.5),
        ms(&stats.cross, 0.99),
        ms(&stats.same, 0.5),
        ms(&stats.same, 0.99),
        server_cpu / window * 100.0,
        per_delivery(server_cpu),
        after.rss_kb,
        after.threads,
        (cpu1 - cpu0) / window * 100.0,
        per_delivery(cpu1 - cpu0),
    );
    if errors == 0 && lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `--hold`: log in `--users` users and keep them; send one message from
/// the first and time until the last of the others has it (the fan-out of
/// one message to everyone); report the server's RSS per connection and
/// threads. With `--extra M`, then try M more logins (a server at its
/// connection limit should answer 503 and go on) and time a second
/// message's fan-out, which shows the server survived them.
fn hold(args: &Args, targets: &[Target]) -> ExitCode {
    let before = sample(&args.server_pid);
    let ids: Vec<usize> = (0..args.users).collect();
    let opened = open_users(args, targets, &ids, &args.prefix);
    let logged_in = opened.conns.len();
    eprintln!(
        "chatload: {logged_in} of {} logged in in {:.2}s (refused: {}; failed: {}{})",
        args.users,
        opened.secs,
        refused_text(&opened),
        opened.failed,
        opened
            .first_error
            .as_deref()
            .map_or(String::new(), |e| format!(", first: {e}"))
    );
    let Some(first) = opened.conns.first().filter(|c| c.user == 0) else {
        println!(
            "RESULT mode=hold users={} logged_in={logged_in} errors=1",
            args.users
        );
        return ExitCode::from(1);
    };
    let writer = first.stream.try_clone().expect("dup");
    let shared = Shared::new(1, targets.len());
    shared.window_start.store(0, Ordering::Relaxed);
    let peers = logged_in as u64 - 1;
    let idle = Duration::from_secs(10);
    let mut extra = OpenReport::default();
    let (stats, after, fan1, got1, fan2, got2, alive) = std::thread::scope(|scope| {
        let receivers = spawn_receivers(scope, opened.conns, args.threads, &shared);
        // The server's threads reach their idle read, its allocator settles.
        std::thread::sleep(Duration::from_secs(1));
        let after = sample(&args.server_pid);
        let fan = |seq: u64, want: u64| {
            let t = now_us();
            if let Err(e) = send_one(&writer, 0, seq) {
                // The first user's connection is gone (the server dropped
                // it): nothing to time, and the errors say why.
                eprintln!("chatload: message {seq} could not be sent: {e}");
                return (f64::NAN, 0);
            }
            wait_received(&shared, want, idle, t);
            let got = shared.received.load(Ordering::Acquire);
            let last = shared.last_rx_us.load(Ordering::Relaxed);
            (last.saturating_sub(t) as f64 / 1e3, got)
        };
        let (fan1, got1) = fan(0, peers);
        let (mut fan2, mut got2) = (f64::NAN, 0);
        if args.extra > 0 {
            let more: Vec<usize> = (args.users..args.users + args.extra).collect();
            extra = open_users(args, targets, &more, &args.prefix);
            (fan2, got2) = fan(1, got1 + peers);
            got2 -= got1;
        }
        let alive = sample(&args.server_pid).alive;
        shared.quit.store(true, Ordering::Release);
        let mut stats = Stats::default();
        for r in receivers {
            stats.merge(r.join().expect("receiver thread"));
        }
        (stats, after, fan1, got1, fan2, got2, alive)
    });
    let per_conn = if logged_in > 0 {
        (after.rss_kb as f64 - before.rss_kb as f64) / logged_in as f64
    } else {
        0.0
    };
    let closes: u64 = stats.closes.values().sum();
    let errors = opened.failed
        + opened.refused.values().sum::<u64>()
        + stats.errors
        + stats.bad
        + closes
        + extra.failed
        + u64::from(got1 < peers)
        + u64::from(args.extra > 0 && got2 < peers);
    if let Some(e) = &stats.first_error {
        eprintln!("chatload: first connection error: {e}");
    }
    println!(
        "{logged_in} of {} users held: one message reached {got1} of {peers} others in {fan1:.1} ms; \
         server RSS {} -> {} kB ({per_conn:.1} KiB per connection), {} threads; \
         {} extra logins: {} upgraded, refused {}, failed {}; second message: {got2} in {fan2:.1} ms; \
         server alive: {alive}; errors {errors}",
        args.users,
        before.rss_kb,
        after.rss_kb,
        after.threads,
        args.extra,
        extra.conns.len(),
        refused_text(&extra),
        extra.failed,
    );
    println!(
        "RESULT mode=hold users={} logged_in={logged_in} open_s={:.3} fanout_ms={fan1:.3} \
         fanout_received={got1} rss_before_kb={} rss_after_kb={} rss_per_conn_kib={per_conn:.2} \
         server_threads={} extra={} extra_upgraded={} extra_503={} extra_refused={} extra_failed={} \
         second_fanout_ms={fan2:.3} second_received={got2} alive={} errors={errors}",
        args.users,
        opened.secs,
        before.rss_kb,
        after.rss_kb,
        after.threads,
        args.extra,
        extra.conns.len(),
        extra.refused.get(&503).copied().unwrap_or(0),
        refused_text(&extra),
        extra.failed,
        u8::from(alive),
    );
    if errors == 0 && (alive || args.server_pid.is_empty()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `--handshakes`: `--rounds` times, open and upgrade `--users`
/// connections (distinct users, fresh names each round) from
/// `--open-threads` threads with `--concurrency` handshakes in flight each,
/// hold them until the last 101 has arrived, then close them all and let
/// the server settle for a second. A round's rate is its upgrades over the
/// time from its first connect to its last 101.
fn handshakes(args: &Args, target: &Target) -> ExitCode {
    let ids: Vec<usize> = (0..args.users).collect();
    let mut rates = Vec::new();
    let mut cpus = Vec::new();
    let mut failures = 0;
    for round in 0..args.rounds.max(1) {
        let (before, own0) = (sample(&args.server_pid), cpu::process_cpu());
        let name = |i: usize| format!("{}r{round}n{i}", args.prefix);
        let r = open_many(
            target,
            &ids,
            &name,
            args.open_threads,
            args.concurrency,
            Duration::from_secs(10),
        );
        let (after, own1) = (sample(&args.server_pid), cpu::process_cpu());
        let ok = r.conns.len();
        let rate = if r.secs > 0.0 {
            ok as f64 / r.secs
        } else {
            0.0
        };
        let cpu_us = (after.cpu_s - before.cpu_s) * 1e6 / ok.max(1) as f64;
        let own_us = (own1 - own0) * 1e6 / ok.max(1) as f64;
        failures += (args.users - ok) as u64;
        eprintln!(
            "round {round}: {ok} of {} upgraded in {:.1} ms: {rate:.0}/s, server CPU {cpu_us:.1} µs each, generator {own_us:.1} µs; refused {}, failed {}{}",
            args.users,
            r.secs * 1e3,
            refused_text(&r),
            r.failed,
            r.first_error.as_deref().map_or(String::new(), |e| format!(" ({e})"))
        );
        rates.push(rate);
        cpus.push(cpu_us);
        drop(r);
        std::thread::sleep(Duration::from_secs(1));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (lo, hi) = (
        rates.iter().copied().fold(f64::INFINITY, f64::min),
        rates.iter().copied().fold(0.0, f64::max),
    );
    let (rate, cpu) = (median(&mut rates), median(&mut cpus));
    println!(
        "{} connections x {} rounds: median {rate:.0} handshakes/s (min {lo:.0}, max {hi:.0}), server CPU {cpu:.1} µs per handshake, {failures} failed",
        args.users, args.rounds
    );
    println!(
        "RESULT mode=handshakes connections={} rounds={} hs_per_s={rate:.1} hs_min={lo:.1} hs_max={hi:.1} \
         server_cpu_us_per_handshake={cpu:.2} errors={failures}",
        args.users, args.rounds
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
