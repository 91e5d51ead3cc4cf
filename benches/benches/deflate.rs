//! What permessage-deflate costs a sender per message, by compression
//! level: a server-role `WebSocket` (context takeover, 15-bit windows, as
//! negotiated by default) writes 1 KiB JSON-like text messages to an
//! in-memory sink. Also prints, once per level, the bytes each message
//! takes on the wire, so speed and size can be weighed together.

use std::hint::black_box;

use benches::MemStream;
use criterion::{Criterion, Throughput};
use wsproto::{Config, MessageRef, Role, WebSocket};
use wsproto::{DeflateConfig, DeflateParams};

const MESSAGE: usize = 1024;
const DOCS: usize = 256;

/// A chat-history-like JSON document of exactly `MESSAGE` bytes; `seq`
/// varies names, ids, times and numbers so messages are alike but not equal.
fn doc(seq: usize) -> String {
    const USERS: [&str; 6] = ["ann", "bob", "张三", "li", "maria", "olu"];
    let mut s = format!("{{\"seq\":{seq:020},\"channel\":\"general\",\"messages\":[");
    let mut i = 0;
    while s.len() < MESSAGE - 200 {
        let user = USERS[(seq + i) % USERS.len()];
        s.push_str(&format!(
            "{{\"id\":{},\"user\":{{\"name\":\"{user}\",\"display\":\"{user} the user\"}},\
             \"ts\":\"2026-11-24T18:{:02}:{:02}Z\",\"text\":\"message {} from {user}\",\
             \"likes\":{}}},",
            seq * 7 + i,
            i % 60,
            (seq + i) % 60,
            seq + i,
            (seq * 31 + i) % 97
        ));
        i += 1;
    }
    s.push_str("{}]}");
    while s.len() < MESSAGE {
        s.push(' ');
    }
    s
}

fn sender(level: u32) -> WebSocket<MemStream<'static>> {
    let config = Config {
        deflate: None,
        ..Config::default()
    };
    let mut ws = WebSocket::from_raw_socket(MemStream::new(&[]), Role::Server, &config);
    let params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let deflate = DeflateConfig {
        compression_level: level,
        ..DeflateConfig::default()
    };
    ws.enable_deflate(params, &deflate);
    ws
}

fn send_all(ws: &mut WebSocket<MemStream<'static>>, docs: &[String]) {
    for d in docs {
        ws.write_ref(MessageRef::Text(black_box(d))).expect("write");
    }
    ws.flush().expect("flush");
}

fn deflate(c: &mut Criterion) {
    let docs: Vec<String> = (0..DOCS).map(doc).collect();
    assert!(docs.iter().all(|d| d.len() == MESSAGE));
    let mut group = c.benchmark_group("deflate_send_1KiB_json");
    group.throughput(Throughput::Bytes((DOCS * MESSAGE) as u64));
    for level in [0, 1, 3, 6, 9] {
        // Bytes per message on the wire, in steady state (context warm).
        let mut ws = sender(level);
        send_all(&mut ws, &docs);
        let before = ws.get_ref().written;
        send_all(&mut ws, &docs);
        let per_message = (ws.get_ref().written - before) as f64 / DOCS as f64;
        eprintln!("deflate level {level}: {per_message:.0} wire bytes per {MESSAGE} B message");
        group.bench_function(format!("level_{level}"), |b| {
            b.iter(|| send_all(&mut ws, &docs));
        });
    }
    group.finish();
}

benches::bench_main!(deflate);
