//! Echo server for the Autobahn|Testsuite fuzzing client, one thread per
//! connection: `cargo run --release -p wsproto --example autobahn_server -- 127.0.0.1:9001`.

use std::net::{TcpListener, TcpStream};

use wsproto::{Config, Error, Message};

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobahn_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("autobahn_server: listening on {addr}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream) {
                        eprintln!("autobahn_server: connection ended: {e}");
                    }
                });
            }
            Err(e) => eprintln!("autobahn_server: accept failed: {e}"),
        }
    }
}

fn serve(stream: TcpStream) -> wsproto::Result<()> {
    stream.set_nodelay(true)?;
    // permessage-deflate is on by default; compress every message so the
    // 12.*/13.* cases exercise the compressor, not only the threshold.
    let config = Config {
        deflate: Some(wsproto::DeflateConfig {
            min_compress_size: 0,
            ..wsproto::DeflateConfig::default()
        }),
        ..Config::default()
    };
    let mut ws = wsproto::accept_with(stream, &config, |_| Ok(Default::default()))?;
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                ws.write(message)?;
                // Answer everything already received, then flush once.
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
