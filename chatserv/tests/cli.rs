//! The command line: help text and start-up errors.

use std::net::TcpListener;
use std::process::Command;

fn chatserv(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatserv"))
        .args(args)
        .output()
        .expect("run chatserv");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_documents_every_option() {
    let (code, stdout, _) = chatserv(&["--help"]);
    assert_eq!(code, Some(0));
    for option in [
        "--listen",
        "--id",
        "--ping-interval",
        "--idle-timeout",
        "--handshake-timeout",
        "--write-timeout",
        "--shutdown-timeout",
        "--max-message-size",
        "--max-connections",
        "--send-queue",
        "--no-deflate",
    ] {
        assert!(stdout.contains(option), "{option} missing from --help");
    }
    assert!(stdout.contains("[default: 127.0.0.1:8000]"));
    assert!(stdout.contains("[default: demo]"));
}

#[test]
fn address_in_use_is_reported_with_a_non_zero_status() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = chatserv(&["--listen", &addr]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn bad_durations_are_refused() {
    let (code, _, stderr) = chatserv(&["--idle-timeout", "soon"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("invalid duration"), "{stderr}");
}

#[test]
fn bare_numbers_are_not_durations() {
    // One parser for both binaries: a unit is required.
    let (code, _, stderr) = chatserv(&["--ping-interval", "30"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("missing unit"), "{stderr}");
}

#[test]
fn wrong_listen_values_name_the_accepted_forms() {
    for bad in [
        "localhost",
        "http://127.0.0.1:8000",
        ":99999",
        "1.2.3.4.5:80",
    ] {
        let (code, _, stderr) = chatserv(&["--listen", bad]);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        for form in [":PORT", "HOST:PORT", "[IPv6]:PORT", "localhost:8000"] {
            assert!(stderr.contains(form), "{bad}: {form} missing in {stderr}");
        }
    }
}

#[test]
fn contradictory_options_are_refused_with_a_reason() {
    let (code, _, stderr) = chatserv(&["--idle-timeout", "10s", "--ping-interval", "30s"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--idle-timeout") && stderr.contains("longer than --ping-interval"),
        "{stderr}"
    );
    let (code, _, stderr) = chatserv(&["--idle-timeout", "30s", "--ping-interval", "30s"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = chatserv(&["--burst", "10"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--rate-limit"), "{stderr}");
    let (code, _, stderr) = chatserv(&["--rate-limit", "fast"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("20/s"), "{stderr}");
    let (code, _, stderr) = chatserv(&["--allowed-origin", "example.com"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("scheme://host"), "{stderr}");
    let (code, _, stderr) = chatserv(&["--max-message-size", "1.5MiB"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("invalid size"), "{stderr}");
}

#[test]
fn help_documents_the_security_options_and_the_token_subcommand() {
    let (code, stdout, _) = chatserv(&["--help"]);
    assert_eq!(code, Some(0));
    for option in [
        "--auth-secret-file",
        "--auth-audience",
        "--allowed-origin",
        "--rate-limit",
        "--burst",
        "--max-connections-per-ip",
        "token",
        "CHATSERV_AUTH_SECRET",
    ] {
        assert!(stdout.contains(option), "{option} missing from --help");
    }
    let (code, stdout, _) = chatserv(&["token", "--help"]);
    assert_eq!(code, Some(0));
    for option in ["--user", "--ttl", "--secret-file", "--audience"] {
        assert!(
            stdout.contains(option),
            "{option} missing from token --help"
        );
    }
}

#[test]
fn listen_accepts_port_only_and_all_interfaces_forms() {
    use std::io::{BufRead, BufReader};
    for form in [":0", "0", "localhost:0", "[::1]:0"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatserv"))
            .args(["--listen", form])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        while !line.contains("started") {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let want = match form {
            ":0" => "listen=\"0.0.0.0:",
            "[::1]:0" => "listen=\"[::1]:",
            _ => "listen=\"127.0.0.1:",
        };
        assert!(line.contains(want), "{form}: {line}");
    }
}
