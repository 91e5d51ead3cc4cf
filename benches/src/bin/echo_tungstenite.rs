//! The baseline echo server of the load benchmark: tungstenite 0.30,
//! thread per connection, written the idiomatic way (`read()` an owned
//! message, `send()` it back), with its default configuration (no
//! compression: tungstenite has none). Same stack size and `TCP_NODELAY` as
//! `echo_wsproto`, so only the protocol library differs.
//!
//! Prints `listening ADDR` on stdout once bound.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tungstenite::{Error, Message};

/// WebSocket echo server over tungstenite, thread per connection.
#[derive(Debug, Parser)]
#[command(name = "echo_tungstenite", about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9003")]
    listen: SocketAddr,
    /// Stack size of each connection thread, in bytes.
    #[arg(long, default_value_t = 32 * 1024)]
    stack: usize,
    /// Serve wss:// with this PEM certificate chain (with --tls-key):
    /// tungstenite over `rustls::StreamOwned`, with the same rustls config
    /// (provider, cipher suites) as the wsproto server.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

type TlsServer = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn serve(stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>) -> Result<(), Error> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    match tls {
        None => serve_on(stream, |s| s),
        Some(tls) => {
            let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
            serve_on(TlsServer::new(conn, stream), |s| &s.sock)
        }
    }
}

fn serve_on<S: Read + Write>(stream: S, socket: impl Fn(&S) -> &TcpStream) -> Result<(), Error> {
    let mut ws = tungstenite::accept(stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => {
            Error::Io(std::io::ErrorKind::WouldBlock.into())
        }
    })?;
    socket(ws.get_ref()).set_read_timeout(None)?;
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg)?,
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
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
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let tls = tls.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(args.stack)
            .spawn(move || {
                if let Err(e) = serve(stream, tls) {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
    Ok(())
}
