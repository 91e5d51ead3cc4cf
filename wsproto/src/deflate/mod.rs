//! permessage-deflate (RFC 7692): negotiation in `negotiate`, the codec in
//! `codec`, behind the `deflate` cargo feature (on by default).
//!
//! This module is the one seam between the feature and the rest of the
//! crate. The reader and writer hold an `Option<Inflater>` /
//! `Option<Deflater>` whatever the features; without `deflate` those are
//! uninhabited types (`off.rs`), so the options are always `None` and the
//! compression paths compile to nothing, with no `cfg` in the message
//! layer. The public configuration ([`DeflateConfig`], [`DeflateParams`],
//! `Config::deflate`) exists only with the feature.
//!
//! Configure it with `Config::deflate`: a server accepts a client's offer,
//! a client offers it; `None` turns it off.

#[cfg(feature = "deflate")]
mod codec;
#[cfg(not(feature = "deflate"))]
#[path = "off.rs"]
mod codec;
#[cfg(feature = "deflate")]
mod negotiate;

pub(crate) use codec::{Deflater, Inflater};
#[cfg(feature = "deflate")]
pub(crate) use negotiate::{check_client_response, client_offer, negotiate_server};
#[cfg(feature = "deflate")]
pub use negotiate::{DeflateConfig, DeflateParams};

#[cfg(feature = "deflate")]
use crate::role::Role;

/// The compressor and decompressor of one connection end, built from the
/// agreed parameters and the role.
#[cfg(feature = "deflate")]
pub(crate) fn codecs(
    params: &DeflateParams,
    role: Role,
    config: &DeflateConfig,
) -> (Deflater, Inflater) {
    let (own_bits, own_reset, peer_bits, peer_reset) = match role {
        Role::Server => (
            params.server_max_window_bits,
            params.server_no_context_takeover,
            params.client_max_window_bits,
            params.client_no_context_takeover,
        ),
        Role::Client => (
            params.client_max_window_bits,
            params.client_no_context_takeover,
            params.server_max_window_bits,
            params.server_no_context_takeover,
        ),
    };
    (
        Deflater::new(config.compression_level, own_bits, own_reset),
        Inflater::new(peer_bits, peer_reset),
    )
}
