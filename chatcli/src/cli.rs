//! Command line: the options, the duration parser (`6s`, `500ms`, `1m`) and
//! the chat URL built from `--addr` and `--user`.

use std::time::Duration;

use clap::Parser;

use crate::error::ChatError;

/// Shown at the end of `--help`.
const AFTER_HELP: &str = "\
Received messages are printed to stdout, one per line, as they arrive; logs go
to stderr (filter them with RUST_LOG, e.g. RUST_LOG=debug or RUST_LOG=off).
Control characters in received text are printed escaped (a newline as \\n, ESC
as \\x1b), so a message is always one line and cannot steer the terminal.

Ctrl-C or SIGTERM closes the connection normally (1000) and exits 0; a second
one exits at once.

Every frame the client sends is masked with a fresh random 4-byte key
(RFC 6455 §5.3), like gobwas/ws MaskFrameInPlace; wsproto's client role does it.

Exit codes:
  0  the connection closed normally: the server closed with 1000 or 1001 (or no
     code), or the client closed with 1000 after --count sends or end of stdin
  1  could not connect, the server refused the upgrade (e.g. HTTP 400 or 503,
     printed with the server's explanation), the connection broke without a
     close handshake, or stdin/stdout failed
  2  bad command line (e.g. --addr http://..., or a user name the server's
     rules refuse)
  3  the connection closed with an error code: the server kicked this client
     (e.g. 4001 \"logged in elsewhere\") or closed with a code other than
     1000/1001, or the server broke the protocol and the client closed with
     1002/1007/1009; the code and reason are printed";

/// Group chat client: connects to `<addr>/?user=<user>` and sends a message
/// every interval (or each line of stdin), printing what others say.
#[derive(Debug, Clone, Parser)]
#[command(name = "chatcli", version, about, after_help = AFTER_HELP)]
pub struct Args {
    /// Your name in the chat, sent as `?user=NAME` (percent-encoded): 1 to
    /// 64 characters, no control characters, no leading or trailing
    /// whitespace, not containing " -- FROM " (the server's rules).
    #[arg(short, long, value_parser = user_name, required_unless_present = "token")]
    pub user: Option<String>,

    /// Log in with a signed token (from `chatserv token`) instead of
    /// `?user=`, for a server started with --auth-secret-file; sent as an
    /// `Authorization: Bearer` header. The name is the token's.
    #[arg(
        long,
        value_name = "JWT",
        env = "CHATCLI_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// The chat server's WebSocket address (`ws://HOST:PORT[/PATH]`, or
    /// `wss://...` over TLS; a bare `HOST:PORT` means `ws://HOST:PORT`).
    #[arg(short, long, default_value = "ws://127.0.0.1:8000", value_parser = ws_addr)]
    pub addr: String,

    /// Time between two sends of --message, e.g. `6s`, `500ms`, `1m`,
    /// `1m30s`. The first send comes one interval after connecting.
    #[arg(long, default_value = "6s", value_parser = parse_interval)]
    pub interval: Duration,

    /// The text sent every --interval. `-` means read lines from stdin,
    /// like --interactive.
    #[arg(short, long, default_value = "hello")]
    pub message: String,

    /// Stop after N sends: wait --linger for incoming messages, then close
    /// normally (1000) and exit 0. Without it the client runs until the
    /// server closes or it is interrupted.
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,

    /// How long to keep printing incoming messages after the last send
    /// (--count reached, or end of stdin) before closing with 1000.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub linger: Duration,

    /// Send each line typed on stdin (empty lines are skipped) instead of
    /// --message every --interval. End of stdin (Ctrl-D) closes with 1000.
    #[arg(short, long)]
    pub interactive: bool,

    /// Give up if the TCP connection, or then the server's answer to the
    /// WebSocket upgrade, takes longer than this.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_interval)]
    pub handshake_timeout: Duration,

    /// Offer permessage-deflate compression (RFC 7692) to the server. Off
    /// by default: chat lines are short, and uncompressed frames are
    /// easier to inspect.
    #[arg(long)]
    pub deflate: bool,

    /// For wss:// addresses: trust the CA certificate(s) in this PEM file
    /// (e.g. the one that signed a test certificate) instead of the
    /// built-in WebPKI roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl Args {
    /// Whether lines come from stdin (`--interactive` or `--message -`).
    pub fn reads_stdin(&self) -> bool {
        self.interactive || self.message == "-"
    }
}

/// Like [`parse_duration`], refusing zero: a zero interval would flood the
/// server.
fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        Duration::ZERO => Err("the interval must be longer than zero".to_owned()),
        d => Ok(d),
    }
}

/// Parse a duration written as one or more `<integer><unit>` groups, units
/// `ms`, `s`, `m`, `h`: `6s`, `500ms`, `1m`, `1m30s`. The one parser
/// chatserv uses too (`chatcommon`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    chatcommon::parse_duration(s)
}

