//! Chat behaviour: login, broadcast, duplicate logins, ordering.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{code, read_text, read_until_close, Server};

use wsproto::{ClientRequest, Config, MaybeTlsStream, Message, Response, WebSocket};

#[test]
fn login_is_logged_with_the_user_name() {
    let server = Server::start(&["--id", "t-login"]);
    // 张三, percent-encoded in the URL.
    let _ws = server.connect("%E5%BC%A0%E4%B8%89");
    server.wait_log("user 张三 in", 1);
    let log = server.log();
    assert!(log
        .iter()
        .any(|l| l.contains("started") && l.contains("id=t-login")));
}

#[test]
fn broadcast_reaches_every_other_user_and_not_the_sender() {
    let server = Server::start(&[]);
    let mut ann = server.connect("ann");
    let mut bob = server.connect("bob");
    let mut cid = server.connect("cid");

    ann.send(Message::text("hello all")).unwrap();
    assert_eq!(read_text(&mut bob), "hello all -- FROM ann");
    assert_eq!(read_text(&mut cid), "hello all -- FROM ann");

    // If ann had been sent her own line, it would be queued before this one.
    bob.send(Message::text("hi ann")).unwrap();
    assert_eq!(read_text(&mut ann), "hi ann -- FROM bob");
    assert_eq!(read_text(&mut cid), "hi ann -- FROM bob");

    // Unicode survives both ways.
    cid.send(Message::text("你好 👋")).unwrap();
    assert_eq!(read_text(&mut ann), "你好 👋 -- FROM cid");
    assert_eq!(read_text(&mut bob), "你好 👋 -- FROM cid");
}

#[test]
fn a_user_who_leaves_no_longer_receives_and_others_go_on() {
    let server = Server::start(&[]);
    let mut ann = server.connect("ann");
    let mut bob = server.connect("bob");
    let mut cid = server.connect("cid");
    cid.close(wsproto::CloseCode::Normal, "bye").unwrap();
    let (texts, frame) = read_until_close(&mut cid);
    assert!(texts.is_empty());
    assert_eq!(code(&frame), Some(1000));
    server.wait_log("connection of cid closed", 1);
    ann.send(Message::text("still here")).unwrap();
    assert_eq!(read_text(&mut bob), "still here -- FROM ann");
}

#[test]
fn second_login_kicks_the_first_and_the_new_session_survives() {
    let server = Server::start(&[]);
    let mut old = server.connect("ann");
    let mut bob = server.connect("bob");
    let mut new = server.connect("ann");

    // The old connection gets 4001 and is closed.
    let (texts, frame) = read_until_close(&mut old);
    assert!(texts.is_empty(), "{texts:?}");
    let frame = frame.expect("a close code");
    assert_eq!(u16::from(frame.code), 4001);
    assert_eq!(frame.reason, "logged in elsewhere");

    // The Go demo's bug: the old read loop ending deleted the *new*
    // session. Wait until the server is done with the old connection...
    server.wait_log("connection of ann closed", 1);
    // ...then the new session must still receive and send.
    bob.send(Message::text("are you there?")).unwrap();
    assert_eq!(read_text(&mut new), "are you there? -- FROM bob");
    new.send(Message::text("yes")).unwrap();
    assert_eq!(read_text(&mut bob), "yes -- FROM ann");
    // And a third login of a fresh user still sees ann.
    let mut cid = server.connect("cid");
    new.send(Message::text("hi cid")).unwrap();
    assert_eq!(read_text(&mut cid), "hi cid -- FROM ann");
}

fn connect_offering_deflate(
    server: &Server,
    user: &str,
    offer: bool,
) -> (WebSocket<MaybeTlsStream>, Response) {
    let request = ClientRequest::new(&server.url(user)).unwrap();
    let mut config = Config::default();
    if !offer {
        config.deflate = None;
    }
    let (mut ws, response) = wsproto::connect_with(&request, &config).unwrap();
    ws.get_mut()
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .unwrap();
    (ws, response)
}

