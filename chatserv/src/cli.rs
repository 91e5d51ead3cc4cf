//! Command-line options (clap derive) and the duration syntax they accept.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A group-chat server: every text message a user sends reaches every other
/// logged-in user as `"<msg> -- FROM <user>"`.
///
/// WebSocket clients connect to `ws://HOST:PORT/?user=NAME` (any path); a
/// plain `GET /` in a browser serves a small chat page on the same port.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatserv",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Address to listen on. Port 0 picks a free port; the address actually
    /// bound is logged in the `started` line.
    ///
    /// Forms: `127.0.0.1:8000`, `localhost:8000`, `[::1]:8000`, `:8000`
    /// (every interface, as in the Go demo) or `8000` (127.0.0.1).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Name of this server instance, shown in the logs.
    #[arg(long, value_name = "NAME", default_value = "demo")]
    pub id: String,

    /// Send a ping to every client this often, so that live but quiet
    /// clients answer and are not taken for dead (e.g. 30s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// Drop a connection from which nothing (not even a pong) arrived for
    /// this long (it gets close code 1011 "idle time-out").
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// The whole HTTP request head must arrive within this time, or the
    /// connection is closed (protects against slowloris clients).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Give up on a client that accepts no data for this long while the
    /// server is writing to it.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// On Ctrl-C / SIGTERM, wait at most this long for clients to answer
    /// the 1001 "going away" Close before exiting.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Largest message (and frame) accepted from a client, in bytes (or
    /// with a unit: `64KiB`, `1MiB`); a larger one closes the connection
    /// with 1009. The web page learns it from `/config` and refuses larger
    /// messages before sending.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_size)]
    pub max_message_size: usize,

    /// Most simultaneous WebSocket connections; further upgrade requests
    /// are answered with HTTP 503.
    ///
    /// At start-up chatserv works out how many connections this machine can
    /// hold (open files RLIMIT_NOFILE, whose soft limit it raises to the
    /// hard limit; vm.max_map_count; kernel.pid_max, kernel.threads-max,
    /// RLIMIT_NPROC and cgroup pids.max, since every connection has a
    /// thread; RLIMIT_AS; available memory and cgroup memory.max) and logs
    /// it in the `capacity` line. A larger N, given or the default, is
    /// lowered to that with a warning naming the binding limit and the
    /// sysctl or ulimit that raises it; the server still starts, since
    /// serving what fits beats not serving. It exits (status 1) only if
    /// not even one connection fits.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Messages that may wait for one client. A client whose queue is full
    /// (it reads too slowly) is disconnected with close code 1008 instead of
    /// slowing the others down.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub send_queue: u32,

    /// Refuse permessage-deflate compression (RFC 7692). By default it is
    /// accepted when a client offers it (browsers always do); its zlib state
    /// is only created once a connection sends or receives a message of at
    /// least 32 bytes, so idle connections cost nothing extra.
    #[arg(long)]
    pub no_deflate: bool,

    /// Require signed logins: a file holding the HS256 secret (at least 32
    /// bytes; surrounding whitespace is ignored). Clients then log in with
    /// an HS256 JWT whose `sub` is the user name and which has an `exp`, as
    /// `?token=JWT` or `Authorization: Bearer JWT` (`chatserv token` makes
    /// one); `?user=` is no longer accepted. The secret may instead be
    /// given in the environment variable CHATSERV_AUTH_SECRET. Without
    /// either, anyone can log in under any name.
    #[arg(long, value_name = "FILE")]
    pub auth_secret_file: Option<PathBuf>,

    /// With signed logins, also require the token's `aud` claim to name
    /// this audience.
    #[arg(long, value_name = "AUD")]
    pub auth_audience: Option<String>,

    /// Also accept WebSocket connections from pages at this origin
    /// (repeatable). Exact (`https://chat.example.com`) or one wildcard
    /// label (`https://*.example.com`: any subdomain, not the domain
    /// itself). The server's own origin (scheme + Host) is always allowed,
    /// and so are clients that send no Origin (non-browsers); any other
    /// Origin gets HTTP 403 (Cross-Site WebSocket Hijacking).
    #[arg(long, value_name = "ORIGIN", value_parser = crate::gate::OriginPattern::parse)]
    pub allowed_origin: Vec<crate::gate::OriginPattern>,

    /// Limit the messages each connection may send, e.g. `20/s`, `600/m`
    /// (a token bucket of --burst messages); a client going faster is
    /// closed with 1008 "rate limit exceeded". Unlimited by default.
    #[arg(long, value_name = "RATE", value_parser = crate::flood::Rate::parse)]
    pub rate_limit: Option<crate::flood::Rate>,

    /// Messages a connection may send in a burst before --rate-limit
    /// applies [default: the rate's count].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: Option<u32>,

    /// Most simultaneous WebSocket connections from one client IP; more
    /// get HTTP 429 with Retry-After. Unlimited by default.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: Option<u32>,

    /// Serve https and wss (TLS) instead of http and ws, on the same port,
    /// with this PEM certificate chain (the server's certificate first,
    /// then its intermediates). Needs --tls-key. A file that cannot be
    /// read or used stops the server with exit status 2.
    #[arg(long, value_name = "CHAIN.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    // Cluster mode and the admin port: options defined in their modules.
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,

    #[command(flatten)]
    pub admin: crate::admin::AdminArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands; without one, chatserv runs the server.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print a signed login token (HS256 JWT) for a user, for a server
    /// started with the same --auth-secret-file.
    Token(TokenArgs),
}

