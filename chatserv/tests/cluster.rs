//! Cluster mode against a real `redis-server` started by each test: 2–3
//! chatserv processes on one Redis, with Redis paused, restarted, emptied
//! or absent, and a node killed.

mod common;

use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::flood::{flood_until_dropped, numbered_reader, stalled_client, Flood};
use common::redis::{self, Redis};
use common::{code, http, read_until_close, Server};
use wsproto::{Message, WebSocket};

/// Start a node on `url` and wait until it delivers through the stream.
fn node(url: &str, id: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--redis", url, "--node-id", id];
    if !extra.contains(&"--send-queue") {
        args.extend(["--send-queue", "100000"]);
    }
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    server.wait_log("delivering through the stream", 1);
    server
}

/// Read texts until `n` arrived or `within` passed (skipping pings).
fn collect<S: std::io::Read + std::io::Write + wsproto::SetTimeouts>(
    ws: &mut WebSocket<S>,
    n: usize,
    within: Duration,
) -> Vec<String> {
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(t)) => got.push(t),
            Ok(Message::Close(f)) => panic!("unexpected close {f:?} after {} texts", got.len()),
            Ok(_) => {}
            Err(e) if read_timed_out(&e) => {}
            Err(e) => panic!("read failed: {e} after {} texts", got.len()),
        }
    }
    got
}

/// A read that only hit the socket's read time-out.
fn read_timed_out(e: &wsproto::Error) -> bool {
    matches!(e, wsproto::Error::Io(e) if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ))
}

/// Nothing more arrives within `within`.
fn quiet<S: std::io::Read + std::io::Write + wsproto::SetTimeouts>(
    ws: &mut WebSocket<S>,
    within: Duration,
) -> Vec<String> {
    collect(ws, usize::MAX, within)
}

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    );
    (status, String::from_utf8_lossy(&body).to_string())
}

/// Per sender, the numbers of its messages `"<sender>-<n> -- FROM <sender>"`.
fn by_sender(texts: &[String]) -> HashMap<String, Vec<u32>> {
    let mut map: HashMap<String, Vec<u32>> = HashMap::new();
    for t in texts {
        let (msg, from) = t.rsplit_once(" -- FROM ").expect("a chat line");
        let n: u32 = msg.rsplit_once('-').unwrap().1.parse().unwrap();
        map.entry(from.to_owned()).or_default().push(n);
    }
    map
}

#[test]
fn broadcast_across_three_nodes_in_one_order() {
    if !redis::available() {
        return;
    }
    let redis = Redis::start(false);
    let nodes: Vec<Server> = ["a", "b", "c"]
        .iter()
        .map(|id| node(&redis.url(), id, &[]))
        .collect();
    // A receiver and a sender on each node.
    let mut receivers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.connect(&format!("r{i}")))
        .collect();
    let mut senders: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.connect(&format!("s{i}")))
        .collect();
    const N: u32 = 1000;
    let threads: Vec<JoinHandle<WebSocket<wsproto::MaybeTlsStream>>> = senders
        .drain(..)
        .enumerate()
        .map(|(i, mut ws)| {
            std::thread::spawn(move || {
                for n in 0..N {
                    ws.send(Message::text(format!("s{i}-{n}"))).unwrap();
                }
                ws
            })
        })
        .collect();
    let senders: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total = 3 * N as usize;
    let seen: Vec<Vec<String>> = receivers
        .iter_mut()
        .map(|ws| collect(ws, total, Duration::from_secs(30)))
        .collect();
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.len(), total, "receiver r{i} got {} of {total}", s.len());
        assert_eq!(s, &seen[0], "receiver r{i} saw another order than r0");
        for (from, ns) in by_sender(s) {
            assert_eq!(ns, (0..N).collect::<Vec<_>>(), "per-sender order of {from}");
        }
    }
    // Each sender got the others' messages, never its own, in the same
    // order as everyone.
    for (i, mut ws) in senders.into_iter().enumerate() {
        let got = collect(&mut ws, 2 * N as usize, Duration::from_secs(20));
        assert_eq!(got.len(), 2 * N as usize);
        let me = format!(" -- FROM s{i}");
        assert!(
            got.iter().all(|t| !t.ends_with(&me)),
            "s{i} got its own message"
        );
        let expected: Vec<&String> = seen[0].iter().filter(|t| !t.ends_with(&me)).collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), expected);
    }
    for ws in receivers.iter_mut() {
        assert!(
            quiet(ws, Duration::from_millis(500)).is_empty(),
            "a duplicate"
        );
    }
}

