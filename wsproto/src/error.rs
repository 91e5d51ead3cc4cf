//! The one error type of the crate.
//!
//! Every way a peer can misbehave maps to a variant here, and every variant knows
//! how the connection should end: [`Error::close_code`] gives the WebSocket close
//! code to send (RFC 6455 §7.4.1) and [`Error::http_status`] the HTTP status to
//! answer a failed opening handshake with (RFC 6455 §4.2.2).

use std::io;

use crate::close::CloseCode;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while speaking WebSocket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying stream failed (includes read/write time-outs).
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),

    /// The peer's TLS certificate was refused (feature `tls`): what the
    /// check found wrong.
    #[error("TLS certificate refused: {0}")]
    Certificate(CertificateProblem),

    /// The TLS layer failed for another reason (feature `tls`): the peer
    /// does not speak TLS, offered nothing in common, sent a bad record,
    /// or sent an alert. The text is rustls' description; for a failed
    /// certificate authentication (the server requires a client
    /// certificate and none was sent, the peer refused this side's
    /// certificate) it also says what to do.
    #[error("TLS error: {0}")]
    Tls(String),

    /// The close handshake has completed (or the connection failed earlier);
    /// there is nothing more to read or write. This is the normal end of a
    /// read loop.
    #[error("the WebSocket connection is closed")]
    ConnectionClosed,

    /// A message was sent after this side already sent a Close frame.
    #[error("cannot send: this side already sent a Close frame")]
    AlreadyClosed,

    /// `write` refused the message, which was not queued: more than
    /// `Config::max_write_buffer_size` bytes are waiting for the stream.
    /// Flush when the stream is writable, then send the message again.
    #[error("write buffer full: more than max_write_buffer_size bytes wait for the stream; flush when it is writable, then send again")]
    WriteBufferFull,

    /// An earlier I/O error (other than a time-out) failed this connection:
    /// the stream may end in part of a frame, so nothing more is read from
    /// or written to it.
    #[error("the connection failed after an I/O error; it can no longer be used")]
    StreamFailed,

    /// The peer closed the TCP stream without a close handshake
    /// (RFC 6455 §7.1.5: close code 1006, never sent on the wire).
    #[error("the peer closed the TCP connection without a WebSocket close handshake")]
    UnexpectedEof,

    // ---- frame-level protocol violations: close 1002 (RFC 6455 §5.2, §5.5) ----
    /// RSV1, RSV2 or RSV3 was set but no extension defines them (RFC 6455 §5.2).
    #[error("protocol error: reserved bits {bits:#05b} set without a negotiated extension")]
    ReservedBits {
        /// The three RSV bits as a number, RSV1 being the highest.
        bits: u8,
    },
    /// The frame used one of the reserved opcodes 0x3–0x7 or 0xB–0xF (RFC 6455 §5.2).
    #[error("protocol error: reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A client sent an unmasked frame to a server (RFC 6455 §5.1).
    #[error("protocol error: client frame is not masked")]
    UnmaskedClientFrame,
    /// A server sent a masked frame to a client (RFC 6455 §5.1).
    #[error("protocol error: server frame is masked")]
    MaskedServerFrame,
    /// A control frame carried more than 125 bytes of payload (RFC 6455 §5.5).
    #[error("protocol error: control frame payload of {0} bytes exceeds 125")]
    ControlFrameTooLong(u64),
    /// A control frame had FIN clear (RFC 6455 §5.5).
    #[error("protocol error: fragmented control frame")]
    FragmentedControlFrame,
    /// A 64-bit payload length had its most significant bit set (RFC 6455 §5.2).
    #[error("protocol error: 64-bit payload length has its most significant bit set")]
    LengthOverflow,
    /// A payload length was not encoded in the minimal number of bytes (RFC 6455 §5.2).
    #[error("protocol error: payload length {0} is not minimally encoded")]
    NonMinimalLength(u64),
    /// A continuation frame arrived while no fragmented message was open (RFC 6455 §5.4).
    #[error("protocol error: continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new Text or Binary frame arrived inside a fragmented message (RFC 6455 §5.4).
    #[error("protocol error: new data frame while a fragmented message is incomplete")]
    ExpectedContinuation,
    /// A Close frame had a one-byte payload (RFC 6455 §5.5.1).
    #[error("protocol error: close frame payload of 1 byte")]
    CloseFrameTooShort,
    /// A Close frame carried a code that must not appear on the wire (RFC 6455 §7.4).
    #[error("protocol error: close code {0} is not allowed on the wire")]
    InvalidCloseCode(u16),

    // ---- close 1007 ----
    /// A text message or close reason was not valid UTF-8 (RFC 6455 §8.1).
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,

    /// A compressed message could not be inflated (RFC 7692 §7.2.2).
    #[error("invalid permessage-deflate data")]
    InvalidCompressedData,

    // ---- close 1009 ----
    /// A frame was larger than the configured `max_frame_size`.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooBig {
        /// Declared payload length.
        size: u64,
        /// Configured limit.
        limit: usize,
    },
    /// A message was larger than the configured `max_message_size`.
    #[error("message of at least {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooBig {
        /// Size reached so far.
        size: u64,
        /// Configured limit.
        limit: usize,
    },

    // ---- opening handshake (RFC 6455 §4) ----
    /// The HTTP head was larger than the configured limit.
    #[error("HTTP head exceeds the limit of {0} bytes")]
    HeadTooLarge(usize),
    /// The HTTP head had more header fields than the configured limit.
    #[error("HTTP head has more than {0} header fields")]
    TooManyHeaders(usize),
    /// The HTTP head could not be parsed.
    #[error("malformed HTTP head: {0}")]
    MalformedHttp(String),
    /// The request method was not GET (RFC 6455 §4.1).
    #[error("WebSocket upgrade needs method GET, got {0}")]
    MethodNotGet(String),
    /// The request was not HTTP/1.1 or later (RFC 6455 §4.1).
    #[error("WebSocket upgrade needs HTTP/1.1")]
    WrongHttpVersion,
    /// A required header field was missing or empty.
    #[error("missing header field {0}")]
    MissingHeader(&'static str),
    /// A header field had a value the protocol does not allow.
    #[error("header field {name} has an invalid value: {value:?}")]
    InvalidHeader {
        /// Header field name.
        name: &'static str,
        /// The value received (lossily decoded).
        value: String,
    },
    /// The client asked for a protocol version other than 13 (RFC 6455 §4.4).
    #[error("unsupported Sec-WebSocket-Version {0:?} (only 13 is supported)")]
    UnsupportedVersion(String),
    /// The application refused the upgrade with this HTTP status.
    #[error("upgrade refused with HTTP status {0}")]
    Rejected(u16),
    /// The server answered the client's upgrade request with a status other than 101.
    #[error("server answered HTTP {status} instead of 101 Switching Protocols")]
    HttpStatus {
        /// The status code received.
        status: u16,
        /// The response body, if the server sent one (bounded by the head limit).
        body: Vec<u8>,
    },
    /// The server's `Sec-WebSocket-Accept` did not match the key sent.
    #[error("server sent a wrong Sec-WebSocket-Accept value")]
    WrongAccept,
    /// The server selected a subprotocol the client did not offer (RFC 6455 §4.1).
    #[error("server selected subprotocol {0:?}, which was not offered")]
    UnexpectedProtocol(String),
    /// The server selected an extension although none was offered (RFC 6455 §4.1).
    #[error("server selected extension {0:?}, which was not offered")]
    UnexpectedExtension(String),
    /// The URL could not be used.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URL scheme is not supported: only `ws://`, and `wss://` with
    /// the feature `tls`.
    #[error(
        "unsupported URL scheme {0:?}: only ws:// and wss:// are supported (wss:// needs wsproto's `tls` feature)"
    )]
    UnsupportedScheme(String),

    // ---- handshake: URLs, header syntax, time-outs ----
    /// A header field name given to this crate to send (a client's extra
    /// header, a [`Response`](crate::Response) header, an
    /// [`Accept`](crate::Accept) header) is not an RFC 9110 token. Nothing
    /// was written.
    #[error(
        "invalid header field name {name:?}: a name must be a non-empty RFC 9110 token \
         (ASCII letters, digits and !#$%&'*+-.^_`|~; no spaces, colons or control characters)"
    )]
    InvalidHeaderName {
        /// The name given.
        name: String,
    },
    /// A header field value (or a subprotocol name) given to this crate to
    /// send contains a character RFC 9110 forbids there, such as CR, LF or
    /// NUL, which would end the header line early. Nothing was written.
    #[error("invalid value for header field {name}: {value:?} {reason}")]
    InvalidHeaderValue {
        /// The header field name.
        name: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No TCP connection to the server could be established within the
    /// connect time-out ([`ClientRequest::connect_timeout`](crate::ClientRequest::connect_timeout)).
    #[error("timed out after {timeout:?} connecting to {addr}")]
    ConnectTimedOut {
        /// The host and port connected to.
        addr: String,
        /// The time-out that passed (for each resolved address).
        timeout: std::time::Duration,
    },
    /// The opening handshake did not complete before its deadline
    /// (a client's handshake time-out, a server's
    /// [`accept_with_deadline`](crate::handshake::server::accept_with_deadline)).
    /// The stream's own time-outs have been restored.
    #[error("timed out waiting for the WebSocket handshake")]
    HandshakeTimedOut,
}

