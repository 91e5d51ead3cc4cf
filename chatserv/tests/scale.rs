//! A scaled-down smoke test of many connections, for CI: 2,000 users log
//! in, two of them broadcast, everyone leaves, and the server still works.
//! It checks behaviour only; the time-outs are generous bounds so that a
//! broken server fails instead of hanging, never a speed requirement.

mod common;

use std::fs;
use std::time::Duration;

use common::{read_text, Server};
use wsproto::{ClientRequest, Config, MaybeTlsStream, Message, WebSocket};

const USERS: usize = 2_000;
/// Client threads; each drives its share of the sockets in turn (a
/// blocking read returns as soon as that socket's message is there, so
/// reading them one after the other costs no more than the slowest).
const CLIENT_THREADS: usize = 4;
/// Bound on each handshake and each read: far above what 2,000 users need
/// on two busy cores in a debug build.
const TIMEOUT: Duration = Duration::from_secs(30);

type Ws = WebSocket<MaybeTlsStream>;

fn login(server: &Server, user: &str) -> Ws {
    let request = ClientRequest::new(&server.url(user))
        .unwrap()
        .with_connect_timeout(TIMEOUT)
        .with_handshake_timeout(TIMEOUT);
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let (mut ws, response) = wsproto::connect_with(&request, &config)
        .unwrap_or_else(|e| panic!("login of {user} failed: {e}"));
    assert_eq!(response.status, 101);
    ws.get_mut().set_read_timeout(Some(TIMEOUT)).unwrap();
    ws
}

/// Run `f` on every `(index, socket)`, spread over the client threads;
/// gives the sockets back in order.
fn on_all(sockets: Vec<Ws>, f: impl Fn(usize, &mut Ws) + Sync) -> Vec<Ws> {
    let chunk = sockets.len().div_ceil(CLIENT_THREADS).max(1);
    let mut chunks: Vec<Vec<Ws>> = Vec::new();
    let mut rest = sockets.into_iter();
    loop {
        let part: Vec<Ws> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        chunks.push(part);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(n, mut part)| {
                let f = &f;
                scope.spawn(move || {
                    for (i, ws) in part.iter_mut().enumerate() {
                        f(n * chunk + i, ws);
                    }
                    part
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a client thread failed"))
            .collect()
    })
}

#[test]
fn two_thousand_users_each_get_every_message_exactly_once() {
    let server = Server::start(&["--no-deflate", "--max-connections", "2100"]);
    server.wait_log("capacity:", 1);
    let lowered = server
        .log()
        .into_iter()
        .find(|l| l.contains("--max-connections lowered"));
    if let Some(line) = lowered {
        eprintln!("skipped: this machine cannot hold {USERS} connections: {line}");
        return;
    }

    // Log in, CLIENT_THREADS at a time (each one's logins in turn).
    let server_ref = &server;
    let mut users: Vec<Ws> = std::thread::scope(|scope| {
        let per = USERS.div_ceil(CLIENT_THREADS);
        let handles: Vec<_> = (0..CLIENT_THREADS)
            .map(|t| {
                scope.spawn(move || {
                    (t * per..((t + 1) * per).min(USERS))
                        .map(|i| login(server_ref, &format!("u{i}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a login thread failed"))
            .collect()
    });
    assert_eq!(users.len(), USERS);
    report_server_cost(&server);

    // First message: from u0 to the 1,999 others.
    users[0].send(Message::text("hello everyone")).unwrap();
    let mut sender = users.remove(0);
    let users = on_all(users, |_, ws| {
        assert_eq!(read_text(ws), "hello everyone -- FROM u0");
    });

    // Second message, from the last user: everyone else, u0 included,
    // reads it next, so nobody got the first one twice and u0 did not get
    // its own.
    let last = USERS - 1;
    let mut users = users;
    users[last - 1]
        .send(Message::text("and hello back"))
        .unwrap();
    let expected = format!("and hello back -- FROM u{last}");
    assert_eq!(read_text(&mut sender), expected);
    let users = on_all(users, |i, ws| {
        // `users` lost u0: index i is user i + 1.
        if i + 1 != last {
            assert_eq!(read_text(ws), expected);
        }
    });

    // Everyone leaves; the server closes every connection and still
    // serves new logins.
    drop(sender);
    drop(users);
    server.wait_log_within("connection of u", USERS, TIMEOUT);
    let mut ann = login(&server, "late-ann");
    let mut bob = login(&server, "late-bob");
    ann.send(Message::text("anyone?")).unwrap();
    assert_eq!(read_text(&mut bob), "anyone? -- FROM late-ann");
    let log = server.log();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "a panic in the log"
    );
}

/// Print the server's threads and memory maps with every user in: the
/// figures `capacity::PER_CONNECTION` assumes.
fn report_server_cost(server: &Server) {
    let pid = server.pid();
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let threads = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .map(|n| n.trim().to_owned())
        })
        .unwrap_or_default();
    eprintln!("server with {USERS} users: {threads} threads, {maps} maps, {fds} fds");
}
