//! What `TlsStream` puts on the wire, and how it reads: the records a
//! vectored write becomes (a frame header shares its payload's first
//! record; a small slice after a large one waits for the next write), and
//! bulk reads (bytes already in the socket come out in as few reads as the
//! caller's buffers allow, across all of them). The peer is a plain rustls
//! `ClientConnection` over a socket whose raw bytes the test reads itself,
//! record by record.
#![cfg(feature = "tls")]

mod common;

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::pki::pki;
use wsproto::tls::{rustls, TlsStream};

const TIMEOUT: Duration = Duration::from_secs(20);
/// The largest plaintext of a TLS record (RFC 8446 §5.1).
const MAX_RECORD: usize = 16 * 1024;

/// A raw TLS client: rustls' own connection, fed by hand.
struct Peer {
    conn: rustls::ClientConnection,
    sock: TcpStream,
}

impl Peer {
    fn write_out(&mut self) {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock).unwrap();
        }
    }

    /// Encrypt and send `data` (a record's worth at a time: rustls
    /// buffers at most 64 KiB of its own).
    fn send(&mut self, data: &[u8]) {
        for chunk in data.chunks(MAX_RECORD) {
            self.conn.writer().write_all(chunk).unwrap();
            self.write_out();
        }
    }

    /// Read one whole TLS record off the socket and give it to rustls;
    /// returns the plaintext it carried (none for a handshake record or a
    /// session ticket).
    fn next_record(&mut self) -> Vec<u8> {
        let mut header = [0u8; 5];
        self.sock.read_exact(&mut header).unwrap();
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        let mut record = header.to_vec();
        record.resize(5 + len, 0);
        self.sock.read_exact(&mut record[5..]).unwrap();
        let mut input = &record[..];
        while !input.is_empty() {
            self.conn.read_tls(&mut input).unwrap();
        }
        let state = self.conn.process_new_packets().unwrap();
        let mut plain = vec![0; state.plaintext_bytes_to_read()];
        self.conn.reader().read_exact(&mut plain).unwrap();
        self.write_out();
        plain
    }

    fn handshake(&mut self) {
        self.write_out();
        while self.conn.is_handshaking() {
            self.next_record();
        }
    }

    /// The plaintext sizes of the records that carry `total` bytes.
    fn records_carrying(&mut self, total: usize) -> (Vec<usize>, Vec<u8>) {
        let (mut sizes, mut bytes) = (Vec::new(), Vec::new());
        while bytes.len() < total {
            let plain = self.next_record();
            if !plain.is_empty() {
                sizes.push(plain.len());
                bytes.extend_from_slice(&plain);
            }
        }
        (sizes, bytes)
    }
}

/// A wsproto TLS server (handshake done, on its own thread, given to
/// `serve`) and a raw rustls client connected to it.
fn connect(serve: impl FnOnce(TlsStream) + Send + 'static) -> (Peer, thread::JoinHandle<()>) {
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = pki.server_config();
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut tls = TlsStream::accept(sock, config).unwrap();
        tls.complete_handshake().unwrap();
        serve(tls);
    });
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let name = "localhost".try_into().unwrap();
    let conn = rustls::ClientConnection::new(pki.client_config(), name).unwrap();
    let mut peer = Peer { conn, sock };
    peer.handshake();
    (peer, server)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

#[test]
fn a_frame_header_shares_its_payloads_first_record() {
    let header = vec![0x82, 0x7f, 0, 0];
    let payload = pattern(64 * 1024, 7);
    let (h, p) = (header.clone(), payload.clone());
    let (mut peer, server) = connect(move |mut tls| {
        let taken = tls
            .write_vectored(&[IoSlice::new(&h), IoSlice::new(&p)])
            .unwrap();
        assert_eq!(
            taken,
            h.len() + p.len(),
            "one call takes header and payload"
        );
        tls.flush().unwrap();
    });
    let total = header.len() + payload.len();
    let (sizes, bytes) = peer.records_carrying(total);
    server.join().unwrap();
    assert_eq!(bytes, [header, payload].concat());
    assert!(
        sizes[0] > 4,
        "the header went out alone in a record: {sizes:?}"
    );
    assert!(sizes.iter().all(|&s| s <= MAX_RECORD), "{sizes:?}");
    // As few records as the plaintext needs (wsproto fills records a
    // little under the maximum, see `tls::engine`).
    assert_eq!(sizes.len(), total.div_ceil(MAX_RECORD - 64), "{sizes:?}");
}

