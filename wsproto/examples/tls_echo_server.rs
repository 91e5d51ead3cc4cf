//! A `wss://` echo server, one thread per connection (feature `tls`):
//!
//! ```text
//! cargo run --release -p wsproto --features tls --example tls_echo_server -- \
//!     127.0.0.1:9443 chain.pem key.pem
//! ```
//!
//! The TLS handshake runs inside the WebSocket handshake's deadline (5 s).
//! Used by `interop/run.sh` for the TLS runs with Python and Node clients.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wsproto::tls::{rustls::ServerConfig, server_config_from_pem_files, TlsStream};
use wsproto::{Accept, Config, Error, Message};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, chain, key] = &args[..] else {
        eprintln!("usage: tls_echo_server ADDR CHAIN.pem KEY.pem");
        std::process::exit(2);
    };
    let tls = match server_config_from_pem_files(chain.as_ref(), key.as_ref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tls_echo_server: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tls_echo_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("tls_echo_server: listening on {addr}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let tls = Arc::clone(&tls);
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream, tls) {
                        eprintln!("tls_echo_server: connection ended: {e}");
                    }
                });
            }
            Err(e) => eprintln!("tls_echo_server: accept failed: {e}"),
        }
    }
}

fn serve(stream: TcpStream, tls: Arc<ServerConfig>) -> wsproto::Result<()> {
    stream.set_nodelay(true)?;
    let stream = TlsStream::accept(stream, tls)?;
    let config = Config {
        deflate: Some(wsproto::DeflateConfig {
            min_compress_size: 0,
            ..wsproto::DeflateConfig::default()
        }),
        ..Config::default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ws =
        wsproto::accept_with_deadline(stream, &config, deadline, |_| Ok(Accept::default()))?;
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                ws.write(message)?;
                if !ws.has_buffered_input() {
                    ws.flush()?;
                }
            }
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
