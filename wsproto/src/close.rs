//! Close codes and the body of a Close frame (RFC 6455 §5.5.1, §7.4).

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::{Error, Result};

/// A status code carried by a Close frame (RFC 6455 §7.4.1).
///
/// Named variants cover the codes RFC 6455 defines; everything else keeps its
/// number. [`CloseCode::is_sendable`] tells which may appear on the wire.
///
/// A code *is* its number: equality and hashing compare the `u16`
/// (RFC 6455 §7.4 defines codes by number only), so `Other(1000)`, which
/// the public variant lets anyone build, equals `Normal`:
///
/// ```
/// use wsproto::CloseCode;
/// assert_eq!(CloseCode::from(1000), CloseCode::Normal);
/// assert_eq!(CloseCode::Other(1000), CloseCode::Normal);
/// assert_eq!(u16::from(CloseCode::Other(4000)), 4000);
/// ```
///
/// [`CloseCode::from`] always picks the named variant, so match on that
/// (`CloseCode::from(u16::from(code))`) when a hand-built `Other` might
/// carry a named number.
#[derive(Debug, Clone, Copy)]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    Away,
    /// 1002: protocol error.
    Protocol,
    /// 1003: a data type the endpoint cannot accept (e.g. binary to a text-only server).
    Unsupported,
    /// 1005: no status code was present. Reserved: never sent on the wire.
    Status,
    /// 1006: closed without a Close frame. Reserved: never sent on the wire.
    Abnormal,
    /// 1007: data inconsistent with the message type (e.g. bad UTF-8 in text).
    Invalid,
    /// 1008: a message violates the endpoint's policy.
    Policy,
    /// 1009: a message is too big to process.
    Size,
    /// 1010: the client expected an extension the server did not negotiate.
    Extension,
    /// 1011: the server hit an unexpected condition.
    Error,
    /// Any other code, kept as received. Compares equal to the named
    /// variant of the same number, if there is one.
    Other(u16),
}

impl PartialEq for CloseCode {
    fn eq(&self, other: &CloseCode) -> bool {
        u16::from(*self) == u16::from(*other)
    }
}

impl Eq for CloseCode {}

impl Hash for CloseCode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        u16::from(*self).hash(state);
    }
}

