//! Arbitrary client frames into `WebSocket::read` (server role) after a
//! handshake that negotiated permessage-deflate (RFC 7692); see
//! `wsproto_fuzz::deflate` for the input layout and the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsproto_fuzz::deflate::fuzz_read_deflate(data);
});
