//! The writer thread of a connection: the only code that writes to its
//! socket.
//!
//! It drains the bounded queue, coalescing whatever is waiting into one
//! flush, pings the client every ping interval, and performs the close the
//! [`Control`] block asks for. A write that blocks (the client stopped
//! reading) only ever blocks this thread, and at most for the socket's
//! write time-out.

use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;
use wsproto::{CloseCode, Message, MessageRef, WsWriter};

use crate::connection::Stream;

use crate::session::{Control, Outgoing};

/// Most queued messages written before one flush.
const BATCH: usize = 64;

/// How long to wait for the client's Close reply to a Close we started
/// before closing the TCP connection anyway (RFC 6455 §7.1.1 lets the
/// server close first). The 1001 Close of a shutdown waits
/// `--shutdown-timeout` instead.
pub const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Run the writer until the connection ends; then shut the socket down
/// both ways, which also wakes the reader thread if it is still reading.
///
/// `socket` is a handle on the connection's socket for that shutdown.
pub fn run(
    mut writer: WsWriter<Stream>,
    socket: TcpStream,
    rx: Receiver<Outgoing>,
    control: Arc<Control>,
    ping_interval: Duration,
    shutdown_timeout: Duration,
) {
    if let Err(e) = write_loop(&mut writer, &rx, &control, ping_interval, shutdown_timeout) {
        debug!(peer = ?socket.peer_addr().ok(), error = %e, "write failed");
    }
    let _ = socket.shutdown(Shutdown::Both);
}

fn write_loop(
    writer: &mut WsWriter<Stream>,
    rx: &Receiver<Outgoing>,
    control: &Control,
    ping_interval: Duration,
    shutdown_timeout: Duration,
) -> wsproto::Result<()> {
    let mut next_ping = Instant::now() + ping_interval;
    loop {
        if let Some(close) = control.pending_close() {
            // A no-op when wsproto already sent a Close (the echo of the
            // client's, or the one failing a protocol error).
            let wait = match &close.frame {
                Some(frame) if frame.code == CloseCode::Away => shutdown_timeout,
                _ => CLOSE_REPLY_TIMEOUT,
            };
            match close.frame {
                Some(frame) => writer.close(frame.code, &frame.reason)?,
                None => writer.send(Message::Close(None))?,
            }
            if close.wait_reply && !control.peer_closed() && !control.wait_peer_closed(wait) {
                control.set_gave_up(wait);
            }
            return Ok(());
        }
        if control.stopped() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= next_ping {
            // RFC 6455 §5.5.2: a keepalive; the client's pong (or anything
            // else it sends) resets the reader's idle time-out.
            writer.send(Message::Ping(Vec::new()))?;
            next_ping = now + ping_interval;
            continue;
        }
        let first = match rx.recv_timeout(next_ping - now) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        write_item(writer, first)?;
        for item in rx.try_iter().take(BATCH - 1) {
            write_item(writer, item)?;
        }
        writer.flush()?;
    }
}

fn write_item(writer: &mut WsWriter<Stream>, item: Outgoing) -> wsproto::Result<()> {
    match item {
        // Framed straight from the shared line: no copy per recipient.
        Outgoing::Text(text) => writer.write_ref(MessageRef::Text(&text)),
        Outgoing::Wake => Ok(()),
    }
}
