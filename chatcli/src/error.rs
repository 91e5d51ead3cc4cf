//! The one error type of the client. Each message says what happened and,
//! where there is one, what to do about it; [`ChatError::exit_code`] maps it
//! to the exit codes documented in `--help`.

use std::io;

/// Everything that ends a chat session other than a normal close.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// `--addr` (with the user added) is not a usable `ws://` URL.
    #[error("invalid --addr {addr:?}: {source}")]
    BadAddr {
        /// The address given.
        addr: String,
        /// Why wsproto refused it.
        source: wsproto::Error,
    },

    /// The host name did not resolve.
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        /// The host from `--addr`.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },

    /// No TCP connection could be made.
    #[error(
        "cannot connect to {addr}: {source} (is chatserv running and listening there? see --addr)"
    )]
    Connect {
        /// `host:port`.
        addr: String,
        /// The last connect error.
        source: io::Error,
    },

    /// The server answered the upgrade with an HTTP error (RFC 6455 §4.1:
    /// anything but 101 fails the connection), e.g. 400 for a missing user
    /// or 503 when it is full.
    #[error("the server refused the connection with HTTP {status} {reason}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its standard reason phrase (empty if unknown).
        reason: &'static str,
        /// The first line of the body the server sent, escaped and bounded.
        body: String,
    },

    /// The server accepted the TCP connection but did not answer the
    /// upgrade in time.
    #[error(
        "timed out waiting for the WebSocket handshake: {url} accepted the connection but did \
         not answer within {timeout:?} (is it a WebSocket server?)"
    )]
    HandshakeTimedOut {
        /// The URL used.
        url: String,
        /// How long we waited.
        timeout: std::time::Duration,
    },

    /// The server closed the TCP connection before answering the upgrade.
    #[error(
        "the server closed the connection during the WebSocket handshake, before answering \
         the upgrade request to {url}"
    )]
    ClosedDuringHandshake {
        /// The URL used.
        url: String,
    },

    /// `--token` cannot go into a header (it has control characters).
    #[error("invalid --token: it must not contain control characters")]
    BadToken,

    /// The Ctrl-C / SIGTERM handler could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] io::Error),

    /// `--ca-file` cannot be used.
    #[error("--ca-file {0}")]
    CaFile(#[source] wsproto::tls::TlsConfigError),

    /// The server's TLS certificate was refused.
    #[error("the TLS certificate of {url} was refused: {problem}{hint}")]
    Certificate {
        /// The URL used.
        url: String,
        /// What was wrong with it.
        problem: wsproto::CertificateProblem,
        /// What to do about it, if anything.
        hint: &'static str,
    },

    /// The opening handshake failed otherwise (not a WebSocket server, time-out...).
    #[error("WebSocket handshake with {url} failed: {source}")]
    Handshake {
        /// The URL used.
        url: String,
        /// What went wrong.
        source: wsproto::Error,
    },

    /// The server closed the connection with a code other than 1000/1001:
    /// it kicked this client (e.g. 4001 "logged in elsewhere").
    #[error("the server closed the connection with code {code}: {reason:?}")]
    Kicked {
        /// The close code (RFC 6455 §7.4).
        code: u16,
        /// The reason the server gave.
        reason: String,
    },

    /// The server broke the protocol; the client closed with `code`.
    #[error("the server broke the WebSocket protocol ({source}); closed with code {code}")]
    Protocol {
        /// The close code sent (1002, 1007 or 1009).
        code: u16,
        /// The violation.
        source: wsproto::Error,
    },

    /// The TCP connection ended without a close handshake (RFC 6455 §7.1.5, 1006).
    #[error("the connection to the server was lost (closed without a WebSocket close handshake)")]
    Lost,

    /// Reading from or writing to the connection failed.
    #[error("connection error: {0}")]
    Connection(#[source] wsproto::Error),

    /// Reading stdin failed (interactive mode).
    #[error("cannot read stdin: {0}")]
    Stdin(#[source] io::Error),

    /// Writing a received message to stdout failed (e.g. the pipe closed).
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] io::Error),
}

impl ChatError {
    /// The process exit code for this error (see `--help`): 3 when the
    /// connection ended with an error close code, 2 for a bad command line
    /// (clap's own code; `--addr` is normally caught by clap already), 1
    /// for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ChatError::Kicked { .. } | ChatError::Protocol { .. } => 3,
            ChatError::BadAddr { .. } | ChatError::BadToken => 2,
            _ => 1,
        }
    }
}
