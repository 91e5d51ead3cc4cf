//! Command-line options (clap derive) and the duration syntax they accept.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A group-chat server: every text message a user sends reaches every other
/// logged-in user as `"<msg> -- FROM <user>"`.
///
/// WebSocket clients connect to `ws://HOST:PORT/?user=NAME` (any path); a
/// plain `GET /` in a browser serves a small chat page on the same port.
#[derive(Debug, Clone, Parser)]
#[command(name = "chatserv", version, about, long_about)]
pub struct Args {
    /// Address to listen on. Port 0 picks a free port; the address actually
    /// bound is logged in the `started` line.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
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

    /// Largest message (and frame) accepted from a client, in bytes; a
    /// larger one closes the connection with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub max_message_size: usize,

    /// Most simultaneous WebSocket connections; further upgrade requests
    /// are answered with HTTP 503.
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

    /// Serve https and wss (TLS) instead of http and ws, on the same port,
    /// with this PEM certificate chain (the server's certificate first,
    /// then its intermediates). Needs --tls-key. A file that cannot be
    /// read or used stops the server with exit status 2.
    #[arg(long, value_name = "CHAIN.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Args {
    /// Whether permessage-deflate is accepted.
    pub fn deflate(&self) -> bool {
        !self.no_deflate
    }
}

/// Parse a duration such as `30s`, `500ms`, `2m`, `1h` or `1m30s`.
///
/// A sequence of `<integer><unit>` parts with units `ms`, `s`, `m`, `h`; a
/// bare integer means seconds. Zero is refused: every duration here is a
/// time-out or an interval, and zero would mean "never" to the socket API
/// (`set_read_timeout(Some(0))` is an error).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return positive(Duration::from_secs(secs), text);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {text:?}: expected a number"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" | "min" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            unit => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m or h)"
                ))
            }
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(part);
    }
    positive(total, text)
}

fn positive(d: Duration, text: &str) -> Result<Duration, String> {
    if d.is_zero() {
        Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ))
    } else {
        Ok(d)
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
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in [
            "",
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