#[test]
fn permessage_deflate_is_refused_with_no_deflate() {
    let server = Server::start(&["--no-deflate"]);
    let (_ws, response) = connect_offering_deflate(&server, "ann", true);
    assert_eq!(response.header("Sec-WebSocket-Extensions"), None);
}

#[test]
fn permessage_deflate_is_accepted_by_default() {
    let server = Server::start(&[]);
    let (mut ann, response) = connect_offering_deflate(&server, "ann", true);
    let ext = response
        .header("Sec-WebSocket-Extensions")
        .unwrap_or_default();
    assert!(ext.contains("permessage-deflate"), "{ext:?}");
    let (mut bob, response) = connect_offering_deflate(&server, "bob", false);
    assert_eq!(response.header("Sec-WebSocket-Extensions"), None);
    let long = "compressible ".repeat(200);
    ann.send(Message::text(long.clone())).unwrap();
    assert_eq!(read_text(&mut bob), format!("{long} -- FROM ann"));
    bob.send(Message::text(long.clone())).unwrap();
    assert_eq!(read_text(&mut ann), format!("{long} -- FROM bob"));
}

/// Index of a user in [`USERS`].
const USERS: [&str; 4] = ["s0", "s1", "s2", "listener"];
const SENDERS: usize = 3;

#[test]
fn thousand_messages_from_three_senders_arrive_complete_and_in_order() {
    const N: usize = 1000;
    // Senders keep at most WINDOW messages in flight towards each
    // recipient, as a chat client would; 3 x WINDOW stays below the send
    // queue (256), so nobody is dropped as too slow and every message must
    // arrive.
    const WINDOW: usize = 50;
    let server = Server::start(&[]);
    // progress[r * SENDERS + s]: messages recipient r got from sender s.
    let progress: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..USERS.len() * SENDERS)
            .map(|_| AtomicUsize::new(0))
            .collect(),
    );
    let sockets: Vec<_> = USERS.iter().map(|u| server.connect(u)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);

    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (r, ws) in sockets.into_iter().enumerate() {
        let (mut reader, mut writer) = ws.split().unwrap();
        let seen = Arc::clone(&progress);
        let expected = if r < SENDERS { 2 * N } else { 3 * N };
        receivers.push(std::thread::spawn(move || {
            let mut seqs: Vec<Vec<usize>> = vec![Vec::new(); SENDERS];
            for _ in 0..expected {
                let text = match reader.read() {
                    Ok(Message::Text(t)) => t,
                    other => panic!("{} got {other:?}", USERS[r]),
                };
                let (body, from) = text.split_once(" -- FROM ").expect("a broadcast");
                let s = USERS.iter().position(|u| *u == from).expect("a sender");
                let n = body
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a number");
                seqs[s].push(n);
                seen[r * SENDERS + s].fetch_add(1, Ordering::SeqCst);
            }
            seqs
        }));
        if r < SENDERS {
            let progress = Arc::clone(&progress);
            senders.push(std::thread::spawn(move || {
                for n in 0..N {
                    // Flow control: wait for the slowest recipient.
                    while (0..USERS.len()).filter(|&other| other != r).any(|other| {
                        progress[other * SENDERS + r].load(Ordering::SeqCst) + WINDOW <= n
                    }) {
                        assert!(Instant::now() < deadline, "recipients stopped receiving");
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    writer
                        .send(Message::text(format!(
                            "message from {} number {n}",
                            USERS[r]
                        )))
                        .unwrap();
                }
                writer
            }));
        }
    }
    let writers: Vec<_> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let expected: Vec<usize> = (0..N).collect();
    for (r, receiver) in receivers.into_iter().enumerate() {
        let seqs = receiver.join().unwrap();
        for (s, seq) in seqs.iter().enumerate() {
            if s == r {
                assert!(seq.is_empty(), "{} received its own messages", USERS[r]);
            } else {
                assert!(
                    *seq == expected,
                    "{} got the messages of {} incomplete or out of order",
                    USERS[r],
                    USERS[s]
                );
            }
        }
    }
    assert!(!server.log().iter().any(|l| l.contains("too slowly")));
    drop(writers);
}
