//! Issue 14 against the real binary: signed logins, Origin checks (CSWSH),
//! flood limits, user-name rules, and the page's helper routes.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{code, http, read_text, read_until_close, Server, IO_TIMEOUT};
use hmac::{Hmac, Mac};
use wsproto::{ClientRequest, Config, Error, Message, WebSocket};

const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

/// A secret file unique to this test.
fn secret_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("chatserv-{}-{name}.secret", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWT with any header and claims, signed with HMAC-SHA256 under `key`.
fn forge(header: &str, claims: &str, key: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(signed.as_bytes());
    format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// `chatserv token ARGS...`: the token printed, or the exit code and stderr.
fn token_cmd(args: &[&str]) -> Result<String, (Option<i32>, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_chatserv"))
        .arg("token")
        .args(args)
        .env_remove("CHATSERV_AUTH_SECRET")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

fn connect_req(
    request: ClientRequest,
) -> Result<WebSocket<wsproto::MaybeTlsStream>, (u16, String)> {
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    match wsproto::connect_with(&request, &config) {
        Ok((mut ws, _)) => {
            ws.get_mut().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            Ok(ws)
        }
        Err(Error::HttpStatus { status, body }) => {
            Err((status, String::from_utf8_lossy(&body).into_owned()))
        }
        Err(e) => panic!("expected an HTTP answer, got {e}"),
    }
}

fn connect_url(url: &str) -> Result<WebSocket<wsproto::MaybeTlsStream>, (u16, String)> {
    connect_req(ClientRequest::new(url).unwrap())
}

/// A raw upgrade request with extra header lines; status and head.
fn raw_upgrade(server: &Server, target: &str, extra: &str) -> (u16, String, String) {
    let (status, head, body) = http(
        server.addr,
        &format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
            server.addr
        ),
    );
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn valid_tokens_log_in_by_query_and_by_bearer_header() {
    let file = secret_file("valid", &format!("{SECRET}\n"));
    let server = Server::start(&["--auth-secret-file", file.to_str().unwrap()]);
    let ann = token_cmd(&[
        "--user",
        "ann",
        "--ttl",
        "1h",
        "--secret-file",
        file.to_str().unwrap(),
    ])
    .unwrap();
    let bob = token_cmd(&["--user", "张三", "--secret-file", file.to_str().unwrap()]).unwrap();
    let mut a = connect_url(&format!("ws://{}/?token={ann}", server.addr)).unwrap();
    let request = ClientRequest::new(&format!("ws://{}/", server.addr))
        .unwrap()
        .with_header("Authorization", &format!("Bearer {bob}"))
        .unwrap();
    let mut b = connect_req(request).unwrap();
    server.wait_log("user 张三 in", 1);
    a.send(Message::text("hi")).unwrap();
    assert_eq!(read_text(&mut b), "hi -- FROM ann");
    b.send(Message::text("yo")).unwrap();
    assert_eq!(read_text(&mut a), "yo -- FROM 张三");
    // The ?user= of the tutorial no longer logs in.
    let (status, body) = connect_url(&server.url("mallory")).err().unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("missing login token"), "{body}");
    let log = server.log().join("\n");
    assert!(
        !log.contains(&ann) && !log.contains(&bob),
        "token in the log"
    );
    assert!(!log.contains("anyone can take any name"), "{log}");
    let _ = std::fs::remove_file(file);
}

#[test]
fn bad_tokens_get_401_with_the_reason_and_are_never_echoed() {
    let file = secret_file("bad", SECRET);
    let server = Server::start(&[
        "--auth-secret-file",
        file.to_str().unwrap(),
        "--auth-audience",
        "chat",
    ]);
    let key = SECRET.as_bytes();
    let t = now();
    let aud = r#","aud":"chat""#;
    let claims = |extra: &str| format!(r#"{{"sub":"ann","exp":{}{extra}}}"#, t + 600);
    let cases: Vec<(&str, String, &str)> = vec![
        ("missing", String::new(), "missing login token"),
        ("malformed", "not-a-jwt".into(), "malformed"),
        (
            "malformed json",
            format!(
                "{}.{}.x",
                URL_SAFE_NO_PAD.encode("{"),
                URL_SAFE_NO_PAD.encode("{}")
            ),
            "malformed",
        ),
        (
            "bad signature",
            forge(HS256, &claims(aud), b"some other secret, 32 bytes or more"),
            "bad signature",
        ),
        (
            "tampered",
            {
                let good = forge(HS256, &claims(aud), key);
                let (head, rest) = good.split_once('.').unwrap();
                let (_, sig) = rest.split_once('.').unwrap();
                let evil =
                    URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"admin","exp":{}{aud}}}"#, t + 600));
                format!("{head}.{evil}.{sig}")
            },
            "bad signature",
        ),
        (
            "expired",
            forge(
                HS256,
                &format!(r#"{{"sub":"ann","exp":{}{aud}}}"#, t - 120),
                key,
            ),
            "expired",
        ),
        (
            "no exp",
            forge(HS256, &format!(r#"{{"sub":"ann"{aud}}}"#), key),
            "exp",
        ),
        (
            "nbf",
            forge(
                HS256,
                &claims(
                    &format!(r#",{}"nbf":{}"#, &aud[1..], t + 300)
                        .replace("\"aud\":\"chat\"\"nbf\"", "\"aud\":\"chat\",\"nbf\""),
                ),
                key,
            ),
            "not yet valid",
        ),
        ("no aud", forge(HS256, &claims(""), key), "wrong audience"),
        (
            "other aud",
            forge(HS256, &claims(r#","aud":"other""#), key),
            "wrong audience",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(claims(aud))
            ),
            "algorithm \"none\"",
        ),
        (
            "HS384",
            {
                let signed = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(r#"{"alg":"HS384"}"#),
                    URL_SAFE_NO_PAD.encode(claims(aud))
                );
                let mut mac = Hmac::<sha2::Sha384>::new_from_slice(key).unwrap();
                mac.update(signed.as_bytes());
                format!(
                    "{signed}.{}",
                    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
                )
            },
            "algorithm \"HS384\"",
        ),
        (
            "bad sub",
            forge(
                HS256,
                &format!(r#"{{"sub":"x -- FROM admin","exp":{}{aud}}}"#, t + 600),
                key,
            ),
            "invalid sub",
        ),
    ];
    for (name, token, reason) in &cases {
        // Both ways of presenting it.
        let by_query = connect_url(&format!("ws://{}/?token={token}", server.addr));
        let (status, body) = by_query.err().unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(status, 401, "{name}");
        assert!(body.contains(reason), "{name}: {body:?}");
        if token.len() > 8 {
            assert!(!body.contains(token.as_str()), "{name}: token echoed");
        }
        let (status, head, body) =
            raw_upgrade(&server, "/", &format!("Authorization: Bearer {token}\r\n"));
        assert_eq!(status, 401, "{name}");
        assert!(body.contains(reason), "{name}: {body:?}");
        assert!(head.contains("WWW-Authenticate: Bearer"), "{head}");
    }
    // A good token with the audience works.
    let good = forge(HS256, &claims(aud), key);
    connect_url(&format!("ws://{}/?token={good}", server.addr)).unwrap();
    server.wait_log("user ann in", 1);
    let log = server.log();
    for (name, token, reason) in &cases {
        assert!(
            log.iter().any(|l| l.contains("401") && l.contains(reason)),
            "{name} not logged"
        );
        if token.len() > 8 {
            assert!(
                !log.iter().any(|l| l.contains(token.as_str())),
                "{name}: token logged"
            );
        }
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn the_secret_can_come_from_the_environment_and_must_be_long_enough() {
    let server = Server::start_with_env(&[], &[("CHATSERV_AUTH_SECRET", SECRET)]);
    let token = forge(
        HS256,
        &format!(r#"{{"sub":"env","exp":{}}}"#, now() + 60),
        SECRET.as_bytes(),
    );
    connect_url(&format!("ws://{}/?token={token}", server.addr)).unwrap();
    server.wait_log("user env in", 1);

    let short = secret_file("short", "too short\n");
    let out = Command::new(env!("CARGO_BIN_EXE_chatserv"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--auth-secret-file",
            short.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"));
    let (code, stderr) = token_cmd(&["--user", "a"]).unwrap_err();
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--secret-file"), "{stderr}");
    let (code, stderr) = token_cmd(&["--user", " a", "--secret-file", "x"]).unwrap_err();
    assert_eq!(code, Some(2));
    assert!(stderr.contains("whitespace"), "{stderr}");
    let _ = std::fs::remove_file(short);
}

#[test]
fn without_a_secret_the_start_warns_once_that_anyone_can_take_any_name() {
    let server = Server::start(&[]);
    let _a = server.connect("ann");
    server.wait_log("user ann in", 1);
    let warnings = server
        .log()
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("anyone can take any name"))
        .count();
    assert_eq!(warnings, 1);
}

#[test]
fn foreign_origins_get_403_own_and_allowed_ones_connect() {
    let server = Server::start(&[
        "--allowed-origin",
        "https://*.example.com",
        "--allowed-origin",
        "https://example.org",
    ]);
    let with_origin = |origin: &str, user: &str| {
        let request = ClientRequest::new(&server.url(user))
            .unwrap()
            .with_header("Origin", origin)
            .unwrap();
        connect_req(request)
    };
    for evil in [
        "https://evil.net",
        "https://example.com.evil.net",
        "https://evilexample.com",
        "https://example.com",
        "http://chat.example.com",
        "https://example.org.evil.net",
        "null",
        &format!("http://{}.evil.net", server.addr.ip()),
        &format!("https://{}", server.addr),
    ] {
        let (status, body) = with_origin(evil, "victim")
            .err()
            .unwrap_or_else(|| panic!("{evil} accepted"));
        assert_eq!(status, 403, "{evil}");
        assert!(body.contains("origin not allowed"), "{body}");
    }
    let _own = with_origin(&format!("http://{}", server.addr), "own").unwrap();
    let _wild = with_origin("https://chat.example.com", "wild").unwrap();
    let _deep = with_origin("https://a.b.example.com", "deep").unwrap();
    let _exact = with_origin("https://example.org", "exact").unwrap();
    let _none = server.connect("no-origin");
    server.wait_log("user no-origin in", 1);
    server.wait_log("origin not allowed: \"https://example.com.evil.net\"", 1);
}

#[test]
fn a_flooding_client_gets_1008_and_the_others_carry_on() {
    let server = Server::start(&["--rate-limit", "5/s", "--burst", "5"]);
    let mut ann = server.connect("ann");
    let mut bob = server.connect("bob");
    let mut cid = server.connect("cid");
    for i in 0..50 {
        ann.write(Message::text(format!("flood {i}"))).unwrap();
    }
    ann.flush().unwrap();
    let (_, frame) = read_until_close(&mut ann);
    assert_eq!(code(&frame), Some(1008));
    assert_eq!(frame.unwrap().reason, "rate limit exceeded");
    server.wait_log("connection of ann closed", 1);
    // bob got the burst and not the rest, and is still fine.
    cid.send(Message::text("after")).unwrap();
    bob.send(Message::text("before")).unwrap();
    for (ws, end) in [
        (&mut bob, "after -- FROM cid"),
        (&mut cid, "before -- FROM bob"),
    ] {
        let mut floods = 0;
        loop {
            let t = read_text(ws);
            if t == end {
                break;
            }
            assert!(
                t.starts_with("flood ") && t.ends_with(" -- FROM ann"),
                "{t}"
            );
            floods += 1;
        }
        assert!((5..=6).contains(&floods), "got {floods} flood messages");
    }
    bob.send(Message::text("still here")).unwrap();
    assert_eq!(read_text(&mut cid), "still here -- FROM bob");
    // Within the rate, nobody is closed.
    for i in 0..3 {
        bob.send(Message::text(format!("calm {i}"))).unwrap();
        assert_eq!(read_text(&mut cid), format!("calm {i} -- FROM bob"));
    }
}

#[test]
fn too_many_connections_from_one_ip_get_429_with_retry_after() {
    let server = Server::start(&["--max-connections-per-ip", "2"]);
    let mut a = server.connect("a");
    let _b = server.connect("b");
    let (status, head, body) = raw_upgrade(&server, "/?user=c", "");
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("Retry-After: "), "{head}");
    assert!(
        body.contains("too many connections from 127.0.0.1"),
        "{body}"
    );
    // The page is still served, and a slot frees up when one leaves.
    assert_eq!(
        http(server.addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").0,
        200
    );
    a.close(wsproto::CloseCode::Normal, "").unwrap();
    read_until_close(&mut a);
    server.wait_log("connection of a closed", 1);
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match connect_url(&server.url("d")) {
            Ok(_) => break,
            Err((429, _)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("slot not released: {e:?}"),
        }
    }
}

#[test]
fn user_names_breaking_a_rule_get_400_naming_it() {
    let server = Server::start(&[]);
    let e64 = "%C3%A9".repeat(64);
    let e65 = "%C3%A9".repeat(65);
    for (name, rule) in [
        (e65.as_str(), "too long (at most 64 characters)"),
        ("a%0Ab", "control characters"),
        ("a%1B%5B31m", "control characters"),
        ("+ann", "start or end with whitespace"),
        ("ann%C2%A0", "start or end with whitespace"),
        ("ann%09", "control characters"),
        ("x+--+FROM+admin", "must not contain \" -- FROM \""),
    ] {
        let (status, body) = connect_url(&server.url(name))
            .err()
            .unwrap_or_else(|| panic!("{name} accepted"));
        assert_eq!(status, 400, "{name}");
        assert!(body.contains(rule), "{name}: {body}");
    }
    // 64 characters (128 bytes) is fine: the limit counts characters.
    let _ok = connect_url(&server.url(&e64)).unwrap();
    let _ok = connect_url(&server.url("x--FROM+y")).unwrap();
}

#[test]
fn favicon_and_config_are_served() {
    let server = Server::start(&["--max-message-size", "2KiB"]);
    let (status, head, body) = http(server.addr, "GET /favicon.ico HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("image/svg+xml"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("<svg"));
    let (status, _, body) = http(server.addr, "GET /config HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("\"max_message_size\":2048"), "{body}");
    assert!(body.contains("\"signed_logins\":false"), "{body}");
    let (_, head, _) = http(server.addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
}
