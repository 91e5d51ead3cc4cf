//! Writes a throw-away test PKI for the TLS interop runs into a directory:
//! `ca.pem` (a CA), `chain.pem` (a server certificate for `localhost` and
//! `127.0.0.1` signed by it), `key.pem` (its key) and `spki.der` (its
//! SubjectPublicKeyInfo, whose SHA-256 a browser can be told to trust
//! with `--ignore-certificate-errors-spki-list`).
//!
//! ```text
//! cargo run -p interop --bin gen_certs -- DIR
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen_certs DIR");
        return ExitCode::from(2);
    };
    match generate(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_certs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wsproto interop test CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("chain.pem"), cert.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    std::fs::write(dir.join("spki.der"), key.public_key_der())?;
    Ok(())
}