/// A user name following the server's rules (`chatcommon`), so that a
/// name the server would refuse is a usage error here.
fn user_name(s: &str) -> Result<String, String> {
    chatcommon::check_user_name(s)
        .map(|()| s.to_owned())
        .map_err(str::to_owned)
}

/// `--addr` must be a `ws://` address (or a bare `HOST:PORT`): anything
/// else is a usage error (exit 2), found before connecting.
fn ws_addr(s: &str) -> Result<String, String> {
    chat_url(s, "x").map(|_| s.to_owned()).map_err(|e| match e {
        ChatError::BadAddr { source, .. } => format!(
            "{source} (expected ws://HOST:PORT[/PATH], wss://HOST:PORT[/PATH] or HOST:PORT, e.g. ws://127.0.0.1:8000)"
        ),
        other => other.to_string(),
    })
}

/// The URL to connect to: `addr` with `user=<user>` added to its query
/// (nothing added when `user` is empty, for a token login),
/// the name percent-encoded (RFC 3986 §2.1) so that any name, `&`, spaces
/// and non-ASCII included, reaches the server intact.
pub fn chat_url(addr: &str, user: &str) -> Result<String, ChatError> {
    let addr = addr.trim();
    let addr = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("ws://{addr}")
    };
    let rest = addr.split_once("://").map_or("", |(_, r)| r);
    let sep = if rest.contains('?') {
        "&"
    } else if rest.contains('/') {
        "?"
    } else {
        "/?"
    };
    let url = if user.is_empty() {
        match rest.contains('/') {
            true => addr.clone(),
            false => format!("{addr}/"),
        }
    } else {
        format!("{addr}{sep}user={}", percent_encode(user))
    };
    wsproto::WsUrl::parse(&url).map_err(|source| ChatError::BadAddr {
        addr: addr.clone(),
        source,
    })?;
    Ok(url)
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("6s"), Ok(Duration::from_secs(6)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "6",
            "s",
            "6x",
            "1.5s",
            "-1s",
            "99999999999999999999s",
            "6 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_duration(&format!("{}h", u64::MAX / 60)).is_err());
        assert!(parse_interval("0ms").is_err());
    }

    #[test]
    fn urls_carry_the_encoded_user() {
        assert_eq!(
            chat_url("ws://127.0.0.1:8000", "aaa").unwrap(),
            "ws://127.0.0.1:8000/?user=aaa"
        );
        assert_eq!(
            chat_url("ws://h:1/", "a b&c=d/é").unwrap(),
            "ws://h:1/?user=a%20b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(chat_url("h:1/chat", "x").unwrap(), "ws://h:1/chat?user=x");
        assert_eq!(
            chat_url("ws://h/?room=1", "x").unwrap(),
            "ws://h/?room=1&user=x"
        );
        assert_eq!(chat_url("wss://h", "x").unwrap(), "wss://h/?user=x");
        assert!(matches!(
            chat_url("http://h", "x"),
            Err(ChatError::BadAddr { .. })
        ));
        assert!(matches!(
            chat_url("ws://h:99999", "x"),
            Err(ChatError::BadAddr { .. })
        ));
    }

    #[test]
    fn command_line() {
        Args::command().debug_assert();
        let a = Args::try_parse_from(["chatcli", "--user", "aaa"]).unwrap();
        assert_eq!(a.interval, Duration::from_secs(6));
        assert_eq!(a.message, "hello");
        assert_eq!(a.user.as_deref(), Some("aaa"));
        assert_eq!(a.addr, "ws://127.0.0.1:8000");
        assert_eq!((a.count, a.reads_stdin()), (None, false));
        let a = Args::try_parse_from(["chatcli", "-u", "b", "-m", "-", "-n", "3"]).unwrap();
        assert_eq!((a.count, a.reads_stdin()), (Some(3), true));
        assert!(Args::try_parse_from(["chatcli"]).is_err());
        assert!(Args::try_parse_from(["chatcli", "--user", ""]).is_err());
        assert!(Args::try_parse_from(["chatcli", "--user", " a"]).is_err());
        assert!(Args::try_parse_from(["chatcli", "--user", "a -- FROM b"]).is_err());
        assert!(Args::try_parse_from(["chatcli", "-u", "a", "--addr", "http://h:1"]).is_err());
        let a = Args::try_parse_from(["chatcli", "--token", "t.t.t"]).unwrap();
        assert_eq!((a.user, a.token.as_deref()), (None, Some("t.t.t")));
        assert!(Args::try_parse_from(["chatcli", "-u", "a", "--interval", "0s"]).is_err());
        let help = Args::command().render_long_help().to_string();
        for needle in [
            "--interval",
            "--count",
            "--linger",
            "--interactive",
            "Exit codes",
            "4001",
        ] {
            assert!(help.contains(needle), "help lacks {needle}");
        }
    }
}
