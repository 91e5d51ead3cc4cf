//! The reading side of a [`TlsStream`](super::TlsStream): socket reads
//! (without any lock), sized to the traffic, and decrypted records
//! delivered straight into the caller's buffers.

use std::io::{self, IoSliceMut, Read};

use super::engine::Op;
use super::{copy, lock, Shared};

/// The sizes the socket is read with: a fresh connection's (a page: the
/// handshake and small messages fit), a whole record and some, and while
/// a bulk transfer goes on four full records and some. A read that fills
/// the buffer moves up a size (see [`ReadSide::fill`]).
const READ_SIZES: [usize; 3] = [4096, 16 * 1024 + 512, 64 * 1024 + 2048];
/// A read under this is small.
const SMALL_READ: usize = 4096;
/// Small reads in a row after which a larger buffer goes back to the
/// first size (a gap between two bulk messages is not the end of bulk
/// traffic: no reallocation back and forth).
const SMALL_READS_TO_SHRINK: u32 = 16;

/// The reading side's own state: the buffer it reads the socket into
/// (without any lock), and plaintext a caller's buffer had no room for.
#[derive(Debug, Default)]
pub(super) struct ReadSide {
    scratch: Vec<u8>,
    /// Reads in a row that took under [`SMALL_READ`] bytes.
    small_reads: u32,
    plain: Vec<u8>,
    plain_pos: usize,
}

/// The caller's buffers of one read, filled in order.
struct Sink<'s, 'b> {
    bufs: &'s mut [IoSliceMut<'b>],
    /// The buffer being filled, and the bytes already in it.
    buf: usize,
    pos: usize,
    /// Bytes delivered in all.
    n: usize,
}

impl<'s, 'b> Sink<'s, 'b> {
    fn new(bufs: &'s mut [IoSliceMut<'b>]) -> Self {
        Sink {
            bufs,
            buf: 0,
            pos: 0,
            n: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.bufs[self.buf..].iter().map(|b| b.len()).sum::<usize>() == self.pos
    }

    /// Copy as much of `data` as fits; give back the rest.
    fn put<'d>(&mut self, mut data: &'d [u8]) -> &'d [u8] {
        while !data.is_empty() && self.buf < self.bufs.len() {
            let dst = &mut self.bufs[self.buf][self.pos..];
            let k = dst.len().min(data.len());
            copy::copy(&mut dst[..k], &data[..k]);
            data = &data[k..];
            self.pos += k;
            self.n += k;
            if self.pos == self.bufs[self.buf].len() {
                self.buf += 1;
                self.pos = 0;
            }
        }
        data
    }
}

impl ReadSide {
    /// Read decrypted bytes into `bufs`, reading the socket (without any
    /// lock) when nothing is buffered.
    pub(super) fn read(
        &mut self,
        shared: &Shared,
        bufs: &mut [IoSliceMut<'_>],
    ) -> io::Result<usize> {
        shared.check()?;
        let mut sink = Sink::new(bufs);
        if sink.is_full() {
            return Ok(0);
        }
        loop {
            if self.plain_pos < self.plain.len() {
                let rest = sink.put(&self.plain[self.plain_pos..]);
                self.plain_pos = self.plain.len() - rest.len();
                if rest.is_empty() {
                    self.plain.clear();
                    self.plain_pos = 0;
                }
                return Ok(sink.n);
            }
            let (peer_closed, eof, produced) = {
                let mut tls = lock(&shared.tls);
                if !tls.backlog.is_empty() {
                    std::mem::swap(&mut self.plain, &mut tls.backlog);
                    continue;
                }
                // Every complete record while the caller has room: what
                // is left for the writer's pass would cost a copy more
                // (through `backlog`).
                let plain = &mut self.plain;
                let result = loop {
                    let before = sink.n;
                    let mut deliver = |data: &[u8]| {
                        let rest = sink.put(data);
                        copy::extend(plain, rest);
                    };
                    match tls.pass(&Op::Read, None, &mut deliver) {
                        // (While the caller has room nothing goes to `plain`.)
                        Ok(_) if sink.n > before && !sink.is_full() => {}
                        other => break other,
                    }
                };
                let produced = !tls.sealed.is_empty();
                if let Err(e) = result {
                    drop(tls);
                    // The alert the failure produced.
                    shared.hand_off();
                    return Err(shared.fail(e));
                }
                (tls.peer_closed, tls.eof, produced)
            };
            if produced {
                shared.hand_off();
            }
            if sink.n > 0 {
                return Ok(sink.n);
            }
            if self.plain_pos < self.plain.len() {
                continue;
            }
            if peer_closed {
                return Ok(0);
            }
            if eof {
                // TCP closed without close_notify: the end of the stream
                // (see the module docs).
                return if shared.is_handshaking() {
                    Err(handshake_eof())
                } else {
                    Ok(0)
                };
            }
            self.fill(shared)?;
        }
    }

    /// Read from the socket (no lock held), then queue what came for
    /// rustls. A read that fills the buffer means more is waiting: the
    /// next reads take the next of [`READ_SIZES`] (a 64 KiB message in
    /// the socket is one system call, not four); a run of small reads
    /// goes back to the first (most connections are mostly idle, and an
    /// idle one keeps a page).
    pub(super) fn fill(&mut self, shared: &Shared) -> io::Result<()> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; READ_SIZES[0]];
        }
        let n = loop {
            match (&shared.sock).read(&mut self.scratch) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        {
            let mut tls = lock(&shared.tls);
            if n == 0 {
                tls.eof = true;
            } else {
                tls.push_input(&self.scratch[..n]);
            }
        }
        self.small_reads = if n < SMALL_READ {
            self.small_reads + 1
        } else {
            0
        };
        let size = self.scratch.len();
        if n == size {
            if let Some(&next) = READ_SIZES.iter().find(|&&s| s > size) {
                self.scratch = vec![0; next];
            }
        } else if self.small_reads >= SMALL_READS_TO_SHRINK && size > READ_SIZES[0] {
            self.scratch = vec![0; READ_SIZES[0]];
        }
        Ok(())
    }

    /// One step of the handshake: process what is buffered; if that
    /// needs more, read the socket.
    pub(super) fn pump(&mut self, shared: &Shared) -> io::Result<()> {
        shared.check()?;
        let (progress, eof) = {
            let mut tls = lock(&shared.tls);
            let before = (tls.start, tls.incoming.len());
            if let Err(e) = tls.pass_to_backlog(&Op::Read, None) {
                drop(tls);
                shared.hand_off();
                return Err(shared.fail(e));
            }
            ((tls.start, tls.incoming.len()) != before, tls.eof)
        };
        // Handshake messages the input produced.
        shared.hand_off();
        if progress || !shared.is_handshaking() {
            return Ok(());
        }
        if eof {
            return Err(handshake_eof());
        }
        self.fill(shared)
    }
}

fn handshake_eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection during the TLS handshake",
    )
}
