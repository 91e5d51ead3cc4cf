//! Interop client: connects to an echo server written with another
//! WebSocket implementation and checks that everything it sends comes back
//! unchanged, one line per check, exit status 1 on any failure.
//!
//! ```text
//! cargo run --release -p interop --bin echo_client -- ws://127.0.0.1:PORT/ \
//!     [--deflate | --no-deflate] [--server-no-context-takeover]
//!     [--client-no-context-takeover] [--server-max-window-bits N]
//!     [--client-max-window-bits N] [--min-compress-size BYTES]
//!     [--expect-params PARAMS] [--ca-file CA.pem]
//! ```
//!
//! A `wss://` URL runs the same exchange over TLS, trusting the CA in
//! `--ca-file` (the test CA `run.sh` makes with `gen_certs`).
//!
//! The scripted exchange covers what RFC 6455 lets an echo peer observe:
//! text (ASCII and multi-byte UTF-8, §5.6), binary payloads at each
//! payload-length encoding boundary (7-bit, 16-bit and 64-bit lengths,
//! §5.2), a 1 MiB message, empty messages, a burst of pipelined messages,
//! a ping whose pong must carry the same payload (§5.5.3), and the close
//! handshake with a private-use code 4000 (§7.4.2) that the peer must echo
//! (§5.5.1) before closing the TCP connection (§7.1.1).
//!
//! permessage-deflate (RFC 7692): by default the client offers it (the
//! library default) and accepts a server that declines. `--no-deflate`
//! offers nothing, and the server must then answer with no extension
//! (RFC 6455 §9.1). `--deflate` requires the server to accept the offer;
//! the four parameter flags go into the offer (§7.1) so negotiation
//! variants are exercised. `--min-compress-size` sets the size below which
//! messages go uncompressed (library default 32; 0 compresses even empty
//! messages, which must then be sent as one 0x00 byte, §7.2.3.6).
//! `--expect-params` compares the negotiated
//! parameters, written as by [`format_params`] (e.g.
//! `"server_no_context_takeover server_max_window_bits=10 client_max_window_bits=15"`,
//! or `none`), with what the server was configured to answer. When
//! compression was negotiated, three more checks count the bytes on the TCP
//! connection: a 100 KiB JSON-like text and a 256 KiB structured binary
//! must travel compressed in both directions (proving that both our
//! deflater and our inflater were used, §7.2), and a run of similar
//! messages shows the context takeover that the agreed parameters allow or
//! forbid (§7.1.1).
//!
//! Used by `interop/run.sh` against the Python `websockets` and Node `ws`
//! echo servers.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand::RngCore;
use wsproto::{
    ClientRequest, CloseCode, Config, DeflateConfig, DeflateParams, Error, MaybeTlsStream, Message,
    Response, WebSocket,
};

/// Every read and write gives up after this long, so a silent peer fails the
/// run instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Most non-data frames (pings, stray pongs) skipped while waiting for one
/// echo, so a chatty peer cannot keep a check looping.
const MAX_SKIPPED: usize = 64;

/// Messages in the pipelined burst.
const BURST: usize = 100;

/// Messages in the context-takeover run.
const SIMILAR: usize = 20;

const USAGE: &str = "usage: echo_client ws://HOST:PORT/PATH [--deflate | --no-deflate] \
    [--server-no-context-takeover] [--client-no-context-takeover] \
    [--server-max-window-bits N] [--client-max-window-bits N] [--min-compress-size BYTES] \
    [--expect-params PARAMS]";

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
type Check<'a> = (&'a str, Box<dyn FnOnce(&mut Ws) -> CheckResult + 'a>);

/// What to do about permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Offer it (the library default); a server may decline.
    Offer,
    /// Offer it; fail unless the server accepts.
    Require,
    /// Do not offer it.
    Off,
}

