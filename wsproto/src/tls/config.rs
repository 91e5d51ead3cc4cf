//! Building rustls configs: the crypto provider, server configs from PEM
//! files, client configs from a CA file or the default roots.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The crypto provider every config built here uses: rustls' `ring`
/// provider (its default cipher suites and key exchange groups).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A config file that could not be used: which file, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError {
    /// The file (or `<memory>` for PEM given as bytes).
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for TlsConfigError {}

fn config_error(path: &Path, problem: impl Into<String>) -> TlsConfigError {
    TlsConfigError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| config_error(path, format!("cannot read it: {e}")))
}

fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error(path, format!("not a valid PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(config_error(
            path,
            "contains no certificate (no \"-----BEGIN CERTIFICATE-----\" block)",
        ));
    }
    Ok(certs)
}

/// A server config from a PEM certificate chain (the server's certificate
/// first, then its intermediates) and a PEM private key (PKCS#8, PKCS#1
/// or SEC1), with the [`crypto_provider`] and TLS 1.2 and 1.3.
///
/// Every problem names the file: unreadable, not PEM, no certificate or
/// key in it, a key rustls cannot use, or a key that does not belong to
/// the certificate.
pub fn server_config_from_pem_files(
    chain: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let chain_pem = read_file(chain)?;
    let key_pem = read_file(key)?;
    server_config_from_pem_named(chain, &chain_pem, key, &key_pem)
}

/// Like [`server_config_from_pem_files`], from PEM bytes.
pub fn server_config_from_pem(
    chain: &[u8],
    key: &[u8],
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let memory = Path::new("<memory>");
    server_config_from_pem_named(memory, chain, memory, key)
}

fn server_config_from_pem_named(
    chain_path: &Path,
    chain: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let certs = parse_certs(chain_path, chain)?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        config_error(
            key_path,
            match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "contains no private key (no \"-----BEGIN PRIVATE KEY-----\" block)".to_owned()
                }
                e => format!("not a valid PEM private key: {e}"),
            },
        )
    })?;
    let provider = crypto_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| config_error(key_path, format!("unusable private key: {e}")))?;
    let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(config_error(
                key_path,
                format!(
                    "this private key does not belong to the certificate in {}",
                    chain_path.display()
                ),
            ))
        }
        // The public key could not be compared (an unusual key type):
        // rustls checks the signature at the first handshake instead.
        Err(_) => {}
    }
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(chain_path, format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| config_error(chain_path, format!("unusable certificate or key: {e}")))?;
    Ok(Arc::new(config))
}

/// A client config trusting exactly `roots`, with the [`crypto_provider`].
pub fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A client config trusting the certificates in a PEM file (e.g. your own
/// CA), and nothing else.
pub fn client_config_with_ca_file(path: &Path) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let pem = read_file(path)?;
    client_config_with_ca_named(path, &pem)
}

/// Like [`client_config_with_ca_file`], from PEM bytes.
pub fn client_config_with_ca_pem(pem: &[u8]) -> Result<Arc<ClientConfig>, TlsConfigError> {
    client_config_with_ca_named(Path::new("<memory>"), pem)
}

fn client_config_with_ca_named(
    path: &Path,
    pem: &[u8],
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(path, pem)? {
        roots
            .add(cert)
            .map_err(|e| config_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(client_config(roots))
}

/// The config [`connect`](crate::connect) uses for `wss://`: the WebPKI
/// roots, or with the feature `tls-native-roots` the operating system's
/// certificate store. Built once.
pub fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| client_config(default_roots()))
        .clone()
}

#[cfg(not(feature = "tls-native-roots"))]
fn default_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

#[cfg(feature = "tls-native-roots")]
fn default_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // Certificates the store has but rustls cannot parse are skipped.
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}
