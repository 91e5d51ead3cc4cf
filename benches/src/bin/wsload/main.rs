//! `wsload`: a closed-loop WebSocket echo load generator over wsproto.
//!
//! ```text
//! wsload --url ws://127.0.0.1:9002/ --connections 64 --inflight 32 --size 1KiB --duration 5s
//! wsload --url ws://127.0.0.1:9002/ -c 1 -w 32 -s 1KiB --payload json --deflate
//! wsload --url-pattern 'ws://127.0.0.1:8000/?user=u{i}' --idle 1000
//! ```
//!
//! Load mode: every connection (one thread each) keeps `--inflight`
//! messages of `--size` bytes outstanding and sends a new one for each echo:
//! binary pseudo-random bytes, or with `--payload json` text messages
//! holding a chat-like JSON document (see [`payload`]). Every echoed byte is
//! compared with what was sent (each message carries its sequence number),
//! and each message is timed from send to echo. Echoes received during
//! `--warmup` are checked but not counted. `--deflate` offers
//! permessage-deflate (RFC 7692) and fails if the server declines it. The
//! last line on stdout is machine-readable `key=value` pairs starting with
//! `RESULT`, including the bytes that crossed the sockets while measuring
//! (`wire_bytes_*`: TCP payload, so after compression) and the CPU time the
//! generator itself used meanwhile (`client_cpu_*`); the exit status is
//! 2 if there was any error or mismatch, 1 if the run could not start.
//!
//! Idle mode (`--idle N`): see [`idle`]. Handshake mode
//! (`--handshakes N`: connections opened, upgraded and closed, per
//! second): see [`handshakes`].

mod cpu;
mod duplex;
mod handshakes;
mod hist;
mod idle;
mod load;
mod payload;
mod stream;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use wsproto::{client_handshake, ClientRequest, Config, WebSocket};

use cpu::process_cpu;
use duplex::{Duplex, Wire};
use load::{ConnStats, Shared, MEASURE, STOP};
use payload::{Kind, Payload};

/// WebSocket echo load generator (closed loop) and idle-connection holder.
#[derive(Debug, Parser)]
#[command(name = "wsload", version, about)]
struct Args {
    /// Server URL, e.g. ws://127.0.0.1:9002/
    #[arg(long, required_unless_present = "url_pattern")]
    url: Option<String>,
    /// URL with `{i}` replaced by the connection's index (0-based), e.g.
    /// 'ws://127.0.0.1:8000/?user=u{i}' for servers that want distinct users.
    #[arg(long, conflicts_with = "url")]
    url_pattern: Option<String>,
    /// Number of connections.
    #[arg(long, short = 'c', default_value_t = 1)]
    connections: usize,
    /// Messages in flight per connection.
    #[arg(long, short = 'w', default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    inflight: u32,
    /// Message size: bytes, or with a suffix (1KiB, 64k, 1MiB).
    #[arg(long, short = 's', default_value = "16", value_parser = parse_size)]
    size: usize,
    /// What the messages hold: `binary` pseudo-random bytes, or `json`
    /// text (a chat API document, compressible like real traffic).
    #[arg(long, value_enum, default_value_t = Kind::Binary)]
    payload: Kind,
    /// Offer permessage-deflate (RFC 7692, default parameters); the run
    /// fails if the server does not accept it.
    #[arg(long)]
    deflate: bool,
    /// For wss:// URLs: trust the CA certificate(s) in this PEM file (the
    /// client side is rustls' StreamOwned, the same for every server).
    #[arg(long, value_name = "PEM")]
    ca_file: Option<std::path::PathBuf>,
    /// How long to measure (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Load before measuring (checked, not counted).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Idle mode: open this many upgraded connections and keep them quiet.
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// Idle mode: close after this long instead of at end of stdin.
    #[arg(long, value_parser = parse_duration)]
    hold: Option<Duration>,
    /// Handshake mode: open, upgrade and close this many connections
    /// (TLS too for wss://), `--connections` at a time (one thread each),
    /// and report handshakes per second.
    #[arg(long, value_name = "N", conflicts_with = "idle")]
    handshakes: Option<usize>,
    /// Handshake mode: uncounted handshakes first.
    #[arg(long, value_name = "N", default_value_t = 50)]
    handshake_warmup: usize,
    /// Handshake mode: keep rustls' client session cache, so handshakes
    /// after the first resume a session (default: every one is full).
    #[arg(long)]
    resume: bool,
    /// Handshake mode: the server's process id, to report its CPU time
    /// per handshake.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Stack size of each connection thread, in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    stack: usize,
}

