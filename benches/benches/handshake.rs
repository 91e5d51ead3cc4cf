//! The server side of the opening handshake (RFC 6455 §4.2) on a typical
//! browser request (Chrome's headers, see `CHROME_REQUEST`), over an
//! in-memory stream: reading, parsing and checking the request (which
//! computes the accept key) alone, then the whole `accept` (the same plus
//! extension negotiation, the 101 answer and the connection's set-up),
//! with and without the permessage-deflate offer.

use std::hint::black_box;

use benches::{chrome_request_without_extensions, MemStream, CHROME_REQUEST};
use criterion::Criterion;
use wsproto::read_request;
use wsproto::Config;

fn handshake(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("handshake");
    group.bench_function("read_request+check_upgrade", |b| {
        b.iter(|| {
            let mut stream = MemStream::new(black_box(CHROME_REQUEST));
            let (request, _leftover) = read_request(&mut stream, &config).expect("request");
            request.check_upgrade().expect("upgrade")
        });
    });
    let plain = chrome_request_without_extensions();
    group.bench_function("accept_without_extensions", |b| {
        b.iter(|| wsproto::accept(MemStream::new(black_box(&plain))).expect("accept"));
    });
    group.bench_function("accept", |b| {
        b.iter(|| wsproto::accept(MemStream::new(black_box(CHROME_REQUEST))).expect("accept"));
    });
    group.finish();
}

benches::bench_main!(handshake);
