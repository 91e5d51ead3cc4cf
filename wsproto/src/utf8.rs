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
    /// prefix of one; `std::str::from_utf8` reports exactly that case with
    /// `error_len() == None`.
    pub(crate) fn feed(&mut self, buf: &[u8]) -> Result<()> {
        let rest = buf.get(self.valid_up_to..).unwrap_or_default();
        match std::str::from_utf8(rest) {
            Ok(_) => {
                self.valid_up_to = buf.len();
                Ok(())
            }
            Err(e) if e.error_len().is_none() => {
                self.valid_up_to += e.valid_up_to();
                Ok(())
            }
            Err(_) => Err(Error::InvalidUtf8),
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
