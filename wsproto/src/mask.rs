//! The masking cipher (RFC 6455 §5.3): what gobwas/ws calls `Cipher`.
//!
//! Every byte `i` of a client-to-server payload is XORed with `mask[i % 4]`.
//! Masking and unmasking are the same operation, so applying a mask twice
//! gives back the original bytes.

use crate::frame::Frame;

/// XOR `buf` with `mask`, as if `buf` started `offset` bytes into the payload.
///
/// The offset lets a payload be unmasked in pieces as it streams in: calling
/// this on `payload[..k]` with offset 0 and on `payload[k..]` with offset `k`
/// gives the same bytes as one call on the whole payload (RFC 6455 §5.3,
/// `j = i MOD 4`).
///
/// ```
/// let mut data = *b"Hello";
/// let mask = [0x37, 0xfa, 0x21, 0x3d];
/// wsproto::apply_mask(&mut data, mask, 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // RFC 6455 §5.7
/// wsproto::apply_mask(&mut data[..2], mask, 0);
/// wsproto::apply_mask(&mut data[2..], mask, 2);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut mask = mask;
    mask.rotate_left(offset % 4);
    // Word-at-a-time XOR: 32-byte blocks of four u64 lanes, which the
    // compiler turns into vector instructions, then 8-byte words, then bytes.
    // Every block and word is a multiple of 4 bytes, so the mask phase is the
    // same at the start of each.
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for lane in block.chunks_exact_mut(8) {
            xor_word(lane, word);
        }
    }
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for lane in &mut words {
        xor_word(lane, word);
    }
    for (byte, m) in words.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= m;
    }
}

#[inline(always)]
fn xor_word(lane: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(lane);
    let v = u64::from_ne_bytes(bytes) ^ word;
    lane.copy_from_slice(&v.to_ne_bytes());
}

/// The byte-by-byte reference cipher, straight from RFC 6455 §5.3.
///
/// Slow; kept public as the oracle for differential tests, fuzzing and
/// benchmarks of [`apply_mask`].
pub fn apply_mask_naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= mask[(offset + i) % 4];
    }
}

/// A fresh random masking key for one frame (RFC 6455 §5.3: "derived from a
/// strong source of entropy", new for every frame).
pub fn random_mask() -> [u8; 4] {
    rand::random()
}

/// Mask a frame for sending from a client, in place, with a fresh random key,
/// as gobwas/ws `MaskFrameInPlace` does.
///
/// The payload is XORed and the key recorded in the header, so
/// [`write_frame`](crate::write_frame) then puts it on the wire unchanged.
/// Calling it on an already masked frame first removes the old mask.
pub fn mask_frame_in_place(frame: &mut Frame) {
    if let Some(old) = frame.header.mask.take() {
        apply_mask(&mut frame.payload, old, 0);
    }
    let mask = random_mask();
    apply_mask(&mut frame.payload, mask, 0);
    frame.header.mask = Some(mask);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_naive_for_small_lengths_offsets_and_alignments() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..=300 {
                for offset in 0..4 {
                    let mut fast = data[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, mask, offset);
                    apply_mask_naive(&mut slow, mask, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn mask_frame_in_place_records_key_and_roundtrips() {
        let mut frame = Frame::text("hello");
        mask_frame_in_place(&mut frame);
        let mask = frame.header.mask.expect("masked");
        assert_ne!(
            frame.payload,
            b"hello".to_vec(),
            "payload must be masked (mask {mask:?})"
        );
        apply_mask(&mut frame.payload, mask, 0);
        assert_eq!(frame.payload, b"hello");
    }

    proptest! {
        #[test]
        fn masking_twice_is_identity(data in proptest::collection::vec(any::<u8>(), 0..2048), mask in any::<[u8; 4]>(), offset in 0usize..16) {
            let mut buf = data.clone();
            apply_mask(&mut buf, mask, offset);
            apply_mask(&mut buf, mask, offset);
            prop_assert_eq!(buf, data);
        }

        #[test]
        fn masking_split_at_any_offset_equals_masking_whole(data in proptest::collection::vec(any::<u8>(), 0..2048), mask in any::<[u8; 4]>(), split in any::<prop::sample::Index>()) {
            let k = split.index(data.len() + 1);
            let mut whole = data.clone();
            apply_mask(&mut whole, mask, 0);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(k);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, k);
            prop_assert_eq!(&pieces, &whole);
            let mut naive = data;
            apply_mask_naive(&mut naive, mask, 0);
            prop_assert_eq!(pieces, naive);
        }
    }
}