/// What was wrong with a TLS certificate ([`Error::Certificate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// It was not issued by an authority this side trusts (a self-signed
    /// or private-CA certificate: give the CA to the client).
    UnknownIssuer,
    /// It is not valid for the host name connected to.
    NameMismatch {
        /// The name expected and the names the certificate has, if known.
        detail: String,
    },
    /// It has expired.
    Expired,
    /// It is not valid yet.
    NotYetValid,
    /// It has been revoked.
    Revoked,
    /// Its signature does not verify.
    BadSignature,
    /// Anything else (rustls' description).
    Other(String),
}

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertificateProblem::UnknownIssuer => {
                f.write_str("issued by an unknown authority (not trusted here)")
            }
            CertificateProblem::NameMismatch { detail } if detail.is_empty() => {
                f.write_str("not valid for this host name")
            }
            CertificateProblem::NameMismatch { detail } => {
                write!(f, "not valid for this host name ({detail})")
            }
            CertificateProblem::Expired => f.write_str("expired"),
            CertificateProblem::NotYetValid => f.write_str("not valid yet"),
            CertificateProblem::Revoked => f.write_str("revoked"),
            CertificateProblem::BadSignature => f.write_str("bad signature"),
            CertificateProblem::Other(s) => f.write_str(s),
        }
    }
}

