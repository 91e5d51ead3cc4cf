//! The messages the load sends, and how an echo is checked against them.
//!
//! Message `seq` must be cheap to produce (the client is the measuring
//! instrument) and carry `seq`, so that a lost, duplicated, reordered or
//! altered echo cannot go unnoticed:
//!
//! - `binary`: a fixed pseudo-random pattern with the sequence number
//!   (8 bytes, little endian) stamped over it at the start of every
//!   [`STAMP_EVERY`] bytes. A connection keeps its message buffer and
//!   [`Payload::refill`] rewrites only the stamps, so the generator does not
//!   spend a copy of every message making it; a stale or mixed-up buffer on
//!   the server's side still shows, as an old stamp within a kibibyte of any
//!   byte it touches. Deflate finds the pattern in the previous messages
//!   (RFC 7692 §7.1.1 context takeover): not a compression benchmark.
//! - `json`: a text message that looks like a chat API's JSON document
//!   (a batch of chat messages: ids, user names, timestamps, numbers and
//!   free text, with the same field names repeated), to measure
//!   permessage-deflate (RFC 7692) on the data it is meant for. A pool of
//!   documents is generated once; message `seq` is a copy of one of them,
//!   chosen by a hash of `seq`, with `seq` written as 20 decimal digits into
//!   its fixed-width `"seq"` field. Consecutive messages thus differ like a
//!   real stream does (same structure and vocabulary, different content),
//!   and the compressor cannot simply point back at the previous message.

/// Which kind of messages to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Binary messages of pseudo-random bytes.
    Binary,
    /// Text messages holding a realistic JSON document.
    Json,
}

/// A binary message carries its sequence number at every multiple of this
/// many bytes.
pub const STAMP_EVERY: usize = 1024;

/// Digits of the `"seq"` field: enough for any `u64`.
const SEQ_DIGITS: usize = 20;

/// Documents in the JSON pool: far more than a 32 KiB deflate window holds
/// at 1 KiB each, so most messages share structure, not content, with the
/// window.
const POOL: usize = 256;

/// The pool stays below this many bytes (fewer documents for big sizes).
const POOL_BYTES: usize = 16 << 20;

/// The messages of one run; shared (read-only) by every connection thread.
#[derive(Debug)]
pub struct Payload {
    size: usize,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// `size` bytes of pseudo-random data; message `seq` is this pattern
    /// with `seq` stamped at every multiple of [`STAMP_EVERY`].
    Binary { pattern: Vec<u8> },
    /// Documents of exactly `size` bytes, each with its `"seq"` digits at
    /// offset [`SEQ_AT`] (the same in all of them: the header comes first).
    Json { docs: Vec<Vec<u8>> },
}

impl Payload {
    /// Messages of `kind`, each exactly `size` bytes.
    pub fn new(kind: Kind, size: usize) -> Result<Payload, String> {
        let body = match kind {
            Kind::Binary => Body::Binary {
                pattern: (0..size)
                    .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8)
                    .collect(),
            },
            Kind::Json => {
                let count = (POOL_BYTES / size.max(1)).clamp(1, POOL);
                let docs = (0..count)
                    .map(|i| json_document(i as u64, size))
                    .collect::<Result<Vec<_>, _>>()?;
                Body::Json { docs }
            }
        };
        Ok(Payload { size, body })
    }

    /// The size of every message, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the messages are sent as text (so must be valid UTF-8).
    pub fn is_text(&self) -> bool {
        matches!(self.body, Body::Json { .. })
    }

    /// Write message `seq` into `out` (which has `size` bytes).
    pub fn fill(&self, seq: u64, out: &mut [u8]) {
        match &self.body {
            Body::Binary { pattern } => {
                out.copy_from_slice(pattern);
                stamp(seq, out);
            }
            Body::Json { docs } => {
                out.copy_from_slice(pick(docs, seq));
                out[SEQ_AT..SEQ_AT + SEQ_DIGITS].copy_from_slice(&seq_digits(seq));
            }
        }
    }

    /// Turn `out`, which holds a message written by [`Payload::fill`] or
    /// `refill`, into message `seq`, writing only what differs between
    /// messages (the stamps of a binary message).
    pub fn refill(&self, seq: u64, out: &mut [u8]) {
        match &self.body {
            Body::Binary { .. } => stamp(seq, out),
            Body::Json { .. } => self.fill(seq, out),
        }
    }

    /// Number of bytes of `got` that differ from message `seq`
    /// (a length difference counts as that many bytes); 0 when it matches.
    pub fn mismatched(&self, seq: u64, got: &[u8]) -> u64 {
        let size = self.size;
        let matches = got.len() == size
            && match &self.body {
                Body::Binary { pattern } => {
                    let stamp = seq.to_le_bytes();
                    got.chunks(STAMP_EVERY)
                        .zip(pattern.chunks(STAMP_EVERY))
                        .all(|(g, p)| {
                            let head = g.len().min(stamp.len());
                            g[..head] == stamp[..head] && g[head..] == p[head..]
                        })
                }
                Body::Json { docs } => {
                    let (doc, end) = (pick(docs, seq), SEQ_AT + SEQ_DIGITS);
                    got[..SEQ_AT] == doc[..SEQ_AT]
                        && got[SEQ_AT..end] == seq_digits(seq)
                        && got[end..] == doc[end..]
                }
            };
        if matches {
            return 0;
        }
        // Rare: build the expected message to count the differences.
        let mut expected = vec![0; size];
        self.fill(seq, &mut expected);
        let differing = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
        (differing + got.len().abs_diff(size)) as u64
    }
}

