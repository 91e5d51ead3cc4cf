//! A TCP stream for one client thread that must never block on a write
//! while the server is blocked writing back to it.
//!
//! With W large messages in flight, a client that blocks in `write` stops
//! reading; once the socket buffers of both directions are full the server
//! blocks in its own `write`, and both wait forever. `Duplex` queues what the
//! kernel does not take at once (`send` with `MSG_DONTWAIT`) and, when a
//! read would wait, `poll`s for readability *and* writability, sending the
//! queue as room appears. The socket itself stays blocking, so a read with
//! nothing queued is one plain `read` system call.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::stream::Link;

/// A blocking socket whose writes never block.
#[derive(Debug)]
pub struct Duplex {
    stream: TcpStream,
    fd: RawFd,
    /// Bytes accepted by `write` and not yet taken by the kernel:
    /// `queue[sent..]`.
    queue: Vec<u8>,
    sent: usize,
    /// How long one `poll` waits before reporting `WouldBlock`, so the
    /// caller gets to check its deadlines.
    poll_timeout: Duration,
    /// Bytes the kernel took from us / gave us so far: what crossed the
    /// socket (handshake, frame headers, masks, payloads as sent, so
    /// compressed when permessage-deflate is on).
    wire_sent: u64,
    wire_received: u64,
}

impl Duplex {
    /// Wrap a connected stream. Reads time out (`WouldBlock`) after `timeout`
    /// without data, so no caller waits forever.
    pub fn new(stream: TcpStream, timeout: Duration) -> io::Result<Duplex> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        let fd = stream.as_raw_fd();
        Ok(Duplex {
            stream,
            fd,
            queue: Vec::new(),
            sent: 0,
            poll_timeout: timeout,
            wire_sent: 0,
            wire_received: 0,
        })
    }

    /// Bytes written and not yet handed to the kernel.
    pub fn pending(&self) -> usize {
        self.queue.len() - self.sent
    }

    /// Bytes sent to and received from the kernel since the connection
    /// opened.
    pub fn wire_bytes(&self) -> (u64, u64) {
        (self.wire_sent, self.wire_received)
    }

    /// `send(2)` without blocking; `Ok(0)` when the socket buffer is full.
    fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is a valid, initialised slice for the duration of
            // the call, and `fd` is the open socket owned by `self.stream`.
            #[allow(unsafe_code)]
            let n = unsafe {
                libc::send(
                    self.fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(0),
                io::ErrorKind::Interrupted => {}
                _ => return Err(e),
            }
        }
    }

    /// Hand as much of the queue to the kernel as it takes now.
    fn drain(&mut self) -> io::Result<()> {
        while self.pending() > 0 {
            let n = self.send_now(&self.queue[self.sent..])?;
            if n == 0 {
                break;
            }
            self.sent += n;
            self.wire_sent += n as u64;
        }
        if self.sent == self.queue.len() {
            self.queue.clear();
            self.sent = 0;
        } else if self.sent >= self.queue.len() / 2 {
            self.queue.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Wait until the socket is readable, sending the queue meanwhile.
    /// `Err(WouldBlock)` after `poll_timeout` without either event.
    fn wait_readable(&mut self) -> io::Result<()> {
        loop {
            self.drain()?;
            if self.pending() == 0 {
                return Ok(());
            }
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN | libc::POLLOUT,
                revents: 0,
            };
            let ms = self.poll_timeout.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid `pollfd` on the stack, count 1.
            #[allow(unsafe_code)]
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                return Ok(());
            }
        }
    }
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending() > 0 {
            self.wait_readable()?;
        }
        let n = self.stream.read(buf)?;
        self.wire_received += n as u64;
        Ok(n)
    }

    /// One `readv`, like the socket's: wsproto reads the rest of a large
    /// payload and the next frame's header together (the default
    /// `read_vectored` would fill only the first buffer).
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        if self.pending() > 0 {
            self.wait_readable()?;
        }
        let n = self.stream.read_vectored(bufs)?;
        self.wire_received += n as u64;
        Ok(n)
    }
}

impl Write for Duplex {
    /// Never blocks: what the kernel does not take now is queued.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut taken = 0;
        if self.pending() == 0 {
            taken = self.send_now(buf)?;
            self.wire_sent += taken as u64;
        }
        self.queue.extend_from_slice(&buf[taken..]);
        Ok(buf.len())
    }

    /// Sends what the kernel takes now; the rest goes out while reading.
    fn flush(&mut self) -> io::Result<()> {
        self.drain()
    }
}

/// The client's stream of the load: a [`Duplex`], or (for `wss://` URLs)
/// rustls' own `StreamOwned` over one. Wire byte counts are then TLS
/// bytes.
pub type Wire = Link<Duplex>;

impl Wire {
    /// See [`Duplex::pending`].
    pub fn pending(&self) -> usize {
        self.inner().pending()
    }

    /// See [`Duplex::wire_bytes`].
    pub fn wire_bytes(&self) -> (u64, u64) {
        self.inner().wire_bytes()
    }
}