/// Parse `16`, `1024`, `1k`, `1KiB`, `64KiB`, `1MiB` (k and KiB = 1024).
fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("bad size {text:?}"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("bad size unit in {text:?}")),
    };
    n.checked_mul(scale)
        .filter(|&s| s <= 64 << 20)
        .ok_or_else(|| format!("size {text:?} too large (max 64 MiB)"))
}

/// Parse `5s`, `500ms`, `2m`, or a bare number of seconds (may be fractional).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| format!("bad duration {text:?}"))?;
    Duration::try_from_secs_f64(v * scale).map_err(|_| format!("bad duration {text:?}"))
}

fn url_for(args: &Args, i: usize) -> String {
    match (&args.url_pattern, &args.url) {
        (Some(p), _) => p.replace("{i}", &i.to_string()),
        (None, Some(u)) => u.clone(),
        (None, None) => String::new(),
    }
}

fn connect(
    url: &str,
    config: &Config,
    tls: Option<&Arc<wsproto::tls::rustls::ClientConfig>>,
) -> wsproto::Result<WebSocket<Wire>> {
    let request = ClientRequest::new(url)?;
    let stream = std::net::TcpStream::connect((request.url.host.as_str(), request.url.port))?;
    let stream = Duplex::new(stream, Duration::from_secs(1))?;
    let stream = Wire::over(stream, &request, tls)?;
    let (ws, _response) = client_handshake(stream, &request, config)?;
    Ok(ws)
}

/// Exit status when the run cannot start (bad arguments for the payload,
/// no connection, permessage-deflate declined).
const CANNOT_RUN: u8 = 1;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if let Some(n) = args.idle {
        let tls = match client_tls(&args) {
            Ok(tls) => tls,
            Err(code) => return code,
        };
        let errors = idle::run(n, &|i| url_for(&args, i), tls.as_ref(), args.hold);
        return if errors == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    }
    if let Some(count) = args.handshakes {
        let tls = match client_tls(&args) {
            Ok(tls) => tls,
            Err(code) => return code,
        };
        return handshakes::run(&handshakes::Plan {
            count,
            warmup: args.handshake_warmup,
            threads: args.connections,
            url_for: &|i| url_for(&args, i),
            tls,
            resume: args.resume,
            server_pid: args.server_pid,
            stack: args.stack,
        });
    }
    run_load(&args)
}

/// The client TLS config trusting `--ca-file`, if given.
fn client_tls(
    args: &Args,
) -> Result<Option<std::sync::Arc<wsproto::tls::rustls::ClientConfig>>, ExitCode> {
    match &args.ca_file {
        Some(path) => match wsproto::tls::client_config_with_ca_file(path) {
            Ok(tls) => Ok(Some(tls)),
            Err(e) => {
                tracing::error!(error = %e, "--ca-file");
                Err(ExitCode::from(CANNOT_RUN))
            }
        },
        None => Ok(None),
    }
}