impl CloseCode {
    /// Whether this code may appear in a Close frame on the wire.
    ///
    /// Accepted: 1000–1003, 1007–1011 (RFC 6455 §7.4.1), 1012–1014 (Service
    /// Restart, Try Again Later, Bad Gateway: registered with IANA under
    /// §11.7, accepted by browsers) and 3000–4999 (registered and private
    /// use, §7.4.2). Everything else, including the reserved 1004–1006,
    /// 1015 and codes below 1000, is a protocol error.
    pub fn is_sendable(self) -> bool {
        matches!(u16::from(self), 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::Away,
            1002 => CloseCode::Protocol,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::Status,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::Invalid,
            1008 => CloseCode::Policy,
            1009 => CloseCode::Size,
            1010 => CloseCode::Extension,
            1011 => CloseCode::Error,
            other => CloseCode::Other(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Status => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::Invalid => 1007,
            CloseCode::Policy => 1008,
            CloseCode::Size => 1009,
            CloseCode::Extension => 1010,
            CloseCode::Error => 1011,
            CloseCode::Other(n) => n,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

/// The body of a Close frame: a code and a UTF-8 reason (RFC 6455 §5.5.1).
///
/// A control frame carries at most 125 bytes (RFC 6455 §5.5), so a reason
/// may be at most [`CloseFrame::MAX_REASON`] (123) bytes next to the 2-byte
/// code. Nothing here cuts a longer reason silently: sending one is refused
/// with [`Error::ControlFrameTooLong`] before anything is written. Build it
/// with [`CloseFrame::truncated`] to have it cut instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason. At most [`CloseFrame::MAX_REASON`] bytes can be sent.
    pub reason: String,
}

impl CloseFrame {
    /// Longest reason that fits in a control frame next to the 2-byte code
    /// (125 − 2, RFC 6455 §5.5).
    pub const MAX_REASON: usize = 123;

    /// A close frame body with `code` and `reason`, kept exactly as given.
    ///
    /// A reason longer than [`CloseFrame::MAX_REASON`] bytes makes a Close
    /// frame that [`WebSocket::write`](crate::WebSocket::write) refuses with
    /// [`Error::ControlFrameTooLong`]; see [`CloseFrame::truncated`].
    pub fn new(code: CloseCode, reason: impl Into<String>) -> CloseFrame {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    /// A close frame body whose reason is cut, if longer than
    /// [`CloseFrame::MAX_REASON`] bytes, at the last character boundary
    /// that fits, so that the frame is always sendable (RFC 6455 §5.5).
    ///
    /// For reasons not chosen for the peer, such as an error's text when
    /// failing a connection; a cut reason may mislead, so prefer a short one.
    ///
    /// ```
    /// use wsproto::{CloseCode, CloseFrame};
    /// let f = CloseFrame::truncated(CloseCode::Error, &"é".repeat(100));
    /// assert_eq!(f.reason.len(), 122); // 61 two-byte characters
    /// ```
    pub fn truncated(code: CloseCode, reason: &str) -> CloseFrame {
        let mut end = reason.len().min(Self::MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        CloseFrame {
            code,
            reason: reason[..end].to_owned(),
        }
    }

    /// The length of the encoded body: 2 bytes of code plus the reason.
    pub fn encoded_len(&self) -> usize {
        2 + self.reason.len()
    }

    /// Parse a Close frame payload received from a peer.
    ///
    /// Empty means "no status code" (`Ok(None)`); one byte, a code that may
    /// not be sent, or a reason that is not UTF-8 are errors (1002 / 1007).
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>> {
        match payload {
            [] => Ok(None),
            [_] => Err(Error::CloseFrameTooShort),
            [hi, lo, reason @ ..] => {
                let raw = u16::from_be_bytes([*hi, *lo]);
                let code = CloseCode::from(raw);
                if !code.is_sendable() {
                    return Err(Error::InvalidCloseCode(raw));
                }
                let reason = std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
                Ok(Some(CloseFrame {
                    code,
                    reason: reason.to_owned(),
                }))
            }
        }
    }

    /// Append the wire form (code, then reason) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u16::from(self.code).to_be_bytes());
        out.extend_from_slice(self.reason.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes_follow_rfc_6455_section_7_4() {
        let ok = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        for c in ok {
            assert!(CloseCode::from(c).is_sendable(), "{c} should be sendable");
        }
        let bad = [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for c in bad {
            assert!(!CloseCode::from(c).is_sendable(), "{c} should be refused");
        }
    }

    #[test]
    fn parse_close_payloads() {
        assert_eq!(CloseFrame::parse(&[]).unwrap(), None);
        assert!(matches!(
            CloseFrame::parse(&[3]),
            Err(Error::CloseFrameTooShort)
        ));
        assert!(matches!(
            CloseFrame::parse(&[0x03, 0xed]),
            Err(Error::InvalidCloseCode(1005))
        ));
        assert!(matches!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff]),
            Err(Error::InvalidUtf8)
        ));
        let f = CloseFrame::parse(b"\x0f\xa1bye").unwrap().unwrap();
        assert_eq!(f.code, CloseCode::Other(4001));
        assert_eq!(f.reason, "bye");
    }

    #[test]
    fn new_keeps_a_long_reason_as_given() {
        let reason = "x".repeat(200);
        let f = CloseFrame::new(CloseCode::Normal, &reason);
        assert_eq!(f.reason, reason);
        assert_eq!(f.encoded_len(), 202);
    }

    #[test]
    fn truncated_cuts_on_a_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let f = CloseFrame::truncated(CloseCode::Normal, &reason);
        assert_eq!(f.reason.len(), 122);
        let mut out = Vec::new();
        f.encode_into(&mut out);
        assert_eq!(out.len(), 124);
        assert_eq!(CloseFrame::parse(&out).unwrap(), Some(f));
        // ASCII is cut at exactly 123 bytes; a short reason is untouched.
        let f = CloseFrame::truncated(CloseCode::Normal, &"a".repeat(500));
        assert_eq!(f.reason.len(), CloseFrame::MAX_REASON);
        assert_eq!(f.encoded_len(), 125);
        assert_eq!(CloseFrame::truncated(CloseCode::Away, "bye").reason, "bye");
        // A 4-byte character straddling byte 123 is dropped whole.
        let reason = format!("{}😀", "a".repeat(121));
        assert_eq!(
            CloseFrame::truncated(CloseCode::Away, &reason).reason.len(),
            121
        );
    }

    #[test]
    fn close_codes_compare_and_hash_by_number() {
        use std::collections::hash_map::DefaultHasher;
        use std::collections::HashSet;
        fn hash(c: CloseCode) -> u64 {
            let mut h = DefaultHasher::new();
            c.hash(&mut h);
            h.finish()
        }
        for n in [
            1000u16, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011,
        ] {
            let named = CloseCode::from(n);
            assert!(!matches!(named, CloseCode::Other(_)), "{n} has a name");
            assert_eq!(named, CloseCode::Other(n));
            assert_eq!(CloseCode::Other(n), named);
            assert_eq!(hash(named), hash(CloseCode::Other(n)));
        }
        assert_eq!(CloseCode::from(1000), CloseCode::Normal);
        assert_eq!(CloseCode::Other(1000), CloseCode::Normal);
        assert_ne!(CloseCode::Other(1001), CloseCode::Normal);
        assert_ne!(CloseCode::Other(4000), CloseCode::Other(4001));
        let set: HashSet<CloseCode> = [CloseCode::Normal, CloseCode::Other(1000)].into();
        assert_eq!(set.len(), 1);
        // Every number round-trips through the enum.
        for n in 0..=u16::MAX {
            assert_eq!(u16::from(CloseCode::from(n)), n);
            assert_eq!(CloseCode::from(n), CloseCode::Other(n));
        }
    }
}
