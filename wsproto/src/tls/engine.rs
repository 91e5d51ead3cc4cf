//! rustls' unbuffered state machine (`rustls::unbuffered`), driven the
//! same way for both roles.
//!
//! Why unbuffered: rustls then decrypts records in place in *our* read
//! buffer instead of first copying them into a deframer buffer of its
//! own (one copy less), and the copies that remain in rustls have source
//! addresses that change from record to record, so they cannot sit at
//! the `rep movsb` aliasing distance for a whole connection (see
//! [`super::copy`]). With the buffered API every full-size record started
//! at the front of rustls' deframer buffer and its plaintext was copied
//! to the same freshly allocated chunk each time, 43 bytes off modulo
//! 4096 on this machine's heap, which made every 64 KiB echo pay ~30 µs
//! for that one copy.
//!
//! Every call into the state machine gets the same input buffer (rustls'
//! handshake deframer keeps offsets into it), a writer's too: the buffer
//! lives beside the connection under one lock.

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::CommonState;

use super::copy;

/// Plaintext per record when sealing large writes: a little under the
/// 16 KiB maximum, so that consecutive records of one large payload start
/// 64 bytes apart modulo 4096 rather than at the same offset (rustls
/// copies each into a fresh buffer; see the module docs).
pub(super) const RECORD: usize = 16 * 1024 - 64;

/// First guess of the room a handshake record or an alert needs (the
/// rest is asked for by rustls).
const SMALL_RECORD: usize = 512;
/// Bytes a record adds to its plaintext, at most: the header (5), an
/// explicit nonce (TLS 1.2's GCM: 8) or the inner content type (TLS 1.3:
/// 1), the tag (16), with room to spare.
const RECORD_OVERHEAD: usize = 64;

/// Keep at most this much capacity in a [`Sealed`] buffer once it is
/// empty.
const KEEP_CAPACITY: usize = 128 * 1024;

/// A byte queue whose spare room is kept initialised, so that rustls can
/// seal into it without a `memset` per write.
#[derive(Debug, Default)]
pub(super) struct Sealed {
    /// Initialised bytes; the queue is `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
}

impl Sealed {
    /// At least `n` bytes of room after the queue.
    fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() < self.len + n {
            self.buf.resize(self.len + n, 0);
        }
        &mut self.buf[self.len..]
    }

    /// The queued bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `bytes` (with [`copy::copy`]).
    pub(super) fn append(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        copy::copy(&mut self.spare(n)[..n], bytes);
        self.len += n;
    }

    /// Empty the queue, giving back memory a large write left behind.
    pub(super) fn clear(&mut self) {
        self.len = 0;
        if self.buf.len() > KEEP_CAPACITY {
            self.buf.truncate(KEEP_CAPACITY / 4);
            self.buf.shrink_to_fit();
        }
    }

    /// Let `seal` write into `room` bytes of spare room; on "too small"
    /// grow to what it asks for and call it again. The room is zeroed
    /// memory the buffer keeps, so it starts at a guess close to the
    /// record (an idle connection keeps only what it used).
    fn seal_with(
        &mut self,
        mut room: usize,
        mut seal: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
        what: &str,
    ) -> Result<(), rustls::Error> {
        loop {
            match seal(self.spare(room)) {
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(Some(required)) if required > room => room = required,
                Err(_) => return Err(rustls::Error::General(format!("cannot seal {what}"))),
            }
        }
    }
}

fn encode_size(e: EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

fn encrypt_size(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// What a pass asks of the state machine besides processing input.
pub(super) enum Op<'a> {
    /// Decrypt: stop after one record's plaintext, or when more input is
    /// needed.
    Read,
    /// Seal these bytes (each segment in records of at most [`RECORD`]).
    Write(&'a [&'a [u8]]),
    /// Seal a `close_notify`.
    CloseNotify,
}

/// What one pass did.
#[derive(Debug, Default)]
pub(super) struct Pass {
    /// Input bytes used up: drop them from the front of the buffer.
    pub consumed: usize,
    /// The write was sealed (`Op::Write`, `Op::CloseNotify`).
    pub sealed: bool,
    /// The peer sent `close_notify`.
    pub peer_closed: bool,
}

/// The connection, either role.
pub(super) enum Conn {
    Client(Box<UnbufferedClientConnection>),
    Server(Box<UnbufferedServerConnection>),
}

impl Conn {
    pub(super) fn common(&self) -> &CommonState {
        match self {
            Conn::Client(c) => c,
            Conn::Server(c) => c,
        }
    }