/// Write `seq` (little endian, cut short at the end) at every multiple of
/// [`STAMP_EVERY`] in `out`.
fn stamp(seq: u64, out: &mut [u8]) {
    let bytes = seq.to_le_bytes();
    for chunk in out.chunks_mut(STAMP_EVERY) {
        let head = chunk.len().min(bytes.len());
        chunk[..head].copy_from_slice(&bytes[..head]);
    }
}

/// The pool document message `seq` is a copy of.
fn pick(docs: &[Vec<u8>], seq: u64) -> &[u8] {
    let i = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % docs.len();
    &docs[i]
}

/// `seq` as 20 decimal digits, zero-padded.
fn seq_digits(mut seq: u64) -> [u8; SEQ_DIGITS] {
    let mut d = [b'0'; SEQ_DIGITS];
    for slot in d.iter_mut().rev() {
        *slot = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
    d
}

/// splitmix64: a small, fast, seedable generator (the documents must be
/// the same in every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const USERS: [(&str, &str); 16] = [
    ("alice", "Alice Martin"),
    ("bob.k", "Bob Kowalski"),
    ("carol_w", "Carol Wu"),
    ("dmitri", "Dmitri Ivanov"),
    ("emma.s", "Emma Schmidt"),
    ("farid", "Farid Haddad"),
    ("grace.h", "Grace Hopper"),
    ("hiro", "Hiroshi Tanaka"),
    ("ines.r", "Ines Rodrigues"),
    ("jamal", "Jamal Okafor"),
    ("kim.l", "Kim Lindqvist"),
    ("lucia", "Lucia Romano"),
    ("mo_ali", "Mohammed Ali"),
    ("nora", "Nora Berg"),
    ("oscar.p", "Oscar Perez"),
    ("priya", "Priya Natarajan"),
];

const CHANNELS: [&str; 8] = [
    "general", "random", "dev", "ops", "design", "support", "release", "infra",
];

const WORDS: [&str; 64] = [
    "the",
    "deploy",
    "is",
    "done",
    "can",
    "you",
    "check",
    "logs",
    "for",
    "build",
    "failed",
    "again",
    "on",
    "main",
    "looks",
    "good",
    "to",
    "me",
    "thanks",
    "merged",
    "please",
    "review",
    "my",
    "PR",
    "when",
    "have",
    "a",
    "minute",
    "server",
    "restarted",
    "after",
    "update",
    "latency",
    "went",
    "down",
    "by",
    "half",
    "nice",
    "work",
    "team",
    "meeting",
    "moved",
    "tomorrow",
    "at",
    "ten",
    "I",
    "will",
    "be",
    "late",
    "today",
    "coffee",
    "anyone",
    "bug",
    "fixed",
    "in",
    "next",
    "release",
    "tests",
    "pass",
    "now",
    "CPU",
    "usage",
    "spiked",
    "lunch?",
];

/// Where the `"seq"` digits start: right after `{"seq":"`.
const SEQ_AT: usize = 8;

