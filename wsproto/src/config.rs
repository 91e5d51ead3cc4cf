//! Limits of a connection.

pub use crate::role::Role;

/// Limits and buffer sizes. Every field is public; start from
/// `Config::default()` and change what you need.
///
/// ```
/// let config = wsproto::Config {
///     max_message_size: 64 * 1024,
///     ..wsproto::Config::default()
/// };
/// assert_eq!(config.max_frame_size, 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest frame payload accepted, in bytes (default 16 MiB). A larger
    /// frame fails the connection with close 1009 before its payload is read.
    pub max_frame_size: usize,
    /// Largest message accepted after reassembling fragments (default 64 MiB);
    /// close 1009 when exceeded, checked as each frame header arrives.
    pub max_message_size: usize,
    /// Largest size of the read buffer (default 64 KiB). The buffer is
    /// allocated on first read at 2 KiB (or this, if smaller) and doubles
    /// each time one `read` fills it, so an idle connection stays small and
    /// a busy one takes many small frames per system call. Payloads that do
    /// not fit are read straight into the message.
    pub read_buffer_size: usize,
    /// Most unsent bytes queued before `write` refuses a message with
    /// [`Error::WriteBufferFull`](crate::Error::WriteBufferFull) (default
    /// 1 MiB). One message is always accepted onto a queue under the limit,
    /// so at most this plus one message plus one pong wait in memory.
    pub max_write_buffer_size: usize,
    /// Largest HTTP head accepted during the opening handshake (default 8 KiB).
    pub max_head_size: usize,
    /// Most header fields accepted during the opening handshake (default 100).
    pub max_headers: usize,
    /// permessage-deflate (RFC 7692): `Some` to accept it as a server or
    /// offer it as a client, `None` to refuse it. On by default.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::deflate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            read_buffer_size: 64 * 1024,
            max_write_buffer_size: 1 << 20,
            max_head_size: 8 * 1024,
            max_headers: 100,
            #[cfg(feature = "deflate")]
            deflate: Some(crate::deflate::DeflateConfig::default()),
        }
    }
}
