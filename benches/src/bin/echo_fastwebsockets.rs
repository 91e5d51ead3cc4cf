//! The event-loop peer of the echo benchmark: fastwebsockets 0.10 on
//! tokio's multi-threaded runtime (one worker thread per core), written
//! like fastwebsockets' own `echo_server` example (`FragmentCollector`,
//! `read_frame`, `write_frame` of the same frame, auto-pong and
//! auto-close on). The opening handshake is read here directly (the
//! example uses hyper for it, which the load does not exercise), and the
//! accept key comes from `wsproto::accept_key`. `TCP_NODELAY` as in the
//! other echo servers. Plain TCP only.
//!
//! It is the measured stand-in for "what an event loop does here" beside
//! wsproto's one-thread mio server (`wsproto/examples/mio_server.rs`).
//!
//! Prints `listening ADDR` on stdout once bound.

use std::net::SocketAddr;

use clap::Parser;
use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket, WebSocketError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// WebSocket echo server over fastwebsockets on tokio.
#[derive(Debug, Parser)]
#[command(name = "echo_fastwebsockets", about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9005")]
    listen: SocketAddr,
    /// Worker threads of the tokio runtime (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

/// The longest request head accepted.
const MAX_HEAD: usize = 8192;

/// Read the request head and answer 101 (or 400 without a key).
async fn handshake(stream: &mut TcpStream) -> std::io::Result<bool> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(false);
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let key = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    });
    let Some(key) = key else {
        stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(false);
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        wsproto::accept_key(&key)
    );
    stream.write_all(response.as_bytes()).await?;
    Ok(true)
}

async fn serve(mut stream: TcpStream) -> Result<(), WebSocketError> {
    stream.set_nodelay(true)?;
    if !handshake(&mut stream).await? {
        return Ok(());
    }
    let mut ws = WebSocket::after_handshake(stream, Role::Server);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.workers {
        runtime.worker_threads(workers);
    }
    runtime.enable_io().build()?.block_on(async move {
        let listener = TcpListener::bind(args.listen).await?;
        println!("listening {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(e) = serve(stream).await {
                    // A client that goes away mid-message is routine under load.
                    eprintln!("echo_fastwebsockets: {e}");
                }
            });
        }
    })
}