/// Options of `chatserv token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The user name (the token's `sub`).
    #[arg(long, value_name = "NAME", value_parser = user_name)]
    pub user: String,

    /// How long the token is valid (e.g. `1h`, `30m`, `168h`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,

    /// The file holding the server's secret (or CHATSERV_AUTH_SECRET).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Put this `aud` claim in the token (for a server with --auth-audience).
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
}

fn user_name(text: &str) -> Result<String, String> {
    chatcommon::check_user_name(text)
        .map(|()| text.to_owned())
        .map_err(str::to_owned)
}

impl Args {
    /// Whether permessage-deflate is accepted.
    pub fn deflate(&self) -> bool {
        !self.no_deflate
    }
}

/// Durations: the one parser both binaries share (`chatcommon`), refusing
/// zero: every duration here is a time-out or an interval, and zero would
/// mean "never" to the socket API (`set_read_timeout(Some(0))` is an error).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    chatcommon::parse_positive_duration(text)
}

/// A size in bytes: `65536`, `64KiB`, `1MiB` (`chatcommon::parse_size`),
/// at least 1.
pub fn parse_size(text: &str) -> Result<usize, String> {
    match chatcommon::parse_size(text)? {
        0 => Err(format!("invalid size {text:?}: must be at least 1 byte")),
        n => Ok(n),
    }
}

/// The forms `--listen` accepts, for its help and its error.
const LISTEN_FORMS: &str = "HOST:PORT (127.0.0.1:8000, localhost:8000), [IPv6]:PORT ([::1]:8000), \
                            :PORT (all interfaces, like Go's \":8000\") or PORT (127.0.0.1)";

/// Parse `--listen`: `127.0.0.1:8000`, `localhost:8000` (resolved; IPv4
/// first), `[::1]:8000`, `:8000` (every interface) or `8000` (loopback).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let bad = || format!("invalid listen address {text:?}: use {LISTEN_FORMS}");
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Some(port) = t.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(['[', ']', ':', '/', ' ']) {
        return Err(bad());
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve listen host {host:?}: {e}; use {LISTEN_FORMS}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(bad)
}

impl Args {
    /// Checks across options; the error says which options contradict.
    pub fn validate(&self) -> Result<(), String> {
        if self.idle_timeout <= self.ping_interval {
            return Err(format!(
                "--idle-timeout ({:?}) must be longer than --ping-interval ({:?}): a quiet but \
                 live client only answers the pings, so it would be dropped before the first \
                 ping reached it",
                self.idle_timeout, self.ping_interval
            ));
        }
        if self.burst.is_some() && self.rate_limit.is_none() {
            return Err("--burst needs --rate-limit".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        // A bare number used to mean seconds here and be refused by
        // chatcli; both now share one parser, which asks for a unit.
        for bad in [
            "",
            "7",
            "s",
            "10x",
            "0s",
            "0",
            "ms10",
            "-1s",
            "1.5s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn listen_forms() {
        let a = |s: &str| parse_listen(s).map(|a| a.to_string());
        assert_eq!(a("127.0.0.1:8000").as_deref(), Ok("127.0.0.1:8000"));
        assert_eq!(a(":8000").as_deref(), Ok("0.0.0.0:8000"));
        assert_eq!(a("8000").as_deref(), Ok("127.0.0.1:8000"));
        assert_eq!(a("[::1]:8000").as_deref(), Ok("[::1]:8000"));
        assert_eq!(a("localhost:8000").as_deref(), Ok("127.0.0.1:8000"));
        for bad in [
            "",
            "localhost",
            ":x",
            "1.2.3.4:99999",
            "http://h:1",
            "::1:8000x",
        ] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.contains(":PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn contradictions() {
        let args = Args::parse_from([
            "chatserv",
            "--ping-interval",
            "30s",
            "--idle-timeout",
            "30s",
        ]);
        assert!(args.validate().unwrap_err().contains("--idle-timeout"));
        let args = Args::parse_from(["chatserv", "--burst", "3"]);
        assert!(args.validate().is_err());
        assert!(Args::parse_from(["chatserv"]).validate().is_ok());
        let args = Args::parse_from(["chatserv", "--max-message-size", "1MiB"]);
        assert_eq!(args.max_message_size, 1 << 20);
    }

    #[test]
    fn defaults_match_the_spec() {
        let args = Args::parse_from(["chatserv"]);
        assert_eq!(args.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(args.id, "demo");
        assert_eq!(args.ping_interval, Duration::from_secs(30));
        assert_eq!(args.idle_timeout, Duration::from_secs(90));
        assert_eq!(args.handshake_timeout, Duration::from_secs(10));
        assert_eq!(args.max_message_size, 64 * 1024);
        assert_eq!(args.max_connections, 10_000);
        assert!(args.deflate());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
