//! The outgoing byte queue: whole frames, written out resumably.
//!
//! Every frame the connection accepts is either already on the wire or
//! held here, so a write that stops part-way (`WouldBlock`, a write
//! time-out) loses nothing: the next call continues at the exact byte the
//! stream stopped at. A frame is only ever started on the wire when all
//! frames before it are complete, so frames never interleave (RFC 6455
//! §5.4: "the fragments of one message MUST NOT be interleaved" holds a
//! fortiori for whole frames).
//!
//! Large unmasked payloads are written straight from the caller's memory
//! when nothing is queued ([`Outbox::write_direct`]); only the part the
//! stream did not take is copied, so the zero-copy path stays zero-copy
//! while the socket keeps up.

use std::io::{self, IoSlice, Write};

/// Capacity kept after a burst: a queue that grew past this is shrunk back
/// once empty, so one large message does not pin its memory.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Whether an I/O error leaves the stream usable: the call may be repeated
/// later and continues where it stopped. `Interrupted` never reaches this
/// check (it is retried at once).
pub(crate) fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Bytes of whole frames accepted for sending and not yet written.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    buf: Vec<u8>,
    /// `buf[..sent]` is on the wire already.
    sent: usize,
    /// A write failed with a non-retryable error: the stream may end in
    /// the middle of a frame, so nothing more may be written to it.
    broken: bool,
}

impl Outbox {
    /// Unsent bytes.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Whether a non-retryable write error broke the stream.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Mark the stream broken (a read on the same stream failed for good).
    pub(crate) fn set_broken(&mut self) {
        self.broken = true;
    }

    /// The queue's storage, to append one whole frame to. Appending must
    /// finish the frame before the next write: callers build each frame in
    /// full (header and payload) inside one call.
    pub(crate) fn tail(&mut self) -> &mut Vec<u8> {
        if self.sent > 0 && self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        }
        &mut self.buf
    }

    /// Write the queue out until it is empty or the stream stops taking
    /// bytes. A retryable error (`WouldBlock`, `TimedOut`) leaves the rest
    /// queued; any other error marks the outbox broken.
    pub(crate) fn drain<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<()> {
        while self.sent < self.buf.len() {
            match w.write(&self.buf[self.sent..]) {
                Ok(0) => return Err(self.fail(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_retryable(&e) => return Err(e),
                Err(e) => return Err(self.fail(e)),
            }
        }
        self.buf.clear();
        self.sent = 0;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY / 4);
        }
        Ok(())
    }

    /// Write one frame, `head` then `body`, straight from the caller's
    /// memory. Only called with nothing queued. Whatever the stream does
    /// not take before a retryable error is copied into the queue, so the
    /// frame stays whole and the caller may reuse `body` at once.
    pub(crate) fn write_direct<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        head: &[u8],
        body: &[u8],
    ) -> io::Result<()> {
        debug_assert_eq!(self.pending(), 0);
        let total = head.len() + body.len();
        let mut written = 0;
        while written < total {
            let result = if written < head.len() {
                w.write_vectored(&[IoSlice::new(&head[written..]), IoSlice::new(body)])
            } else {
                w.write(&body[written - head.len()..])
            };
            match result {
                Ok(0) => return Err(self.fail(io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_retryable(&e) => {
                    let tail = self.tail();
                    if written < head.len() {
                        tail.extend_from_slice(&head[written..]);
                        tail.extend_from_slice(body);
                    } else {
                        tail.extend_from_slice(&body[written - head.len()..]);
                    }
                    return Err(e);
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.broken = true;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `chunk` bytes per call and refuses every other call.
    struct Choppy {
        wire: Vec<u8>,
        chunk: usize,
        calls: usize,
        kind: io::ErrorKind,
    }

    impl Write for Choppy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(self.kind.into());
            }
            let n = buf.len().min(self.chunk);
            self.wire.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn choppy(kind: io::ErrorKind) -> Choppy {
        Choppy {
            wire: Vec::new(),
            chunk: 7,
            calls: 0,
            kind,
        }
    }

    #[test]
    fn drain_resumes_after_would_block_and_time_out() {
        for kind in [io::ErrorKind::WouldBlock, io::ErrorKind::TimedOut] {
            let mut out = Outbox::default();
            let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
            out.tail().extend_from_slice(&data);
            let mut w = choppy(kind);
            let mut errors = 0;
            while let Err(e) = out.drain(&mut w) {
                assert_eq!(e.kind(), kind);
                errors += 1;
            }
            assert!(errors > 100);
            assert_eq!(w.wire, data);
            assert_eq!(out.pending(), 0);
        }
    }

    #[test]
    fn direct_write_keeps_the_unsent_rest() {
        let mut out = Outbox::default();
        let body = vec![0xabu8; 100];
        let mut w = choppy(io::ErrorKind::WouldBlock);
        let e = out.write_direct(&mut w, b"HEAD", &body).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // The default `write_vectored` writes the first buffer only.
        assert_eq!(out.pending(), 100);
        while out.drain(&mut w).is_err() {}
        let mut expected = b"HEAD".to_vec();
        expected.extend_from_slice(&body);
        assert_eq!(w.wire, expected);
    }

    #[test]
    fn other_errors_break_the_outbox() {
        let mut out = Outbox::default();
        out.tail().extend_from_slice(b"0123456789abcdef");
        let mut w = choppy(io::ErrorKind::BrokenPipe);
        assert_eq!(
            out.drain(&mut w).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert!(out.is_broken());
    }
}
