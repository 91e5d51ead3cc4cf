//! A small, independent HTTP/1.1 head parser and the RFC 6455 §4.2.1 /
//! §4.1 rules, written without `httparse` or wsproto's handshake code, to
//! re-check what wsproto accepts.

/// A request or response head split into its parts (bytes as received).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    /// Request: method, target, version. Response: version, status, reason.
    pub start: [&'a [u8]; 3],
    /// Header fields, name and value with surrounding blanks removed.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
}

/// Where the first `\r\n\r\n` ends, if any.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_blanks(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Which start line a head has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `method SP request-target SP HTTP-version` (RFC 9112 §3).
    Request,
    /// `HTTP-version SP status-code [SP reason-phrase]` (RFC 9112 §4).
    Response,
}

fn is_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

fn is_http_version(v: &[u8]) -> bool {
    matches!(v, [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit())
}

fn start_line(line: &[u8], kind: Kind) -> Option<[&[u8]; 3]> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let first = parts.next()?;
    let second = parts.next()?;
    let third = parts.next();
    let ok = match kind {
        Kind::Request => {
            !first.is_empty()
                && first.iter().all(|&b| is_tchar(b))
                && !second.is_empty()
                // RFC 9112 wants ASCII here; httparse (so wsproto) also
                // takes raw UTF-8, as many servers do: not judged here.
                && second.iter().all(|&b| is_vchar(b) || b >= 0x80)
                && std::str::from_utf8(second).is_ok()
                && third.is_some_and(is_http_version)
        }
        Kind::Response => {
            is_http_version(first)
                && second.len() == 3
                && second.iter().all(u8::is_ascii_digit)
                && third
                    .unwrap_or_default()
                    .iter()
                    .all(|&b| b == b'\t' || b == b' ' || is_vchar(b) || b >= 0x80)
        }
    };
    ok.then(|| [first, second, third.unwrap_or_default()])
}

/// Parse a head ending in `\r\n\r\n` (RFC 9112 §2–§5): the start line, then
/// `name: value` fields up to the first empty line. Lines end in CRLF (a
/// bare LF is accepted too, as RFC 9112 §2.2 allows); empty lines before
/// the start line are skipped (§2.2 asks it for requests; httparse, so
/// wsproto, does it for responses too). `None` if malformed.
pub fn parse_head(head: &[u8], kind: Kind) -> Option<Head<'_>> {
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    // Split on LF and drop one CR per line, so a stray CR stays visible
    // (and is refused as a control character below).
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty());
    let start = start_line(lines.next()?, kind)?;
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        let value = trim_blanks(value);
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return None;
        }
        headers.push((name, value));
    }
    Some(Head { start, headers })
}

impl<'a> Head<'a> {
    /// All values of header `name` (case-insensitive), in order.
    pub fn values(&self, name: &str) -> Vec<&'a [u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
            .collect()
    }

    /// The first value of header `name`.
    pub fn first(&self, name: &str) -> Option<&'a [u8]> {
        self.values(name).first().copied()
    }
}

/// Whether a comma-separated list contains `token`, case-insensitively
/// (RFC 9110 §5.6.1; `Upgrade` and `Connection` are such lists).
pub fn list_has(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim_blanks(item).eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether `key` is base64 (RFC 4648 §4, padded, canonical) of exactly 16
/// bytes: 22 alphabet characters then `==`, the last character carrying
/// only 2 data bits (RFC 6455 §4.1 item 7).
pub fn is_valid_key(key: &[u8]) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let [chars @ .., b'=', b'='] = key else {
        return false;
    };
    chars.len() == 22
        && chars.iter().all(|c| ALPHABET.contains(c))
        && ALPHABET
            .iter()
            .position(|c| c == &chars[21])
            .is_some_and(|i| i & 0x0f == 0)
}

/// RFC 6455 §4.2.1 (with §4.1's request rules) on an independently parsed
/// head: `Ok(key)` if a server must accept the upgrade, `Err(reason)` if
/// it must not.
pub fn check_request(head: &Head<'_>) -> Result<String, &'static str> {
    let [method, _target, version] = head.start;
    if method != b"GET" {
        return Err("method is not GET");
    }
    if version != b"HTTP/1.1" {
        return Err("not HTTP/1.1");
    }
    match head.values("host").as_slice() {
        [h] if !h.is_empty() => {}
        _ => return Err("Host missing, empty or repeated"),
    }
    check_upgrade_fields(head)?;
    if head.first("sec-websocket-version") != Some(b"13") {
        return Err("version is not 13");
    }
    match head.values("sec-websocket-key").as_slice() {
        [k] if is_valid_key(k) => Ok(String::from_utf8_lossy(k).into_owned()),
        _ => Err("Sec-WebSocket-Key missing, repeated or not 16 bytes of base64"),
    }
}

/// `Upgrade` names websocket and `Connection` names upgrade (RFC 6455
/// §4.1, §4.2.1), either list possibly split over several fields (RFC 9110
/// §5.3): required of requests and responses alike.
fn check_upgrade_fields(head: &Head<'_>) -> Result<(), &'static str> {
    let names = |field, token| head.values(field).iter().any(|v| list_has(v, token));
    if !names("upgrade", "websocket") {
        return Err("Upgrade lacks websocket");
    }
    if !names("connection", "upgrade") {
        return Err("Connection lacks upgrade");
    }
    Ok(())
}

/// RFC 6455 §4.1 client-side checks of a server's answer when no
/// subprotocol was offered: `Ok(())` if the client must accept it.
/// `offered_extensions`: whether the request offered any extension; then
/// the answer may select permessage-deflate (RFC 7692 §5), whose
/// parameters are checked by wsproto's own tests, not here.
pub fn check_response(
    head: &Head<'_>,
    key: &str,
    offered_extensions: bool,
) -> Result<(), &'static str> {
    let [version, status, _reason] = head.start;
    // HTTP/1.1 is the last 1.x (RFC 9112). "HTTP/1.0 101" is accepted by
    // wsproto: odd (1xx came with HTTP/1.1, RFC 9110 §15.2) but RFC 6455
    // §4.1 only asks for the 101 status, so it is not judged here.
    if !matches!(version, b"HTTP/1.1" | b"HTTP/1.0") || status != b"101" {
        return Err("not 101");
    }
    check_upgrade_fields(head)?;
    if head.first("sec-websocket-accept") != Some(wsproto::accept_key(key).as_bytes()) {
        return Err("wrong Sec-WebSocket-Accept");
    }
    for ext in head.values("sec-websocket-extensions") {
        // Empty list elements are ignored (RFC 9110 §5.6.1).
        let names_deflate = ext
            .split(|&b| b == b',')
            .filter(|e| !trim_blanks(e).is_empty())
            .all(|e| {
                let name = e.split(|&b| b == b';').next().unwrap_or_default();
                trim_blanks(name).eq_ignore_ascii_case(b"permessage-deflate")
            });
        if !offered_extensions || !names_deflate {
            return Err("extension not offered");
        }
    }
    if head.first("sec-websocket-protocol").is_some() {
        return Err("subprotocol not offered");
    }
    Ok(())
}
