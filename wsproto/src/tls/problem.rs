//! What a TLS failure means for the user: the text of
//! [`Error::Tls`](crate::Error::Tls) and the problem behind
//! [`Error::Certificate`](crate::Error::Certificate).

/// The text of [`Error::Tls`](crate::Error::Tls) for a TLS failure that
/// is not a refused peer certificate: rustls' description, and for the
/// failures of certificate authentication (a server that requires a
/// client certificate, a peer that refused ours) what to do about it.
pub(crate) fn describe(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    let hint = match e {
        // Only a server asks for a certificate, so this side is the client.
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            "the server requires a client certificate and this client sent none: \
             build the ClientConfig with `with_client_auth_cert` (a certificate \
             issued by a CA the server trusts) and connect with `connect_tls_with`"
        }
        rustls::Error::AlertReceived(
            A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied,
        ) => {
            "the peer refused this side's certificate (a server refusing a client \
             certificate: use one issued by a CA the server trusts, currently valid, \
             for client authentication; a client refusing the server's: give the \
             client the CA that issued it)"
        }
        rustls::Error::NoCertificatesPresented => {
            "this side requires a certificate from the peer (a server with a client \
             certificate verifier) and the client sent none"
        }
        _ => return e.to_string(),
    };
    format!("{e}: {hint}")
}

/// What a certificate check found wrong (see
/// [`Error::Certificate`](crate::Error::Certificate)).
pub(crate) fn certificate_problem(e: &rustls::Error) -> Option<crate::error::CertificateProblem> {
    use crate::error::CertificateProblem as P;
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else {
        return None;
    };
    Some(match c {
        C::UnknownIssuer => P::UnknownIssuer,
        C::NotValidForName => P::NameMismatch {
            detail: String::new(),
        },
        C::NotValidForNameContext {
            expected,
            presented,
        } => P::NameMismatch {
            detail: format!(
                "expected {expected:?}, the certificate names {}",
                presented.join(", ")
            ),
        },
        C::Expired | C::ExpiredContext { .. } => P::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => P::NotYetValid,
        C::Revoked => P::Revoked,
        C::BadSignature => P::BadSignature,
        C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => P::Other(
            "it is a CA certificate used as the server's own certificate \
             (make the server certificate with basicConstraints CA:FALSE)"
                .to_owned(),
        ),
        C::Other(other) => P::Other(format!("rejected: {other}")),
        other => P::Other(format!("rejected: {other:?}")),
    })
}
