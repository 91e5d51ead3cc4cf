//! Incremental UTF-8 validation of a text message as its bytes arrive
//! (RFC 6455 §8.1: "fail the WebSocket Connection" on invalid UTF-8).
//!
//! The validator fails fast: as soon as the bytes received so far can no
//! longer be the start of valid UTF-8, even mid-frame or mid-character, it
//! reports an error, instead of waiting for the whole message.

use crate::error::{Error, Result};

/// Tracks how much of a growing buffer is known to be valid UTF-8.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8Validator {
    /// `buf[..valid_up_to]` is valid UTF-8 ending on a character boundary.
    valid_up_to: usize,
}

impl Utf8Validator {
    /// Validate the bytes appended to `buf` since the last call.
    ///
    /// An incomplete character at the end is fine as long as it is a valid
    /// prefix of one; [`check`] tells that case from an impossible byte.
    pub(crate) fn feed(&mut self, buf: &[u8]) -> Result<()> {
        let rest = buf.get(self.valid_up_to..).unwrap_or_default();
        match check(rest) {
            Checked::Valid => {
                self.valid_up_to = buf.len();
                Ok(())
            }
            Checked::Incomplete { valid_up_to } => {
                self.valid_up_to += valid_up_to;
                Ok(())
            }
            Checked::Invalid => Err(Error::InvalidUtf8),
        }
    }

    /// At the end of the message: every byte must belong to a whole character.
    pub(crate) fn finish(&self, buf: &[u8]) -> Result<()> {
        if self.valid_up_to == buf.len() {
            Ok(())
        } else {
            Err(Error::InvalidUtf8)
        }
    }
}

/// What [`check`] found.
#[derive(Debug, PartialEq, Eq)]
enum Checked {
    Valid,
    /// Valid up to there, then the start of a character that may still be
    /// completed by the bytes to come.
    Incomplete {
        valid_up_to: usize,
    },
    /// No continuation can make it valid.
    Invalid,
}

/// Below this, `std::str::from_utf8` is as fast as SIMD (it has an ASCII
/// fast path and no set-up cost); above, simdutf8 is up to 12x faster on
/// non-ASCII text (`cargo bench -p benches --bench utf8`).
const SIMD_FROM: usize = 64;

/// Validate `bytes`, telling an incomplete last character (fine mid-message)
/// from an impossible byte. Both validators report exactly that distinction
/// (`error_len() == None` for an incomplete end).
fn check(bytes: &[u8]) -> Checked {
    let (valid_up_to, error_len) = if bytes.len() < SIMD_FROM {
        match std::str::from_utf8(bytes) {
            Ok(_) => return Checked::Valid,
            Err(e) => (e.valid_up_to(), e.error_len()),
        }
    } else {
        match simdutf8::compat::from_utf8(bytes) {
            Ok(_) => return Checked::Valid,
            Err(e) => (e.valid_up_to(), e.error_len()),
        }
    };
    match error_len {
        None => Checked::Incomplete { valid_up_to },
        Some(_) => Checked::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_bytewise(bytes: &[u8]) -> Result<()> {
        let mut v = Utf8Validator::default();
        for i in 1..=bytes.len() {
            v.feed(&bytes[..i])?;
        }
        v.finish(bytes)
    }

    /// The reference: what `std` says of the whole prefix received so far.
    fn std_verdict(prefix: &[u8]) -> Checked {
        match std::str::from_utf8(prefix) {
            Ok(_) => Checked::Valid,
            Err(e) if e.error_len().is_none() => Checked::Incomplete {
                valid_up_to: e.valid_up_to(),
            },
            Err(_) => Checked::Invalid,
        }
    }

    proptest::proptest! {
        /// Fed in any pieces, long (SIMD) or short (std), the validator
        /// fails exactly at the first piece after which std says the prefix
        /// can no longer be UTF-8, and finishes Ok exactly when std accepts
        /// the whole.
        #[test]
        fn agrees_with_std_on_every_prefix(
            text in "[a-zé张👍]{0,200}",
            noise in proptest::collection::vec((0usize..800, proptest::prelude::any::<u8>()), 0..3),
            cuts in proptest::collection::vec(0usize..800, 0..6),
        ) {
            let mut bytes = text.into_bytes();
            for (at, byte) in noise {
                let at = at % (bytes.len() + 1);
                bytes.insert(at, byte);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut v = Utf8Validator::default();
            let mut failed = false;
            for &cut in &cuts {
                let ours = v.feed(&bytes[..cut]);
                let reference = std_verdict(&bytes[..cut]);
                proptest::prop_assert_eq!(ours.is_err(), reference == Checked::Invalid, "at {}", cut);
                if ours.is_err() {
                    failed = true;
                    break;
                }
            }
            if !failed {
                proptest::prop_assert_eq!(v.finish(&bytes).is_ok(), std::str::from_utf8(&bytes).is_ok());
            }
        }
    }

    #[test]
    fn long_and_short_pieces_use_both_validators() {
        // 100 bytes (simdutf8) ending mid-character, then the rest (std).
        let text = "张".repeat(40);
        let bytes = text.as_bytes();
        assert_eq!(
            check(&bytes[..100]),
            Checked::Incomplete { valid_up_to: 99 }
        );
        assert_eq!(check(&bytes[..10]), Checked::Incomplete { valid_up_to: 9 });
        let mut bad = bytes[..100].to_vec();
        bad[50] = 0xff;
        assert_eq!(check(&bad), Checked::Invalid);
        assert_eq!(check(&bad[45..55]), Checked::Invalid);
        let mut v = Utf8Validator::default();
        v.feed(&bytes[..100]).unwrap();
        v.feed(bytes).unwrap();
        v.finish(bytes).unwrap();
    }

    #[test]
    fn accepts_valid_text_fed_byte_by_byte() {
        feed_bytewise("κόσμε 张三 👍 hello".as_bytes()).unwrap();
    }

    #[test]
    fn fails_on_the_first_impossible_byte() {
        // "κόσμε" then 0xED 0xA0 (a surrogate): fails at the 0xA0, before the end.
        let mut bytes = "κόσμε".as_bytes().to_vec();
        bytes.extend_from_slice(&[0xed, 0xa0, 0x80, b'a']);
        let mut v = Utf8Validator::default();
        let n = "κόσμε".len();
        v.feed(&bytes[..n + 1]).unwrap(); // 0xED alone may still be valid
        assert!(matches!(v.feed(&bytes[..n + 2]), Err(Error::InvalidUtf8)));
    }

    #[test]
    fn truncated_character_fails_at_finish() {
        let bytes = [0xf0u8, 0x90, 0x80];
        let mut v = Utf8Validator::default();
        v.feed(&bytes).unwrap();
        assert!(matches!(v.finish(&bytes), Err(Error::InvalidUtf8)));
    }

    #[test]
    fn rejects_overlong_and_out_of_range() {
        for bad in [
            &[0xc0u8, 0x80][..],
            &[0xf4, 0x90, 0x80, 0x80],
            &[0xff],
            &[0x80],
        ] {
            assert!(feed_bytewise(bad).is_err(), "{bad:x?}");
        }
    }
}
