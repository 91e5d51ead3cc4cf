//! Interop client: connects to an echo server written with another
//! WebSocket implementation and checks that everything it sends comes back
//! unchanged, one line per check, exit status 1 on any failure.
//!
//! `cargo run --release -p wsproto --example echo_client -- ws://127.0.0.1:PORT/`
//!
//! The scripted exchange covers what RFC 6455 lets an echo peer observe:
//! text (ASCII and multi-byte UTF-8, §5.6), binary payloads at each
//! payload-length encoding boundary (7-bit, 16-bit and 64-bit lengths,
//! §5.2), a 1 MiB message, empty messages, a burst of pipelined messages,
//! a ping whose pong must carry the same payload (§5.5.3), and the close
//! handshake with a private-use code 4000 (§7.4.2) that the peer must echo
//! (§5.5.1) before closing the TCP connection (§7.1.1).
//!
//! Used by `interop/run.sh` against the Python `websockets` and Node `ws`
//! echo servers.

use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand::RngCore;
use wsproto::{CloseCode, Error, Message, WebSocket};

/// Every read and write gives up after this long, so a silent peer fails the
/// run instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Most non-data frames (pings, stray pongs) skipped while waiting for one
/// echo, so a chatty peer cannot keep a check looping.
const MAX_SKIPPED: usize = 64;

/// Messages in the pipelined burst.
const BURST: usize = 100;

/// Why a check did not pass.
enum Failure {
    /// The peer answered, but not with what was expected; later checks can
    /// still run on the same connection.
    Mismatch(String),
    /// The connection itself failed; nothing after this can pass.
    Broken(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Broken(e)
    }
}

type CheckResult = Result<String, Failure>;

fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: echo_client ws://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    let (mut ws, status) = match connect(&url) {
        Ok(pair) => pair,
        Err(e) => {
            println!("FAIL handshake: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ok   handshake: HTTP {status} from {url}");

    let mut rng = rand::rng();
    let mut random = |len: usize| {
        let mut buf = vec![0u8; len];
        rng.fill_bytes(&mut buf);
        buf
    };
    let unicode = "héllo wörld — 你好, мир 🌍🚀 ∑∞ ﷽";
    // ~96 KiB of 2-, 3- and 4-byte characters: a 64-bit length and many
    // characters straddling the server's read-buffer boundaries.
    let big_unicode = "ж€🌍".repeat(96 * 1024 / 9);

    type Check<'a> = (&'a str, Box<dyn FnOnce(&mut Ws) -> CheckResult + 'a>);
    let checks: Vec<Check> = vec![
        (
            "text ascii",
            Box::new(|ws| echo(ws, Message::text("Hello, interop!"))),
        ),
        (
            "text unicode",
            Box::new(|ws| echo(ws, Message::text(unicode))),
        ),
        (
            "text 96 KiB unicode",
            Box::new(|ws| echo(ws, Message::text(big_unicode.clone()))),
        ),
        (
            "binary random 1000 B",
            Box::new({
                let data = random(1000);
                move |ws| echo(ws, Message::binary(data))
            }),
        ),
        (
            "binary length boundaries 125/126/65535/65536",
            Box::new({
                let payloads: Vec<_> = [125, 126, 65535, 65536]
                    .into_iter()
                    .map(&mut random)
                    .collect();
                move |ws| {
                    for p in payloads {
                        echo(ws, Message::binary(p))?;
                    }
                    Ok("4 echoes".into())
                }
            }),
        ),
        (
            "binary 1 MiB",
            Box::new({
                let data = random(1 << 20);
                move |ws| echo(ws, Message::binary(data))
            }),
        ),
        ("empty text", Box::new(|ws| echo(ws, Message::text("")))),
        (
            "empty binary",
            Box::new(|ws| echo(ws, Message::binary(Vec::new()))),
        ),
        ("burst of 100 pipelined", Box::new(burst)),
        (
            "ping/pong payload",
            Box::new({
                let mut payload = b"interop-ping\x00\xff".to_vec();
                payload.extend(random(32));
                move |ws| ping(ws, payload)
            }),
        ),
        ("close 4000 \"bye\"", Box::new(close)),
    ];

    // The handshake counts as the first passed check.
    let (mut passed, mut failed) = (1usize, 0usize);
    let total = checks.len();
    for (name, check) in checks {
        match check(&mut ws) {
            Ok(detail) => {
                passed += 1;
                println!("ok   {name}: {detail}");
            }
            Err(Failure::Mismatch(why)) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
            Err(Failure::Broken(e)) => {
                failed += total + 1 - passed - failed;
                println!("FAIL {name}: connection failed: {e}");
                break;
            }
        }
    }
    println!("echo_client: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

type Ws = WebSocket<TcpStream>;

fn connect(url: &str) -> wsproto::Result<(Ws, u16)> {
    let (mut ws, response) = wsproto::connect(url)?;
    ws.get_mut().set_read_timeout(Some(TIMEOUT))?;
    ws.get_mut().set_write_timeout(Some(TIMEOUT))?;
    ws.get_mut().set_nodelay(true)?;
    Ok((ws, response.status))
}

/// The next Text or Binary message; pings (already answered by `read`) and
/// unsolicited pongs are skipped, a bounded number of times.
fn next_data(ws: &mut Ws) -> Result<Message, Failure> {
    for _ in 0..MAX_SKIPPED {
        match ws.read()? {
            Message::Ping(_) | Message::Pong(_) => continue,
            m => return Ok(m),
        }
    }
    Err(Failure::Mismatch(format!(
        "{MAX_SKIPPED} control frames and no data message"
    )))
}

/// Send `message` and expect the identical message back.
fn echo(ws: &mut Ws, message: Message) -> CheckResult {
    ws.send(message.clone())?;
    let got = next_data(ws)?;
    compare(&message, &got)?;
    Ok(format!("{} bytes echoed", message.len()))
}

/// Say how `got` differs from `want` without dumping megabytes.
fn compare(want: &Message, got: &Message) -> Result<(), Failure> {
    if want == got {
        return Ok(());
    }
    let (kind_want, bytes_want) = describe(want);
    let (kind_got, bytes_got) = describe(got);
    let why = if kind_want != kind_got {
        format!("sent {kind_want}, got {kind_got}")
    } else if bytes_want.len() != bytes_got.len() {
        format!(
            "{kind_want}: sent {} bytes, got {}",
            bytes_want.len(),
            bytes_got.len()
        )
    } else {
        let at = bytes_want
            .iter()
            .zip(bytes_got)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        format!(
            "{kind_want} of {} bytes differs first at byte {at}",
            bytes_want.len()
        )
    };
    Err(Failure::Mismatch(why))
}

fn describe(m: &Message) -> (&'static str, &[u8]) {
    match m {
        Message::Text(t) => ("text", t.as_bytes()),
        Message::Binary(b) => ("binary", b),
        Message::Ping(p) => ("ping", p),
        Message::Pong(p) => ("pong", p),
        Message::Close(_) => ("close", &[]),
    }
}

/// Queue `BURST` messages, flush once, then expect the echoes in order:
/// the peer sees many frames in one TCP read and must answer all of them.
fn burst(ws: &mut Ws) -> CheckResult {
    let messages: Vec<Message> = (0..BURST)
        .map(|i| Message::text(format!("burst #{i} ✓")))
        .collect();
    for m in &messages {
        ws.write(m.clone())?;
    }
    ws.flush()?;
    for (i, want) in messages.iter().enumerate() {
        let got = next_data(ws)?;
        compare(want, &got).map_err(|f| match f {
            Failure::Mismatch(why) => Failure::Mismatch(format!("message {i}: {why}")),
            broken => broken,
        })?;
    }
    Ok(format!("{BURST} echoes in order"))
}

/// A ping must be answered by a pong with the same application data
/// (RFC 6455 §5.5.3).
fn ping(ws: &mut Ws, payload: Vec<u8>) -> CheckResult {
    ws.send(Message::Ping(payload.clone()))?;
    for _ in 0..MAX_SKIPPED {
        match ws.read()? {
            Message::Pong(p) if p == payload => {
                return Ok(format!("pong carries the {} byte payload", p.len()))
            }
            Message::Pong(p) => {
                return Err(Failure::Mismatch(format!(
                    "pong payload {p:02x?} differs from ping payload {payload:02x?}"
                )))
            }
            Message::Ping(_) => continue,
            other => {
                let (kind, _) = describe(&other);
                return Err(Failure::Mismatch(format!("got {kind} instead of a pong")));
            }
        }
    }
    Err(Failure::Mismatch("no pong".into()))
}

/// Close with code 4000 and reason "bye": the peer must echo code 4000
/// (RFC 6455 §5.5.1; echoing the reason is optional) and then close the
/// TCP connection, which `read` reports as `ConnectionClosed` (§7.1.1).
fn close(ws: &mut Ws) -> CheckResult {
    ws.close(CloseCode::Other(4000), "bye")?;
    let mut echoed = None;
    for _ in 0..MAX_SKIPPED {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                echoed = Some(frame);
                break;
            }
            // Data the peer sent before it saw our Close may still arrive.
            Ok(_) => continue,
            Err(e) => return Err(Failure::Broken(e)),
        }
    }
    let frame = match echoed {
        None => return Err(Failure::Mismatch("no close frame came back".into())),
        Some(None) => {
            return Err(Failure::Mismatch(
                "close echoed without a status code".into(),
            ))
        }
        Some(Some(f)) => f,
    };
    if frame.code != CloseCode::Other(4000) {
        return Err(Failure::Mismatch(format!(
            "close echoed with code {}, want 4000",
            frame.code
        )));
    }
    // `read` now waits for the peer to close TCP; a read time-out also ends
    // that wait, so tell the two apart by the time it took.
    let grace = Duration::from_secs(3);
    ws.get_mut()
        .set_read_timeout(Some(grace))
        .map_err(Error::from)?;
    let started = Instant::now();
    match ws.read() {
        Err(Error::ConnectionClosed) if started.elapsed() < grace => Ok(format!(
            "peer echoed code 4000 reason {:?}, then closed TCP",
            frame.reason
        )),
        Err(Error::ConnectionClosed) => Err(Failure::Mismatch(format!(
            "close echoed, but TCP still open after {grace:?}"
        ))),
        Ok(m) => {
            let (kind, _) = describe(&m);
            Err(Failure::Mismatch(format!(
                "{kind} after the close handshake"
            )))
        }
        Err(e) => Err(Failure::Broken(e)),
    }
}
