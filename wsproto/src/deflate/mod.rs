//! permessage-deflate (RFC 7692), behind the `deflate` cargo feature (on by
//! default): negotiation in [`negotiate`], the codec in [`codec`].
//!
//! Configure it with [`Config::deflate`](crate::Config::deflate): a server
//! accepts a client's offer, a client offers it; `None` turns it off.

pub(crate) mod codec;
mod negotiate;

pub(crate) use negotiate::{check_client_response, client_offer, negotiate_server};
pub use negotiate::{DeflateConfig, DeflateParams};

use crate::config::Role;

/// The compressor and decompressor of one connection end, built from the
/// agreed parameters and the role.
pub(crate) fn codecs(
    params: &DeflateParams,
    role: Role,
    config: &DeflateConfig,
) -> (codec::Deflater, codec::Inflater) {
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
        codec::Deflater::new(config.compression_level, own_bits, own_reset),
        codec::Inflater::new(peer_bits, peer_reset),
    )
}
