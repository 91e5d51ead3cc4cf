//! Arbitrary bytes from a server into `WebSocket::read` (client role);
//! see `wsproto_fuzz::messages` for the input layout and the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wsproto_fuzz::messages::fuzz_read_frames(data, wsproto::Role::Client);
});
