//! Which end of a connection this is.

/// Which end of the connection this is. The role is data, not a separate
/// type: it decides the masking direction (RFC 6455 §5.1) and who closes the
/// TCP connection first (§7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepts connections; receives masked frames, sends unmasked ones.
    Server,
    /// Opens connections; sends masked frames, receives unmasked ones.
    Client,
}
