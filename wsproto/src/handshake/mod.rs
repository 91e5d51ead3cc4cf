//! The opening handshake (RFC 6455 §4): an HTTP/1.1 Upgrade request and a
//! `101 Switching Protocols` answer.
//!
//! `httparse` tokenizes the HTTP head; every WebSocket rule is checked here.

pub mod client;
mod head;
pub mod server;

use base64::Engine as _;
use sha1::{Digest, Sha1};

pub use head::Response;

/// The GUID appended to the client's key (RFC 6455 §1.3).
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Compute `Sec-WebSocket-Accept` from `Sec-WebSocket-Key` (RFC 6455 §4.2.2):
/// base64(SHA-1(key ++ GUID)).
///
/// ```
/// assert_eq!(
///     wsproto::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes (RFC 6455 §4.1).
pub fn generate_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

/// Whether a comma-separated header value contains `token`, compared
/// case-insensitively (RFC 7230 §7 lists, as used by `Connection` and `Upgrade`).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Check that the list-valued header `name` names `token` among `fields`
/// (a head's name/value pairs): a list may be split over several fields
/// (RFC 7230 §3.2.2). Used for `Upgrade` and `Connection` on both sides.
pub(crate) fn require_token<V: AsRef<[u8]>>(
    fields: &[(String, V)],
    name: &'static str,
    token: &str,
) -> crate::Result<()> {
    let mut values = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
        .peekable();
    let first = *values.peek().ok_or(crate::Error::MissingHeader(name))?;
    if values.any(|v| has_token(v, token)) {
        Ok(())
    } else {
        Err(crate::Error::InvalidHeader {
            name,
            value: String::from_utf8_lossy(first).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_accept_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn generated_keys_decode_to_16_bytes_and_differ() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .unwrap();
        assert_eq!(raw.len(), 16);
    }

    #[test]
    fn token_lists() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"UPGRADE", "upgrade"));
        assert!(!has_token(b"upgraded", "upgrade"));
        assert!(!has_token(b"", "upgrade"));
        assert!(has_token(b"websocket", "websocket"));
    }
}