    /// Run the state machine over `incoming` until it needs more input,
    /// has delivered one record (`Op::Read`), or has sealed `op`. Records
    /// rustls produces go to `out` in order; plaintext to `on_data`.
    pub(super) fn pass(
        &mut self,
        incoming: &mut [u8],
        op: &Op<'_>,
        out: &mut Sealed,
        on_data: &mut dyn FnMut(&[u8]),
    ) -> Result<Pass, rustls::Error> {
        match self {
            Conn::Client(c) => run(&mut **c, incoming, op, out, on_data),
            Conn::Server(c) => run(&mut **c, incoming, op, out, on_data),
        }
    }
}

/// `process_tls_records` of either role.
trait Process {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Process for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Process for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// [`run_until`], and after a failure the alert rustls queued for the
/// peer (it comes out of the next calls, before the error repeats).
fn run<P: Process>(
    conn: &mut P,
    incoming: &mut [u8],
    op: &Op<'_>,
    out: &mut Sealed,
    on_data: &mut dyn FnMut(&[u8]),
) -> Result<Pass, rustls::Error> {
    let mut pass = Pass::default();
    let result = run_until(conn, incoming, op, out, on_data, &mut pass);
    if result.is_err() {
        // One more call gives the alert rustls queued (records come out
        // before input is looked at again; a second call would deframe
        // the same bad input and queue another). The same buffer as
        // always: rustls' handshake deframer keeps offsets into it.
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) =
            conn.process(&mut incoming[pass.consumed..]).state
        {
            let _ = out.seal_with(
                SMALL_RECORD,
                |buf| encode.encode(buf).map_err(encode_size),
                "an alert",
            );
        }
    }
    result.map(|()| pass)
}

fn run_until<P: Process>(
    conn: &mut P,
    incoming: &mut [u8],
    op: &Op<'_>,
    out: &mut Sealed,
    on_data: &mut dyn FnMut(&[u8]),
    pass: &mut Pass,
) -> Result<(), rustls::Error> {
    loop {
        let status = conn.process(&mut incoming[pass.consumed..]);
        let discard = status.discard;
        let state = match status.state {
            Ok(state) => state,
            Err(e) => {
                pass.consumed += discard;
                return Err(e);
            }
        };
        match state {
            ConnectionState::ReadTraffic(mut records) => {
                let mut extra = 0;
                while let Some(record) = records.next_record() {
                    let record = record?;
                    extra += record.discard;
                    on_data(record.payload);
                }
                pass.consumed += discard + extra;
                if matches!(op, Op::Read) {
                    return Ok(());
                }
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                out.seal_with(
                    SMALL_RECORD,
                    |buf| encode.encode(buf).map_err(encode_size),
                    "a handshake record",
                )?;
                pass.consumed += discard;
            }
            ConnectionState::TransmitTlsData(transmit) => {
                // The records wait in `out`, in order, for the caller to
                // write them before anything sealed later.
                transmit.done();
                pass.consumed += discard;
            }
            ConnectionState::BlockedHandshake => {
                pass.consumed += discard;
                return Ok(());
            }
            ConnectionState::PeerClosed => {
                pass.consumed += discard;
                pass.peer_closed = true;
            }
            ConnectionState::Closed => {
                pass.consumed += discard;
                pass.peer_closed = true;
                return Ok(());
            }
            ConnectionState::WriteTraffic(mut write) => {
                pass.consumed += discard;
                match op {
                    Op::Read => {}
                    Op::Write(segments) => {
                        for segment in segments.iter() {
                            for chunk in segment.chunks(RECORD) {
                                out.seal_with(
                                    chunk.len() + RECORD_OVERHEAD,
                                    |buf| write.encrypt(chunk, buf).map_err(encrypt_size),
                                    "application data",
                                )?;
                            }
                        }
                        pass.sealed = true;
                    }
                    Op::CloseNotify => {
                        out.seal_with(
                            SMALL_RECORD,
                            |buf| write.queue_close_notify(buf).map_err(encrypt_size),
                            "close_notify",
                        )?;
                        pass.sealed = true;
                    }
                }
                return Ok(());
            }
            ConnectionState::ReadEarlyData(_) => {
                return Err(rustls::Error::General(
                    "TLS early data (0-RTT) is not supported: leave the ServerConfig's \
                     max_early_data_size at 0"
                        .into(),
                ));
            }
            _ => {
                return Err(rustls::Error::General(
                    "unexpected TLS connection state".into(),
                ));
            }
        }
    }
}
