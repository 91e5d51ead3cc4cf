//! The optimized cipher `apply_mask` against the byte-by-byte reference
//! `apply_mask_naive` (RFC 6455 §5.3) for any data, mask, offset and start
//! alignment. Input: `[mask; 4] [offset: u64 LE] [start] [split] data...`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto::{apply_mask, apply_mask_naive};

fuzz_target!(|input: &[u8]| {
    let [m0, m1, m2, m3, o0, o1, o2, o3, o4, o5, o6, o7, start, split, data @ ..] = input else {
        return;
    };
    let mask = [*m0, *m1, *m2, *m3];
    let offset = u64::from_le_bytes([*o0, *o1, *o2, *o3, *o4, *o5, *o6, *o7]) as usize;
    // A sub-slice starting at an input-chosen alignment.
    let start = usize::from(*start % 64).min(data.len());
    let mut owned = data.to_vec();
    let buf = &mut owned[start..];
    let original = buf.to_vec();

    let mut fast = buf.to_vec();
    apply_mask(buf, mask, offset);
    apply_mask_naive(&mut fast, mask, offset);
    assert_eq!(
        buf,
        &fast[..],
        "apply_mask != naive: offset {offset}, start {start}"
    );

    // Unmasking in two pieces at any split equals unmasking the whole
    // (the property the streaming reader relies on).
    let k = usize::from(*split).min(buf.len());
    let (a, b) = buf.split_at_mut(k);
    apply_mask(a, mask, offset);
    apply_mask(b, mask, offset.wrapping_add(k));
    assert_eq!(
        buf,
        &original[..],
        "masking twice, split at {k}, is not the identity"
    );
});
