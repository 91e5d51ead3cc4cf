//! The one error type of the chat server.
//!
//! Errors of a single connection are logged and end that connection only;
//! errors that reach `main` (cannot bind, cannot install signal handlers)
//! end the process with a non-zero status and a message saying what failed.

use std::io;
use std::net::SocketAddr;

/// Everything that can go wrong in the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the OS refused.
        source: io::Error,
    },

    /// The configuration cannot be used (e.g. an unreadable secret file).
    #[error("{0}")]
    Config(String),

    /// Ctrl-C / SIGTERM handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),

    /// A per-connection thread could not be started (out of memory or
    /// thread limit); that client gets HTTP 503.
    #[error("cannot start a thread for {peer}: {source}")]
    Spawn {
        /// The client.
        peer: SocketAddr,
        /// Why the OS refused.
        source: io::Error,
    },

    /// The writer pool (its epoll instance or thread) could not start.
    #[error("cannot start the writer pool: {0}")]
    Pool(io::Error),

    /// A socket operation on one connection failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),

    /// The TLS certificate or key files cannot be used (exit status 2).
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] wsproto::tls::TlsConfigError),

    /// The WebSocket layer failed (handshake, protocol violation, ...).
    #[error(transparent)]
    Ws(#[from] wsproto::Error),
}

/// Result alias for the server.
pub type Result<T, E = Error> = std::result::Result<T, E>;