/// An I/O error; with the feature `tls`, a TLS failure carried in one
/// becomes [`Error::Certificate`] or [`Error::Tls`].
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        #[cfg(feature = "tls")]
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return match crate::tls::certificate_problem(tls) {
                Some(problem) => Error::Certificate(problem),
                None => Error::Tls(crate::tls::describe(tls)),
            };
        }
        Error::Io(e)
    }
}

impl Error {
    /// Turn an [`Error::Io`] that carries a TLS failure into
    /// [`Error::Certificate`] or [`Error::Tls`].
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn classify(self) -> Error {
        match self {
            Error::Io(e) => Error::from(e),
            other => other,
        }
    }

    /// The close code this error calls for when it ends a connection
    /// (RFC 6455 §7.4.1), or `None` for errors that are not the peer's fault
    /// or that happen before or after the WebSocket conversation.
    pub fn close_code(&self) -> Option<CloseCode> {
        use Error::*;
        Some(match self {
            ReservedBits { .. }
            | ReservedOpcode(_)
            | UnmaskedClientFrame
            | MaskedServerFrame
            | ControlFrameTooLong(_)
            | FragmentedControlFrame
            | LengthOverflow
            | NonMinimalLength(_)
            | UnexpectedContinuation
            | ExpectedContinuation
            | CloseFrameTooShort
            | InvalidCloseCode(_) => CloseCode::Protocol,
            InvalidUtf8 | InvalidCompressedData => CloseCode::Invalid,
            FrameTooBig { .. } | MessageTooBig { .. } => CloseCode::Size,
            _ => return None,
        })
    }

    /// The HTTP status a server should answer a failed opening handshake
    /// with (RFC 6455 §4.2.1, §4.2.2), or `None` if the error is not about
    /// the request itself.
    pub fn http_status(&self) -> Option<u16> {
        use Error::*;
        Some(match self {
            HeadTooLarge(_) => 431,
            TooManyHeaders(_) => 431,
            MalformedHttp(_)
            | WrongHttpVersion
            | MissingHeader(_)
            | InvalidHeader { .. }
            | InvalidUrl { .. } => 400,
            MethodNotGet(_) => 405,
            UnsupportedVersion(_) => 426,
            Rejected(status) => *status,
            HandshakeTimedOut => 408,
            _ => return None,
        })
    }
}