/// Pool document `index`: exactly `size` bytes of ASCII JSON, its `"seq"`
/// field (at [`SEQ_AT`]) zeroed. A batch of chat messages while they fit,
/// then a `"topic"` string that pads it to the exact size.
fn json_document(index: u64, size: usize) -> Result<Vec<u8>, String> {
    use std::fmt::Write;
    let mut rng = Rng(index.wrapping_mul(7919).wrapping_add(1));
    let base_time = 1_714_560_000 + rng.below(86_400 * 30);
    let mut doc = String::with_capacity(size);
    let _ = write!(
        doc,
        r#"{{"seq":"{}","type":"message.batch","channel":{{"id":"C{:08X}","name":"{}"}},"server_time":{},"messages":["#,
        "0".repeat(SEQ_DIGITS),
        rng.next() as u32,
        rng.pick(&CHANNELS),
        base_time,
    );
    debug_assert_eq!(&doc.as_bytes()[SEQ_AT - 1..SEQ_AT], b"\"");
    const TAIL_START: &str = r#"],"has_more":true,"topic":""#;
    const TAIL_END: &str = r#""}"#;
    let fixed = TAIL_START.len() + TAIL_END.len();
    if doc.len() + fixed > size {
        return Err(format!(
            "--payload json needs --size of at least {} bytes",
            doc.len() + fixed
        ));
    }
    let mut first = true;
    for n in 0.. {
        let (user, display) = USERS[rng.below(USERS.len() as u64) as usize];
        let t = base_time + n * 7 + rng.below(60);
        let mut item = String::new();
        let _ = write!(
            item,
            r#"{}{{"id":"{:016x}","user":{{"id":{},"name":"{}","display_name":"{}","bot":false}},"ts":"2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z","text":""#,
            if first { "" } else { "," },
            rng.next(),
            1000 + rng.below(9000),
            user,
            display,
            1 + (t / 86_400) % 28,
            (t / 3600) % 24,
            (t / 60) % 60,
            t % 60,
            rng.below(1000),
        );
        let words = 3 + rng.below(14);
        for w in 0..words {
            if w > 0 {
                item.push(' ');
            }
            item.push_str(rng.pick(&WORDS));
        }
        let _ = write!(
            item,
            r#"","reactions":{},"edited":{}}}"#,
            rng.below(4),
            rng.below(5) == 0
        );
        if doc.len() + item.len() + fixed > size {
            break;
        }
        doc.push_str(&item);
        first = false;
    }
    doc.push_str(TAIL_START);
    // Pad with words, the last one cut to fit.
    let room = size - doc.len() - TAIL_END.len();
    let mut topic = String::with_capacity(room + 16);
    while topic.len() < room {
        if !topic.is_empty() {
            topic.push(' ');
        }
        topic.push_str(rng.pick(&WORDS));
    }
    topic.truncate(room);
    doc.push_str(&topic);
    doc.push_str(TAIL_END);
    debug_assert_eq!(doc.len(), size);
    Ok(doc.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_messages_are_exact_size_ascii_json_with_the_seq() {
        for size in [200, 512, 1024, 4096] {
            let p = Payload::new(Kind::Json, size).unwrap();
            let mut msg = vec![0; size];
            for seq in [0, 1, 42, 12_345_678_901, u64::MAX] {
                p.fill(seq, &mut msg);
                let text = std::str::from_utf8(&msg).unwrap();
                assert!(text.is_ascii());
                assert!(
                    text.starts_with(&format!("{{\"seq\":\"{seq:020}\",")),
                    "{text}"
                );
                assert!(text.ends_with("\"}"), "{text}");
                assert_eq!(p.mismatched(seq, &msg), 0);
            }
        }
        let p = Payload::new(Kind::Json, 1024).unwrap();
        let mut msg = vec![0; 1024];
        p.fill(7, &mut msg);
        let text = std::str::from_utf8(&msg).unwrap();
        assert!(text.matches("\"display_name\":").count() >= 3, "{text}");
        // Balanced braces and brackets outside strings: well-formed nesting.
        let (mut depth, mut in_str) = (0i32, false);
        for c in text.chars() {
            match c {
                '"' => in_str = !in_str,
                '{' | '[' if !in_str => depth += 1,
                '}' | ']' if !in_str => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0);
        }
        assert_eq!((depth, in_str), (0, false));
        assert!(Payload::new(Kind::Json, 100).is_err());
    }

    #[test]
    fn altered_reordered_or_short_echoes_are_counted() {
        for kind in [Kind::Binary, Kind::Json] {
            let p = Payload::new(kind, 1024).unwrap();
            let mut msg = vec![0; 1024];
            p.fill(5, &mut msg);
            assert_eq!(p.mismatched(5, &msg), 0);
            // Another message in its place: its seq differs.
            assert!(p.mismatched(6, &msg) > 0);
            assert!(p.mismatched(5 + 256, &msg) > 0);
            let mut bad = msg.clone();
            bad[600] ^= 1;
            assert_eq!(p.mismatched(5, &bad), 1);
            assert_eq!(p.mismatched(5, &msg[..1000]), 24);
            // refill over an earlier message gives the same bytes as fill.
            let mut again = msg.clone();
            p.refill(1 << 40, &mut again);
            let mut fresh = vec![0; 1024];
            p.fill(1 << 40, &mut fresh);
            assert_eq!(again, fresh);
            assert_eq!(p.mismatched(1 << 40, &again), 0);
        }
    }

    #[test]
    fn a_stale_stretch_inside_a_binary_echo_is_caught() {
        let size = 64 * 1024;
        let p = Payload::new(Kind::Binary, size).unwrap();
        let (mut old, mut new) = (vec![0; size], vec![0; size]);
        p.fill(41, &mut old);
        p.fill(42, &mut new);
        // A server that handed back 1 KiB (any aligned or unaligned 1 KiB)
        // of the previous message's buffer is caught.
        for at in [0, 1, 3000, size - STAMP_EVERY] {
            let mut echo = new.clone();
            echo[at..at + STAMP_EVERY].copy_from_slice(&old[at..at + STAMP_EVERY]);
            assert!(p.mismatched(42, &echo) > 0, "stale bytes at {at}");
        }
        // Sizes that are not a multiple of the stamp spacing, and tiny ones.
        for size in [1, 7, 8, 9, 1025, 2047] {
            let p = Payload::new(Kind::Binary, size).unwrap();
            let mut msg = vec![0; size];
            p.fill(3, &mut msg);
            assert_eq!(p.mismatched(3, &msg), 0, "size {size}");
            assert!(p.mismatched(4, &msg) > 0, "size {size}");
        }
    }
}
