//! The standard Autobahn|Testsuite client: asks the fuzzing server for the
//! case count, echoes every message of every case, then asks for the report.
//!
//! `cargo run --release -p wsproto --example autobahn_client -- ws://127.0.0.1:9001 wsproto`

use wsproto::{Error, Message};

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .or_else(|| std::env::var("AUTOBAHN_URL").ok())
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wsproto".into());
    if let Err(e) = run(&base, &agent) {
        eprintln!("autobahn_client: {e}");
        std::process::exit(1);
    }
}

fn run(base: &str, agent: &str) -> wsproto::Result<()> {
    let count = case_count(base)?;
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if let Err(e) = echo(&url) {
            eprintln!("autobahn_client: case {case}: {e}");
        }
    }
    let (mut ws, _) = wsproto::connect(&format!("{base}/updateReports?agent={agent}"))?;
    ws.close(wsproto::CloseCode::Normal, "")?;
    drain(&mut ws)
}

fn case_count(base: &str) -> wsproto::Result<u32> {
    let (mut ws, _) = wsproto::connect(&format!("{base}/getCaseCount"))?;
    let mut count = None;
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => count = t.trim().parse().ok(),
            Ok(_) => {}
            Err(Error::ConnectionClosed) => break,
            Err(e) => return Err(e),
        }
    }
    count.ok_or(Error::ConnectionClosed)
}

fn echo(url: &str) -> wsproto::Result<()> {
    // Offer permessage-deflate with client_no_context_takeover too, so that
    // the 13.* cases whose server insists on it are exercised as well.
    let config = wsproto::Config {
        deflate: Some(wsproto::DeflateConfig {
            client_no_context_takeover: true,
            min_compress_size: 0,
            ..wsproto::DeflateConfig::default()
        }),
        ..wsproto::Config::default()
    };
    let (mut ws, _) = wsproto::connect_with(&wsproto::ClientRequest::new(url)?, &config)?;
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

fn drain<S: std::io::Read + std::io::Write>(ws: &mut wsproto::WebSocket<S>) -> wsproto::Result<()> {
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