#[test]
fn login_on_another_node_kicks_and_racing_logins_leave_one() {
    if !redis::available() {
        return;
    }
    let redis = Redis::start(false);
    let a = node(&redis.url(), "a", &[]);
    let b = node(&redis.url(), "b", &[]);
    let mut old = a.connect("alice");
    let mut new = b.connect("alice");
    let (_, frame) = read_until_close(&mut old);
    assert_eq!(code(&frame), Some(4001));
    assert_eq!(frame.unwrap().reason, "logged in elsewhere");
    a.wait_log("logged in on node b", 1);
    // The new session works across nodes.
    let mut bob = a.connect("bob");
    bob.send(Message::text("hi")).unwrap();
    assert_eq!(
        collect(&mut new, 1, Duration::from_secs(5)),
        ["hi -- FROM bob"]
    );

    // Racing logins: of each pair, exactly one survives.
    for round in 0..5 {
        let user = format!("racer{round}");
        let (ua, ub) = (a.url(&user), b.url(&user));
        let ta = std::thread::spawn(move || connect_raw(&ua));
        let tb = std::thread::spawn(move || connect_raw(&ub));
        let mut pair = [ta.join().unwrap(), tb.join().unwrap()];
        // Exactly one of the two is closed with 4001: wait (bounded) for
        // the first Close, then give the other a while to (wrongly) get
        // one too.
        let mut closed = [false, false];
        let mut deadline = Instant::now() + Duration::from_secs(10);
        let mut grace_started = false;
        while Instant::now() < deadline {
            for (ws, closed) in pair.iter_mut().zip(closed.iter_mut()) {
                if *closed {
                    continue;
                }
                ws.get_mut()
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                match ws.read() {
                    Ok(Message::Close(f)) => {
                        assert_eq!(code(&f), Some(4001));
                        *closed = true;
                    }
                    Ok(Message::Text(t)) => panic!("round {round}: unexpected text {t}"),
                    Ok(_) => {}
                    Err(e) if read_timed_out(&e) => {}
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            if closed.contains(&true) && !grace_started {
                grace_started = true;
                deadline = Instant::now() + Duration::from_secs(1);
            }
        }
        let alive = closed.iter().filter(|c| !**c).count();
        assert_eq!(
            alive, 1,
            "round {round}: {alive} of the two racing logins survived"
        );
        // The survivor still chats.
        bob.send(Message::text(format!("ping{round}"))).unwrap();
        let survivor = if closed[0] {
            &mut pair[1]
        } else {
            &mut pair[0]
        };
        assert_eq!(
            collect(survivor, 1, Duration::from_secs(5)),
            [format!("ping{round} -- FROM bob")]
        );
    }
}

fn connect_raw(url: &str) -> WebSocket<wsproto::MaybeTlsStream> {
    let request = wsproto::ClientRequest::new(url).unwrap();
    let config = wsproto::Config {
        deflate: None,
        ..wsproto::Config::default()
    };
    let (ws, response) = wsproto::connect_with(&request, &config).unwrap();
    assert_eq!(response.status, 101);
    ws
}

/// Two nodes, a sender and a receiver on each; each sender sends one
/// message every 20 ms for `secs` seconds while `fault` runs on Redis
/// (from 1.5 s on). Afterwards every receiver must have every message of
/// both senders exactly once, in per-sender order. Returns the nodes.
fn steady_flow(redis: &mut Redis, secs: u64, fault: impl FnOnce(&mut Redis)) -> Vec<Server> {
    let nodes = vec![node(&redis.url(), "a", &[]), node(&redis.url(), "b", &[])];
    let mut receivers: Vec<_> = nodes
        .iter()
        .map(|n| n.connect(&format!("rcv{}", n.addr.port())))
        .collect();
    let senders: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (i, n.connect(&format!("s{i}"))))
        .collect();
    let per_sender = (secs * 1000 / 20) as u32;
    let threads: Vec<_> = senders
        .into_iter()
        .map(|(i, mut ws)| {
            std::thread::spawn(move || {
                for n in 0..per_sender {
                    ws.send(Message::text(format!("s{i}-{n}"))).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
                ws
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    fault(redis);
    let _senders: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total = 2 * per_sender as usize;
    for (i, ws) in receivers.iter_mut().enumerate() {
        let got = collect(ws, total, Duration::from_secs(25));
        let map = by_sender(&got);
        for s in ["s0", "s1"] {
            let ns = map.get(s).cloned().unwrap_or_default();
            assert_eq!(
                ns,
                (0..per_sender).collect::<Vec<_>>(),
                "receiver {i}: messages of {s} (got {} of {per_sender})",
                ns.len()
            );
        }
        assert!(
            quiet(ws, Duration::from_millis(500)).is_empty(),
            "a duplicate"
        );
    }
    nodes
}

#[test]
fn redis_paused_5s_loses_and_duplicates_nothing() {
    if !redis::available() {
        return;
    }
    let mut redis = Redis::start(false);
    let nodes = steady_flow(&mut redis, 8, |r| {
        r.pause();
        std::thread::sleep(Duration::from_secs(5));
        r.resume();
    });
    nodes[0].wait_log("redis unreachable: serving local users directly", 1);
}

#[test]
fn redis_restarted_with_aof_loses_and_duplicates_nothing() {
    if !redis::available() {
        return;
    }
    let mut redis = Redis::start(true);
    let nodes = steady_flow(&mut redis, 6, |r| {
        r.stop();
        std::thread::sleep(Duration::from_secs(2));
        r.restart();
    });
    assert!(!nodes[0].log().iter().any(|l| l.contains("came back empty")));
}

#[test]
fn redis_restarted_empty_still_delivers_the_outbox_once() {
    if !redis::available() {
        return;
    }
    let mut redis = Redis::start(false);
    let nodes = steady_flow(&mut redis, 6, |r| {
        r.restart_empty();
    });
    nodes[0].wait_log("came back empty", 1);
    nodes[1].wait_log("came back empty", 1);
}

/// Node b is stopped (SIGSTOP) while a's sender goes on and a reads its
/// own lines back; then Redis comes back empty and b resumes. The lines b
/// had not read were lost with the stream: a writes its history again, so
/// b's user still gets every line once and in order, and is not closed
/// with 4002 for a gap.
#[test]
fn redis_emptied_while_a_node_lagged_still_delivers_everything() {
    if !redis::available() {
        return;
    }
    let mut redis = Redis::start(false);
    let a = node(&redis.url(), "a", &[]);
    let b = node(&redis.url(), "b", &[]);
    let mut receiver = b.connect("rita");
    let mut sender = a.connect("sam");
    let send = |ws: &mut WebSocket<_>, range: std::ops::Range<u32>| {
        for n in range {
            ws.send(Message::text(format!("m-{n}"))).unwrap();
        }
    };
    let numbers = |texts: Vec<String>| by_sender(&texts).remove("sam").unwrap_or_default();
    send(&mut sender, 0..5);
    assert_eq!(
        numbers(collect(&mut receiver, 5, Duration::from_secs(10))),
        (0..5).collect::<Vec<_>>()
    );
    b.signal("STOP");
    send(&mut sender, 5..10);
    // a reads its own lines back from the stream (and forgets them from
    // its outbox) while b reads nothing.
    std::thread::sleep(Duration::from_millis(700));
    redis.restart_empty();
    b.signal("CONT");
    a.wait_log("redis lost its stream", 1);
    send(&mut sender, 10..12);
    assert_eq!(
        numbers(collect(&mut receiver, 7, Duration::from_secs(20))),
        (5..12).collect::<Vec<_>>()
    );
    assert!(
        quiet(&mut receiver, Duration::from_millis(500)).is_empty(),
        "a duplicate"
    );
    assert!(!b
        .log()
        .iter()
        .any(|l| l.contains("closing this node's users with 4002")));
}

#[test]
fn killed_node_leaves_presence_and_its_names_log_in_elsewhere() {
    if !redis::available() {
        return;
    }
    let redis = Redis::start(false);
    let a = node(&redis.url(), "a", &[]);
    let mut b = node(&redis.url(), "b", &[]);
    let _x = b.connect("xavier");
    let _y = a.connect("yann");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(a.addr, "/users");
        assert_eq!(status, 200);
        if body.contains("\"xavier\"") && body.contains("\"yann\"") {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // `online=` counts the cluster.
    let _z = a.connect("zoe");
    a.wait_log("online=3", 1);
    b.sigkill();
    // The name is free at once on another node.
    let mut x = a.connect("xavier");
    let killed = Instant::now();
    loop {
        let (_, body) = get(a.addr, "/users");
        if !body.contains("\"b\"") {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut y = a.connect("yann2");
    y.send(Message::text("still here")).unwrap();
    assert_eq!(
        collect(&mut x, 1, Duration::from_secs(5)),
        ["still here -- FROM yann2"]
    );
}

#[test]
fn redis_down_at_start_then_readyz_follows_redis() {
    if !redis::available() {
        return;
    }
    let (port, url) = Redis::reserve();
    let a = Server::start(&[
        "--redis",
        &url,
        "--node-id",
        "a",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let admin = a.admin_addr();
    assert_eq!(get(admin, "/livez").0, 200);
    assert_eq!(get(admin, "/readyz").0, 503);
    // Local users are served without Redis.
    let mut p = a.connect("p");
    let mut q = a.connect("q");
    p.send(Message::text("early")).unwrap();
    assert_eq!(
        collect(&mut q, 1, Duration::from_secs(5)),
        ["early -- FROM p"]
    );
    a.wait_log("redis unreachable", 2);

    let mut redis = Redis::start_on(port);
    a.wait_log("delivering through the stream", 1);
    let wait_status = |want: u16, within: Duration| {
        let deadline = Instant::now() + within;
        while get(admin, "/readyz").0 != want {
            assert!(Instant::now() < deadline, "/readyz never became {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_status(200, Duration::from_secs(10));
    let b = node(&redis.url(), "b", &[]);
    let mut r = b.connect("r");
    p.send(Message::text("joined")).unwrap();
    assert_eq!(
        collect(&mut r, 1, Duration::from_secs(5)),
        ["joined -- FROM p"]
    );
    assert_eq!(
        collect(&mut q, 1, Duration::from_secs(5)),
        ["joined -- FROM p"]
    );

    redis.stop();
    wait_status(503, Duration::from_secs(8));
    redis.restart();
    wait_status(200, Duration::from_secs(15));

    let (status, metrics) = get(admin, "/metrics");
    assert_eq!(status, 200);
    for name in [
        "chatserv_connections",
        "chatserv_logins_total",
        "chatserv_messages_in_total",
        "chatserv_deliveries_total",
        "chatserv_redis_connected 1",
        "chatserv_outbox_depth",
        "chatserv_stream_lag_seconds",
        "chatserv_cross_node_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}

#[test]
fn full_outbox_closes_the_sender_with_1013() {
    if !redis::available() {
        return;
    }
    let (_port, url) = Redis::reserve();
    let a = Server::start(&["--redis", &url, "--outbox-size", "5"]);
    let mut p = a.connect("p");
    let mut q = a.connect("q");
    for n in 0..6 {
        p.send(Message::text(format!("m-{n}"))).unwrap();
    }
    let (_, frame) = read_until_close(&mut p);
    assert_eq!(code(&frame), Some(1013));
    assert_eq!(frame.unwrap().reason, "try again later");
    let got = collect(&mut q, 6, Duration::from_secs(2));
    assert_eq!(got.len(), 5, "{got:?}");
}

#[test]
fn malformed_redis_url_exits_2() {
    for bad in ["localhost:6379", "redis://h:99999", "http://h:1"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatserv"))
            .args(["--redis", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid Redis URL"), "{err}");
    }
}

#[test]
fn a_stalled_reader_on_one_node_is_dropped_with_1008_and_nobody_waits() {
    if !redis::available() {
        return;
    }
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    let redis = Redis::start(false);
    let a = node(&redis.url(), "a", &["--send-queue", "16"]);
    let b = node(&redis.url(), "b", &[]);
    // A client on node a that completes the handshake and never reads.
    let _stalled = stalled_client(&a, "stalled");
    let mut ann = b.connect("ann");
    let received = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = [a.connect("bob"), b.connect("carol")]
        .into_iter()
        .map(|ws| numbered_reader(ws, Arc::clone(&received)))
        .collect();
    let flood = Flood {
        readers: 2,
        slack: 8,
        max: 2000,
        after_drop: 50,
        timeout: Duration::from_secs(40),
    };
    let (sent, dropped_at) = flood_until_dropped(&mut ann, &received, &flood, || {
        a.log().iter().any(|l| l.contains("dropping stalled"))
    });
    assert!(dropped_at.is_some(), "the stalled client was never dropped");
    for r in readers {
        assert_eq!(r.join().unwrap(), sent, "a reader missed messages");
    }
    assert!(!b.log().iter().any(|l| l.contains("too slowly")));
}

#[test]
fn redis_connections_killed_lose_and_duplicate_nothing() {
    if !redis::available() {
        return;
    }
    let mut redis = Redis::start(false);
    steady_flow(&mut redis, 5, |r| {
        for _ in 0..3 {
            // Every client connection of every node, again and again.
            assert!(r.command(&["CLIENT", "KILL", "TYPE", "normal"]).is_some());
            std::thread::sleep(Duration::from_millis(700));
        }
    });
}

#[test]
fn a_node_that_lagged_past_the_stream_length_closes_its_users_with_4002() {
    if !redis::available() {
        return;
    }
    let redis = Redis::start(false);
    let a = node(&redis.url(), "a", &["--stream-maxlen", "100"]);
    let b = node(&redis.url(), "b", &["--stream-maxlen", "100"]);
    let mut alice = a.connect("alice");
    let mut bob = b.connect("bob");
    alice.send(Message::text("before")).unwrap();
    assert_eq!(
        collect(&mut bob, 1, Duration::from_secs(5)),
        ["before -- FROM alice"]
    );
    // Node b stops reading (paused) while node a publishes 1,000 entries
    // into a stream trimmed to ~100: most are gone when b reads again.
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &b.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    let mut carol = a.connect("carol");
    signal("-STOP");
    for i in 0..1000 {
        alice.send(Message::text(format!("m{i}"))).unwrap();
    }
    // Carol, on node a, gets each line once it is in the stream: then all
    // of them are published (and most already trimmed away).
    let on_a = collect(&mut carol, 1000, Duration::from_secs(30));
    let len = redis
        .command(&["XLEN", "{chatserv}:stream"])
        .and_then(|n| n.trim_start_matches(':').trim().parse::<u64>().ok());
    signal("-CONT");
    assert_eq!(on_a.len(), 1000, "node a delivered {} lines", on_a.len());
    assert!(len.is_some_and(|n| n < 500), "stream length {len:?}");
    // Bob is told he missed messages, never left reading a chat with holes.
    bob.get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (texts, frame) = read_until_close(&mut bob);
    assert_eq!(code(&frame), Some(4002), "after {} texts", texts.len());
    assert_eq!(frame.unwrap().reason, "missed messages; reconnect");
    assert!(texts.len() < 1000, "{} texts", texts.len());
    b.wait_log("lost from the stream before this node read them", 1);
    // Bob reconnects and chats again. If node b is still reading the
    // rest of the stream, he gets that rest first, in order, no holes.
    let mut bob = b.connect("bob");
    alice.send(Message::text("after")).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !got.iter().any(|t: &String| t == "after -- FROM alice") {
        assert!(Instant::now() < deadline, "no \"after\" in {got:?}");
        got.extend(collect(&mut bob, 1, Duration::from_secs(1)));
    }
    assert_eq!(got.last().map(String::as_str), Some("after -- FROM alice"));
    let rest: Vec<u32> = got[..got.len() - 1]
        .iter()
        .map(|t| {
            t.trim_start_matches('m')
                .trim_end_matches(" -- FROM alice")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rest.windows(2).all(|w| w[1] == w[0] + 1), "{rest:?}");
}
