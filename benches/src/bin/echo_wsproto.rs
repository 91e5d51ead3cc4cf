//! The wsproto echo server of the load benchmark (`benches/scripts/echo-bench.sh`).
//!
//! One thread per connection with a small stack, permessage-deflate off,
//! and the zero-copy, zero-allocation path: `read` moves each message out
//! of the connection, `write_ref` queues its echo, and `recycle` hands the
//! buffer back for the next message. The stream is flushed only when no
//! received bytes are waiting (`has_buffered_input`), so a burst of
//! pipelined messages is answered with one system call.
//!
//! Prints `listening ADDR` on stdout once bound (use `--listen 127.0.0.1:0`
//! for a free port).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wsproto::tls::{rustls::ServerConfig, TlsStream};
use wsproto::{accept_with, Accept};
use wsproto::{Config, Error, Message, MessageRef, SetTimeouts, WebSocket};

/// WebSocket echo server over wsproto, thread per connection.
#[derive(Debug, Parser)]
#[command(name = "echo_wsproto", about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9002")]
    listen: SocketAddr,
    /// Stack size of each connection thread, in bytes.
    #[arg(long, default_value_t = 32 * 1024)]
    stack: usize,
    /// Cap of wsproto's read buffer (`Config::read_buffer_size`), in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    read_buffer: usize,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message_size: usize,
    /// `recycle`: `read` + `write_ref` + `recycle` (no copy, no allocation);
    /// for comparison, `ref`: `read_ref` + copy + `write_ref` (no
    /// allocation, one copy), `owned`: `read` + `write` (no copy, a fresh
    /// message buffer per message).
    #[arg(long, value_enum, default_value_t = Mode::Recycle)]
    mode: Mode,
    /// Accept permessage-deflate (RFC 7692) with the default parameters
    /// (`benches/scripts/deflate-echo.sh`); off by default.
    #[arg(long)]
    deflate: bool,
    /// Serve wss:// with this PEM certificate chain (with --tls-key):
    /// wsproto's TlsStream (rustls, ring provider).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Recycle,
    Ref,
    Owned,
}

fn serve(
    stream: TcpStream,
    config: &Config,
    mode: Mode,
    tls: Option<Arc<ServerConfig>>,
) -> wsproto::Result<()> {
    stream.set_nodelay(true)?;
    match tls {
        Some(tls) => serve_on(TlsStream::accept(stream, tls)?, config, mode),
        None => serve_on(stream, config, mode),
    }
}

fn serve_on<S: Read + Write + SetTimeouts>(
    stream: S,
    config: &Config,
    mode: Mode,
) -> wsproto::Result<()> {
    // Bounded handshake: a client that never sends its request head.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let ws = accept_with(stream, config, |_| Ok(Accept::default()))?;
    ws.get_ref().set_read_timeout(None)?;
    match mode {
        Mode::Recycle => echo_loop(ws, echo_recycled),
        Mode::Ref => {
            let (mut binary, mut text) = (Vec::new(), String::new());
            echo_loop(ws, move |ws| echo_copied(ws, &mut binary, &mut text))
        }
        Mode::Owned => echo_loop(ws, echo_owned),
    }
}

/// Echo messages with `echo_one` until the client closes, flushing only
/// when no received bytes are waiting. Pings were answered and a Close
/// echoed by `read`/`read_ref` themselves.
fn echo_loop<S: Read + Write>(
    mut ws: WebSocket<S>,
    mut echo_one: impl FnMut(&mut WebSocket<S>) -> wsproto::Result<()>,
) -> wsproto::Result<()> {
    loop {
        match echo_one(&mut ws) {
            Ok(()) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
        if !ws.has_buffered_input() {
            ws.flush()?;
        }
    }
}

/// The message is moved out, echoed from its own buffer, and the buffer
/// handed back for the next one.
fn echo_recycled<S: Read + Write>(ws: &mut WebSocket<S>) -> wsproto::Result<()> {
    match ws.read()? {
        Message::Binary(b) => {
            ws.write_ref(MessageRef::Binary(&b))?;
            ws.recycle(b);
        }
        Message::Text(t) => {
            ws.write_ref(MessageRef::Text(&t))?;
            ws.recycle(t.into_bytes());
        }
        _ => {}
    }
    Ok(())
}

/// The borrowed path: the borrow of `read_ref` ends before `write_ref`,
/// so the payload is copied into a reused buffer.
fn echo_copied<S: Read + Write>(
    ws: &mut WebSocket<S>,
    binary: &mut Vec<u8>,
    text: &mut String,
) -> wsproto::Result<()> {
    match ws.read_ref()? {
        MessageRef::Binary(b) => {
            binary.clear();
            binary.extend_from_slice(b);
            ws.write_ref(MessageRef::Binary(binary))
        }
        MessageRef::Text(t) => {
            text.clear();
            text.push_str(t);
            ws.write_ref(MessageRef::Text(text))
        }
        _ => Ok(()),
    }
}

/// The owned path: the message is moved out and written from (a fresh
/// buffer for every message).
fn echo_owned<S: Read + Write>(ws: &mut WebSocket<S>) -> wsproto::Result<()> {
    match ws.read()? {
        m @ (Message::Binary(_) | Message::Text(_)) => ws.write(m),
        _ => Ok(()),
    }
}

fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let config = Config {
        read_buffer_size: args.read_buffer,
        max_message_size: args.max_message_size,
        max_frame_size: args.max_message_size,
        deflate: args.deflate.then(wsproto::DeflateConfig::default),
        ..Config::default()
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            wsproto::tls::server_config_from_pem_files(cert, key)
                .map_err(|e| std::io::Error::other(e.to_string()))?,
        ),
        _ => None,
    };
    let listener = TcpListener::bind(args.listen)?;
    println!("listening {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of descriptors: give the others time to close.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let config = config.clone();
        let mode = args.mode;
        let tls = tls.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(args.stack)
            .spawn(move || {
                if let Err(e) = serve(stream, &config, mode, tls) {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
    Ok(())
}
