//! A growable payload buffer that remembers how much of its allocation is
//! already initialised, so reading straight into it does not zero the same
//! memory again for every message.
//!
//! `Read::read` takes an initialised `&mut [u8]`, so the usual way to read
//! into a `Vec`'s spare capacity is `resize(n, 0)` first: a `memset` of
//! every byte about to be overwritten. A reused message buffer was
//! initialised by an earlier message; this type records that (`init`) and
//! lengthens the vector over those bytes without writing them.

/// A `Vec<u8>` plus the length of its allocation's initialised prefix.
///
/// Invariant: `init <= data.capacity()`, and `data`'s allocation holds
/// initialised bytes at `0..max(init, data.len())`. Every method that can
/// replace or reallocate `data` lowers `init` accordingly.
#[derive(Debug, Default)]
pub(crate) struct Payload {
    data: Vec<u8>,
    init: usize,
}

impl Payload {
    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.data
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Empty it, keeping the allocation (and its initialised bytes).
    pub(crate) fn clear(&mut self) {
        self.truncate(0);
    }

    /// Shorten to `len` bytes; the bytes cut off stay initialised.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.init = self.init.max(self.data.len());
        self.data.truncate(len);
    }

    /// Append `bytes`.
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        let capacity = self.data.capacity();
        self.data.extend_from_slice(bytes);
        if self.data.capacity() != capacity {
            // A new allocation: only what `data` holds is known initialised.
            self.init = 0;
        }
    }

    /// The vector itself, for code that appends to it in its own way (the
    /// inflater). It may reallocate, so only its length is trusted after.
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        self.init = 0;
        &mut self.data
    }

    /// Lengthen by `extra` bytes for a read to overwrite and return them.
    /// Bytes this allocation already initialised are not zeroed again.
    ///
    /// When the allocation must grow, it doubles (so a message arriving in
    /// many reads is not copied many times) but never past `end`, where the
    /// frame being read ends: a message of exactly N bytes gets exactly N
    /// bytes of capacity, and no more than twice what has arrived.
    #[allow(unsafe_code)]
    pub(crate) fn grow_for_read(&mut self, extra: usize, end: usize) -> &mut [u8] {
        let old = self.data.len();
        let new = old.saturating_add(extra);
        if new > self.data.capacity() {
            let target = self
                .data
                .capacity()
                .saturating_mul(2)
                .clamp(new, end.max(new));
            self.data.reserve_exact(target - old);
            // A new allocation: only `data` itself is known initialised.
            self.init = 0;
        }
        if new <= self.init.max(old) {
            // SAFETY: `new <= init <= capacity` (the invariant), and the
            // invariant says bytes `0..init` of this allocation are
            // initialised: they were written by an earlier `resize` or
            // read and only truncated since (which does not de-initialise
            // `u8`s). `u8` has no invalid bit patterns and no destructor.
            unsafe { self.data.set_len(new) };
        } else {
            self.data.resize(new, 0);
            self.init = new;
        }
        &mut self.data[old..]
    }

    /// Move the bytes out; a fresh, empty buffer takes their place.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.init = 0;
        std::mem::take(&mut self.data)
    }

    /// Use `buffer`'s allocation from now on, emptied.
    pub(crate) fn replace(&mut self, buffer: Vec<u8>) {
        self.data = buffer;
        // Its elements are initialised; past them, nothing is known.
        self.init = self.data.len();
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_initialised_bytes_without_zeroing() {
        let mut p = Payload::default();
        p.grow_for_read(8, 0).copy_from_slice(b"abcdefgh");
        p.truncate(2);
        // The bytes are not zeroed again: what was there is still there,
        // and the read overwrites it anyway.
        assert_eq!(p.grow_for_read(3, 0), b"cde");
        assert_eq!(p.as_slice(), b"abcde");
        p.clear();
        // Past what was initialised, `resize` zeroes the whole new range.
        assert_eq!(p.grow_for_read(10, 0), [0; 10]);
    }

    #[test]
    fn grows_geometrically_but_not_past_the_frame() {
        let mut p = Payload::default();
        p.grow_for_read(1000, 1 << 20);
        assert_eq!(p.capacity(), 1000);
        p.grow_for_read(1000, 1 << 20);
        assert_eq!(p.capacity(), 2000, "doubles");
        p.grow_for_read(500_000, 1 << 20);
        assert_eq!(p.capacity(), 502_000, "at least what is needed");
        p.grow_for_read(10_000, 1 << 20);
        assert_eq!(p.capacity(), 1_004_000, "doubles");
        p.grow_for_read(500_000, 1 << 20);
        assert_eq!(p.capacity(), 1 << 20, "capped at the frame's end");
        assert_eq!(p.len(), 1_012_000);
        p.grow_for_read((1 << 20) - 1_012_000, 1 << 20);
        assert_eq!(p.capacity(), 1 << 20, "exactly the message");
    }

    #[test]
    fn forgets_after_reallocation_or_replacement() {
        let mut p = Payload::default();
        p.grow_for_read(4, 0).copy_from_slice(b"wxyz");
        p.clear();
        p.extend_from_slice(&[7; 4096]); // reallocates
        p.truncate(0);
        assert!(p.grow_for_read(4096, 0).iter().all(|&b| b == 7));
        p.take();
        assert_eq!(p.grow_for_read(3, 0), [0, 0, 0]);
        p.replace(vec![1, 2, 3, 4]);
        assert_eq!(p.len(), 0);
        assert_eq!(p.grow_for_read(4, 0), [1, 2, 3, 4]);
        assert_eq!(p.grow_for_read(2, 0), [0, 0]);
        p.vec_mut().clear();
        assert_eq!(p.grow_for_read(1, 0), [0]);
    }
}