fn run_load(args: &Args) -> ExitCode {
    let payload = match Payload::new(args.payload, args.size) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "bad payload arguments");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    let config = Config {
        deflate: args.deflate.then(wsproto::DeflateConfig::default),
        max_message_size: args.size.max(1 << 20),
        max_frame_size: args.size.max(1 << 20),
        ..Config::default()
    };
    let tls = match client_tls(args) {
        Ok(tls) => tls,
        Err(code) => return code,
    };
    let mut total = ConnStats::default();
    let mut conns = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        match connect(&url_for(args, i), &config, tls.as_ref()) {
            // Measuring compression without it would be a silent lie.
            Ok(ws) if args.deflate && ws.deflate_params().is_none() => {
                tracing::error!(
                    connection = i,
                    "--deflate: the server did not accept permessage-deflate"
                );
                return ExitCode::from(CANNOT_RUN);
            }
            Ok(ws) => conns.push(ws),
            Err(e) => {
                tracing::warn!(connection = i, error = %e, "connect failed");
                total.errors += 1;
            }
        }
    }
    if conns.is_empty() {
        tracing::error!("no connection could be opened");
        return ExitCode::from(CANNOT_RUN);
    }
    let opened = conns.len();
    let shared = Arc::new(Shared::new(opened, args.inflight as usize, payload));
    let mut threads = Vec::with_capacity(opened);
    for (i, ws) in conns.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("conn{i}"))
            .stack_size(args.stack)
            .spawn(move || load::run(ws, shared));
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                // The barrier counts every connection: without this thread
                // it would never open, so give up cleanly.
                tracing::error!(error = %e, "cannot start a connection thread");
                return ExitCode::from(CANNOT_RUN);
            }
        }
    }
    shared.start.wait();
    std::thread::sleep(args.warmup);
    let cpu0 = process_cpu();
    shared.phase.store(MEASURE, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(args.duration);
    shared.phase.store(STOP, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    // The instrument's own cost: with the server's, where the CPU went.
    total.cpu_s = process_cpu() - cpu0;
    for t in threads {
        match t.join() {
            Ok(s) => total.merge(&s),
            Err(_) => total.errors += 1,
        }
    }
    if let Some(e) = &total.first_error {
        tracing::warn!(errors = total.errors, first = %e, "errors during the run");
    }
    report(args, opened, elapsed, &total);
    if total.errors == 0 && total.mismatched_messages == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn report(args: &Args, opened: usize, elapsed: f64, s: &ConnStats) {
    let rate = s.messages as f64 / elapsed;
    let mbps = s.bytes as f64 / elapsed / 1e6;
    let us = |q: f64| s.rtt.quantile(q) as f64 / 1e3;
    println!(
        "{} conns x {} in flight x {} B: {:.0} msgs/s, {:.2} MB/s echoed, RTT p50 {:.1} us p99 {:.1} us max {:.1} us, errors {}, mismatched {} msgs / {} bytes",
        opened,
        args.inflight,
        args.size,
        rate,
        mbps,
        us(0.5),
        us(0.99),
        s.rtt.max() as f64 / 1e3,
        s.errors,
        s.mismatched_messages,
        s.mismatched_bytes
    );
    // One line (scripts take the last): the historical keys, then the new.
    print!(
        "RESULT connections={opened} inflight={} size={} duration_s={elapsed:.3} messages={} all_messages={} msgs_per_s={rate:.1} mb_per_s={mbps:.3} rtt_p50_us={:.1} rtt_p99_us={:.1} rtt_max_us={:.1} errors={} mismatched_msgs={} mismatched_bytes={}",
        args.inflight,
        args.size,
        s.messages,
        s.all_messages,
        us(0.5),
        us(0.99),
        s.rtt.max() as f64 / 1e3,
        s.errors,
        s.mismatched_messages,
        s.mismatched_bytes
    );
    let payload = match args.payload {
        Kind::Binary => "binary",
        Kind::Json => "json",
    };
    let per_msg = (s.wire_sent + s.wire_received) as f64 / s.messages.max(1) as f64;
    let cpu_us = s.cpu_s * 1e6 / s.messages.max(1) as f64;
    println!(
        " payload={payload} deflate={} wire_bytes_sent={} wire_bytes_received={} wire_bytes_per_msg={per_msg:.1} client_cpu_s={:.3} client_cpu_us_per_msg={cpu_us:.2}",
        u8::from(args.deflate),
        s.wire_sent,
        s.wire_received,
        s.cpu_s,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16"), Ok(16));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert!(parse_size("1x").is_err());
        assert!(parse_size("999999999999MiB").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
    }
}
