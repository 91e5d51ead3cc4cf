//! Certificates for the TLS tests, made by `rcgen` in the test (never
//! checked in): a CA and a server certificate it signed.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use wsproto::tls::{self, rustls};

/// A test CA and a server certificate it signed.
pub struct Pki {
    pub ca_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
}

pub fn pki_with(names: &[&str], expired: bool) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wsproto test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain_pem: format!("{}{}", cert.pem(), ca.pem()),
        key_pem: key.serialize_pem(),
    }
}

pub fn pki() -> Pki {
    pki_with(&["localhost", "127.0.0.1"], false)
}

impl Pki {
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        tls::server_config_from_pem(self.chain_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        tls::client_config_with_ca_pem(self.ca_pem.as_bytes()).unwrap()
    }
}