#[test]
fn small_slices_are_gathered_and_one_after_a_large_slice_waits() {
    let (a, b) = (pattern(10, 1), pattern(20, 2));
    let large = pattern(20_000, 3);
    let tail = pattern(5, 4);
    let (a2, b2, large2, tail2) = (a.clone(), b.clone(), large.clone(), tail.clone());
    let (mut peer, server) = connect(move |mut tls| {
        let slices = [
            IoSlice::new(&a2),
            IoSlice::new(&b2),
            IoSlice::new(&large2),
            IoSlice::new(&tail2),
        ];
        let taken = tls.write_vectored(&slices).unwrap();
        assert_eq!(taken, a2.len() + b2.len() + large2.len());
        assert_eq!(tls.write(&tail2).unwrap(), tail2.len());
        tls.flush().unwrap();
    });
    let first = a.len() + b.len() + large.len();
    let (sizes, bytes) = peer.records_carrying(first);
    assert_eq!(bytes, [a, b, large].concat());
    assert_eq!(
        sizes.len(),
        2,
        "two small slices and a large one: {sizes:?}"
    );
    let (_, rest) = peer.records_carrying(tail.len());
    assert_eq!(rest, tail);
    server.join().unwrap();
}

#[test]
fn buffered_bytes_come_out_in_few_reads_across_all_buffers() {
    const TOTAL: usize = 96 * 1024;
    let data = pattern(TOTAL, 9);
    let (written_tx, written_rx) = mpsc::channel::<()>();
    let (result_tx, result_rx) = mpsc::channel();
    let (mut peer, server) = connect(move |mut tls| {
        written_rx.recv().unwrap();
        // Everything is in the socket now: the first read is small (the
        // buffer a mostly idle connection keeps), the next ones bulk.
        let mut got = Vec::new();
        let mut reads = Vec::new();
        let (mut small, mut big) = ([0u8; 10], vec![0u8; 128 * 1024]);
        while got.len() < TOTAL {
            let n = tls
                .read_vectored(&mut [IoSliceMut::new(&mut small), IoSliceMut::new(&mut big)])
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&small[..n.min(10)]);
            got.extend_from_slice(&big[..n.saturating_sub(10)]);
            reads.push(n);
        }
        result_tx.send((got, reads)).unwrap();
    });
    peer.send(&data);
    written_tx.send(()).unwrap();
    let (got, reads) = result_rx.recv().unwrap();
    server.join().unwrap();
    assert_eq!(got, data);
    assert!(
        reads.len() <= 3,
        "96 KiB in the socket took {} reads: {reads:?}",
        reads.len()
    );
    assert!(
        reads.iter().any(|&n| n > MAX_RECORD),
        "no read crossed a record: {reads:?}"
    );
}

/// The reads a `TlsStream` made for each of a series of payloads the peer
/// wrote (and the socket held whole) before the server began reading it.
fn reads_per_payload(payloads: &[Vec<u8>]) -> Vec<Vec<usize>> {
    let (len_tx, len_rx) = mpsc::channel::<usize>();
    let (result_tx, result_rx) = mpsc::channel();
    let (mut peer, server) = connect(move |mut tls| {
        let mut buf = vec![0u8; 128 * 1024];
        for len in len_rx {
            let (mut got, mut reads) = (Vec::new(), Vec::new());
            while got.len() < len {
                let n = tls.read(&mut buf[..len - got.len()]).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
                reads.push(n);
            }
            result_tx.send((got, reads)).unwrap();
        }
    });
    let mut all = Vec::new();
    for payload in payloads {
        peer.send(payload);
        len_tx.send(payload.len()).unwrap();
        let (got, reads) = result_rx.recv().unwrap();
        assert_eq!(&got, payload);
        all.push(reads);
    }
    drop(len_tx);
    server.join().unwrap();
    all
}

#[test]
fn the_bulk_read_buffer_outlasts_a_pause_and_goes_after_small_reads() {
    let bulk = pattern(96 * 1024, 5);
    let small = pattern(100, 6);
    let mut payloads = vec![bulk.clone(), small.clone(), bulk.clone()];
    payloads.extend(std::iter::repeat_n(small, 16));
    payloads.push(bulk);
    let reads = reads_per_payload(&payloads);
    let first_read = |i: usize| reads[i][0];
    // A fresh connection reads a record's worth at a time; the bulk that
    // filled it switched to the bulk buffer.
    assert_eq!(first_read(0), MAX_RECORD, "{reads:?}");
    assert!(reads[0].len() <= 3, "{reads:?}");
    // One small message between two bulk ones keeps the bulk buffer.
    assert!(first_read(2) > MAX_RECORD, "{reads:?}");
    // Sixteen in a row give it back: a record's worth at a time again.
    let last = reads.len() - 1;
    assert_eq!(first_read(last), MAX_RECORD, "{reads:?}");
}