/// The command line.
struct Options {
    url: String,
    mode: Mode,
    deflate: DeflateConfig,
    expect: Option<String>,
    ca_file: Option<String>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut url = None;
        let mut mode = Mode::Offer;
        let mut deflate = DeflateConfig::default();
        let mut expect = None;
        let mut ca_file = None;
        while let Some(arg) = args.next() {
            let mut bits = |name: &str, min: u8| -> Result<u8, String> {
                args.next()
                    .and_then(|v| v.parse::<u8>().ok())
                    .filter(|b| (min..=15).contains(b))
                    .ok_or_else(|| format!("{name} takes a number from {min} to 15"))
            };
            match arg.as_str() {
                "--deflate" if mode != Mode::Off => mode = Mode::Require,
                "--no-deflate" if mode != Mode::Require => mode = Mode::Off,
                "--deflate" | "--no-deflate" => {
                    return Err("--deflate and --no-deflate exclude each other".into())
                }
                "--server-no-context-takeover" => deflate.server_no_context_takeover = true,
                "--client-no-context-takeover" => deflate.client_no_context_takeover = true,
                // zlib cannot compress with a 256-byte window (8), but a
                // client may ask the server for it.
                "--server-max-window-bits" => deflate.server_max_window_bits = bits(&arg, 8)?,
                "--client-max-window-bits" => deflate.client_max_window_bits = bits(&arg, 9)?,
                "--min-compress-size" => {
                    deflate.min_compress_size = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--min-compress-size takes a number of bytes")?;
                }
                "--ca-file" => {
                    ca_file = Some(args.next().ok_or("--ca-file takes a PEM file")?);
                    continue;
                }
                "--expect-params" => {
                    expect = Some(args.next().ok_or("--expect-params takes a value")?);
                    continue;
                }
                _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
                _ if url.is_none() => {
                    url = Some(arg);
                    continue;
                }
                _ => return Err(format!("unexpected argument {arg}")),
            }
        }
        if mode == Mode::Off && deflate != DeflateConfig::default() {
            return Err("deflate parameters make no sense with --no-deflate".into());
        }
        Ok(Options {
            url: url.ok_or("no URL given")?,
            mode,
            deflate,
            expect,
            ca_file,
        })
    }
}

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(why) => {
            eprintln!("echo_client: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (mut ws, response) = match connect(&opts) {
        Ok(pair) => pair,
        Err(e) => {
            println!("FAIL handshake: {e}");
            println!("echo_client: 0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    println!("ok   handshake: HTTP {} from {}", response.status, opts.url);
    // The handshake counts as the first passed check.
    let (mut passed, mut failed) = (1usize, 0usize);
    let negotiated = ws.deflate_params();
    let answer = response.header("sec-websocket-extensions");
    match check_negotiation(&opts, negotiated, answer) {
        Ok(detail) => {
            passed += 1;
            println!("ok   extension negotiation: {detail}");
        }
        Err(why) => {
            failed += 1;
            println!("FAIL extension negotiation: {why}");
        }
    }

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

    let mut checks: Vec<Check> = vec![
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
        ("burst of 100 pipelined", Box::new(burst)),
    ];
    let empties: Vec<Check> = vec![
        ("empty text", Box::new(|ws| echo(ws, Message::text("")))),
        (
            "empty binary",
            Box::new(|ws| echo(ws, Message::binary(Vec::new()))),
        ),
    ];
    // With compression, the empty messages come after the deflate checks:
    // compressed (--min-compress-size 0), a bad empty message would spoil
    // the peer's inflater for every later data message.
    match negotiated {
        None => checks.extend(empties),
        Some(params) => checks.extend(deflate_checks(params).into_iter().chain(empties)),
    }
    checks.push((
        "ping/pong payload",
        Box::new({
            let mut payload = b"interop-ping\x00\xff".to_vec();
            payload.extend(random(32));
            move |ws| ping(ws, payload)
        }),
    ));
    checks.push(("close 4000 \"bye\"", Box::new(close)));

    let total = checks.len() + passed + failed;
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
                failed += total - passed - failed;
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

type Ws = WebSocket<Counted>;

/// Connect with read/write time-outs, offering permessage-deflate as the
/// options say.
fn connect(opts: &Options) -> wsproto::Result<(Ws, Response)> {
    let request = ClientRequest::new(&opts.url)?;
    let tcp = TcpStream::connect((request.url.host.as_str(), request.url.port))?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let config = Config {
        deflate: (opts.mode != Mode::Off).then(|| opts.deflate.clone()),
        ..Config::default()
    };
    let stream = if request.url.tls {
        let ca = opts.ca_file.as_deref().unwrap_or("--ca-file not given");
        let tls = wsproto::tls::client_config_with_ca_file(ca.as_ref())
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let tls = wsproto::tls::TlsStream::connect(tcp, &request.url.host, tls)?;
        MaybeTlsStream::Tls(Box::new(tls))
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    wsproto::client_handshake(Counted::new(stream), &request, &config)
}

/// The stream (TCP, or the plaintext side of TLS), counting the bytes
/// that cross it in each direction, so checks can see whether a message
/// really travelled compressed.
struct Counted {
    tcp: MaybeTlsStream,
    read: u64,
    written: u64,
}

impl Counted {
    fn new(tcp: MaybeTlsStream) -> Counted {
        Counted {
            tcp,
            read: 0,
            written: 0,
        }
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.tcp.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
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
        .tcp
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

// ---- permessage-deflate (RFC 7692) ----------------------------------------

/// The negotiated parameters as one line: the no-context-takeover flags that
/// are set, then both window sizes; `none` when nothing was negotiated. The
/// Python and Node test programs print the same format.
fn format_params(params: Option<DeflateParams>) -> String {
    let Some(p) = params else {
        return "none".into();
    };
    let mut out = String::new();
    if p.server_no_context_takeover {
        out.push_str("server_no_context_takeover ");
    }
    if p.client_no_context_takeover {
        out.push_str("client_no_context_takeover ");
    }
    let _ = write!(
        out,
        "server_max_window_bits={} client_max_window_bits={}",
        p.server_max_window_bits, p.client_max_window_bits
    );
    out
}

/// The handshake outcome against the options: `--deflate` needs an
/// accepted offer, `--no-deflate` no extension; what we asked for must be
/// honoured (RFC 7692 §7.1: a server may lower a window or add
/// no_context_takeover, never the opposite); `--expect-params` must match.
fn check_negotiation(
    opts: &Options,
    got: Option<DeflateParams>,
    answer: Option<&str>,
) -> Result<String, String> {
    let shown = format!(
        "{} (Sec-WebSocket-Extensions: {})",
        format_params(got),
        answer.unwrap_or("absent")
    );
    match (opts.mode, got) {
        (Mode::Require, None) => return Err(format!("permessage-deflate not negotiated: {shown}")),
        (Mode::Off, Some(_)) => return Err(format!("nothing offered, yet {shown}")),
        (_, Some(p)) => {
            let asked = &opts.deflate;
            if (asked.server_no_context_takeover && !p.server_no_context_takeover)
                || (asked.client_no_context_takeover && !p.client_no_context_takeover)
                || p.server_max_window_bits > asked.server_max_window_bits
                || p.client_max_window_bits > asked.client_max_window_bits
            {
                return Err(format!("our offer was not honoured: {shown}"));
            }
        }
        _ => {}
    }
    match &opts.expect {
        Some(want) if *want != format_params(got) => {
            Err(format!("expected {want:?}, negotiated {shown}"))
        }
        _ => Ok(shown),
    }
}

/// The checks that only make sense once compression was negotiated.
fn deflate_checks<'a>(params: DeflateParams) -> Vec<Check<'a>> {
    let json = json_text(100 * 1024, 0x5eed_1234_abcd_0001);
    // 4096 records of 64 bytes: a counter and a fixed pattern, compressible
    // with any window size.
    let structured: Vec<u8> = (0..4096u32)
        .flat_map(|i| {
            let mut record = [0u8; 64];
            record[..4].copy_from_slice(&i.to_be_bytes());
            for (j, b) in record[4..].iter_mut().enumerate() {
                *b = (j as u8).wrapping_mul(37) ^ 0x5a;
            }
            record
        })
        .collect();
    vec![
        (
            "deflate: 100 KiB JSON text",
            Box::new(move |ws| compressed_echo(ws, Message::text(json))),
        ),
        (
            "deflate: 256 KiB structured binary",
            Box::new(move |ws| compressed_echo(ws, Message::binary(structured))),
        ),
        (
            "deflate: 20 similar messages (context takeover)",
            Box::new(move |ws| similar_messages(ws, params)),
        ),
    ]
}

/// Send `message`, expect it back; return the bytes it took on the wire
/// each way (frame headers included). The peer sends nothing but echoes,
/// so the bytes read while waiting for this echo are the echo.
fn echo_wire(ws: &mut Ws, message: Message) -> Result<(u64, u64), Failure> {
    let (written, read) = (ws.get_ref().written, ws.get_ref().read);
    ws.send(message.clone())?;
    let sent = ws.get_ref().written - written;
    let got = next_data(ws)?;
    compare(&message, &got)?;
    Ok((sent, ws.get_ref().read - read))
}

/// A compressible message must be echoed and cross the wire compressed in
/// both directions: our deflater and the peer's, then our inflater.
fn compressed_echo(ws: &mut Ws, message: Message) -> CheckResult {
    let len = message.len() as u64;
    let (sent, received) = echo_wire(ws, message)?;
    if sent * 2 > len {
        return Err(Failure::Mismatch(format!(
            "we sent {sent} bytes on the wire for a {len} byte message: not compressed"
        )));
    }
    if received * 2 > len {
        return Err(Failure::Mismatch(format!(
            "the echo took {received} bytes on the wire for {len}: the peer did not compress, \
             so our inflater was not exercised"
        )));
    }
    Ok(format!(
        "{len} bytes echoed; on the wire {sent} B sent ({:.1}%), {received} B received ({:.1}%)",
        sent as f64 * 100.0 / len as f64,
        received as f64 * 100.0 / len as f64
    ))
}

/// Echo `SIMILAR` messages that differ only in a counter. With context
/// takeover the repeats can refer to the previous message and shrink to a
/// few bytes; with no_context_takeover each is compressed alone (RFC 7692
/// §7.1.1). Correct echoes prove both inflaters kept or reset their
/// context as agreed; the sizes show what each compressor did.
fn similar_messages(ws: &mut Ws, params: DeflateParams) -> CheckResult {
    // ~1 KiB of hex digits: poorly compressible alone, so a reference to
    // the previous message makes a visible difference.
    let mut x = 0x0dd_ba11_cafe_f00d_u64;
    let body: String = (0..64)
        .map(|_| format!("{:016x}", xorshift(&mut x)))
        .collect();
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    for i in 0..SIMILAR {
        let message = Message::text(format!("{{\"seq\":{i},\"body\":\"{body}\"}}"));
        let (s, r) = echo_wire(ws, message).map_err(|f| prefix(f, &format!("message {i}")))?;
        sent.push(s);
        received.push(r);
    }
    let ours = judge(
        &sent,
        params.client_no_context_takeover,
        params.client_max_window_bits,
        true,
    )
    .map_err(|why| Failure::Mismatch(format!("our messages: {why}")))?;
    let peers = judge(
        &received,
        params.server_no_context_takeover,
        params.server_max_window_bits,
        false,
    )
    .map_err(|why| Failure::Mismatch(format!("peer's messages: {why}")))?;
    Ok(format!("{SIMILAR} echoes; ours {ours}; peer's {peers}"))
}

/// Judge the wire sizes of the similar messages sent by one side. With
/// no_context_takeover none may shrink much below the first. Without it,
/// and with a window that holds the previous message (2^12 bytes), we
/// (`must_reuse`) must use the context; the peer may or may not.
fn judge(
    sizes: &[u64],
    no_takeover: bool,
    window_bits: u8,
    must_reuse: bool,
) -> Result<String, String> {
    let first = sizes.first().copied().unwrap_or(0);
    let later = sizes.get(1..).unwrap_or(&[]);
    let (min, max) = (
        later.iter().copied().min().unwrap_or(0),
        later.iter().copied().max().unwrap_or(0),
    );
    let reused = max * 2 < first;
    let detail = format!(
        "first {first} B, later {min}..{max} B on the wire ({})",
        if reused {
            "context reused"
        } else {
            "each alone"
        }
    );
    if no_takeover && min * 4 < first * 3 {
        return Err(format!("no_context_takeover agreed, yet {detail}"));
    }
    if !no_takeover && must_reuse && window_bits >= 12 && !reused {
        return Err(format!(
            "context takeover allowed with a {window_bits}-bit window, yet {detail}"
        ));
    }
    Ok(detail)
}

fn prefix(f: Failure, what: &str) -> Failure {
    match f {
        Failure::Mismatch(why) => Failure::Mismatch(format!("{what}: {why}")),
        broken => broken,
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// At least `min_len` bytes of JSON-like records (ids, names, numbers,
/// tags, some non-ASCII), deterministic for a given seed: compressible the
/// way real API traffic is, not a single repeated string.
fn json_text(min_len: usize, seed: u64) -> String {
    const NAMES: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    const TAGS: [&str; 6] = ["alpha", "beta", "gamma", "δέλτα", "ε✓", "zeta"];
    let mut x = seed;
    let mut out = String::from("[");
    for id in 0.. {
        if out.len() >= min_len {
            break;
        }
        let r = xorshift(&mut x);
        let pick = |shift: u32, n: usize| ((r >> shift) as usize) % n;
        if id > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"id\":{id},\"user\":\"{}{}\",\"score\":{}.{:03},\"active\":{},\
             \"tags\":[\"{}\",\"{}\"],\"note\":\"naïve café #{}\"}}",
            NAMES[pick(0, 8)],
            pick(8, 1000),
            pick(20, 100),
            pick(28, 1000),
            r & 1 == 0,
            TAGS[pick(40, 6)],
            TAGS[pick(44, 6)],
            pick(50, 10_000),
        );
    }
    out.push(']');
    out
}
