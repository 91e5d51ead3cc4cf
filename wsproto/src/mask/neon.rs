//! NEON kernel for aarch64.
//!
//! NEON is part of the aarch64 base architecture, but the kernel is still
//! handed out only after `is_aarch64_feature_detected!("neon")`, like the
//! x86 ones. Unaligned 16-byte loads are full speed on aarch64 cores, so
//! there is no head loop: four vectors per iteration, then one, then the
//! portable words for the last bytes.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::arch::aarch64::{veorq_u8, vld1q_u8, vst1q_u8};

use super::{portable, Kernel};

/// The NEON kernel, if this CPU has NEON.
pub(super) fn neon() -> Option<Kernel> {
    if std::arch::is_aarch64_feature_detected!("neon") {
        Some(Kernel {
            name: "neon",
            xor: xor_neon_checked,
        })
    } else {
        None
    }
}

/// Only ever called through the `Kernel` built by [`neon`].
fn xor_neon_checked(buf: &mut [u8], mask: [u8; 4]) {
    // SAFETY: this function is private and its only use is the `Kernel`
    // returned by `neon()`, which exists only after NEON was detected.
    unsafe { xor_neon(buf, mask) }
}

/// XOR `buf[i]` with `mask[i % 4]` using 16-byte NEON vectors.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn xor_neon(buf: &mut [u8], mask: [u8; 4]) {
    const W: usize = 16;
    let len = buf.len();
    let p = buf.as_mut_ptr();
    let mut i = 0;
    let pattern = [
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3], mask[0], mask[1],
        mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ];
    // SAFETY: `pattern` is 16 readable bytes; every other access is `W`
    // bytes at `p + i` with `i + W <= len` checked just before, so it stays
    // inside `buf`, which we borrow mutably. `vld1q_u8`/`vst1q_u8` accept
    // any alignment. NEON is enabled by the caller's contract.
    unsafe {
        let m = vld1q_u8(pattern.as_ptr());
        while i + 4 * W <= len {
            let a = p.add(i);
            let v0 = vld1q_u8(a);
            let v1 = vld1q_u8(a.add(W));
            let v2 = vld1q_u8(a.add(2 * W));
            let v3 = vld1q_u8(a.add(3 * W));
            vst1q_u8(a, veorq_u8(v0, m));
            vst1q_u8(a.add(W), veorq_u8(v1, m));
            vst1q_u8(a.add(2 * W), veorq_u8(v2, m));
            vst1q_u8(a.add(3 * W), veorq_u8(v3, m));
            i += 4 * W;
        }
        while i + W <= len {
            let a = p.add(i);
            vst1q_u8(a, veorq_u8(vld1q_u8(a), m));
            i += W;
        }
    }
    // `p` is not used past this point, so reborrowing `buf` is fine.
    portable::xor_lt16(&mut buf[i..], mask);
}
