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
