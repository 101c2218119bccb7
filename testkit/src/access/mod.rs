//! The access test PKI (see `pki/README.md`): a CA, one certificate every
//! service uses both as server and as client, a client of the same CA with
//! another name, and a certificate from a rogue CA.

use std::path::{Path, PathBuf};

/// The CA of the services' certificates.
pub const CA_PEM: &str = include_str!("pki/ca.pem");
/// The services' certificate (server and client; `127.0.0.1`, `localhost`).
pub const SERVICE_CERT_PEM: &str = include_str!("pki/service.pem");
/// Its key.
pub const SERVICE_KEY_PEM: &str = include_str!("pki/service-key.pem");
/// The services' certificate again with an RSA 2048 key (Cloud Controller's
/// HTTP client loads only RSA client keys).
pub const SERVICE_RSA_CERT_PEM: &str = include_str!("pki/service-rsa.pem");
/// Its key (PKCS#8).
pub const SERVICE_RSA_KEY_PEM: &str = include_str!("pki/service-rsa-key.pem");
/// A client certificate of the same CA, valid only for `other.cube.internal`.
pub const OTHER_CERT_PEM: &str = include_str!("pki/other.pem");
/// Its key.
pub const OTHER_KEY_PEM: &str = include_str!("pki/other-key.pem");
/// A certificate from another CA.
pub const ROGUE_CERT_PEM: &str = include_str!("pki/rogue.pem");
/// Its key.
pub const ROGUE_KEY_PEM: &str = include_str!("pki/rogue-key.pem");

/// The PKI written to files, for flags such as `--tls-cert`.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// [`CA_PEM`].
    pub ca: PathBuf,
    /// [`SERVICE_CERT_PEM`].
    pub cert: PathBuf,
    /// [`SERVICE_KEY_PEM`].
    pub key: PathBuf,
}

/// Writes the CA and the service certificate and key into `dir`.
pub fn write_pki(dir: &Path) -> std::io::Result<PkiFiles> {
    let write = |name: &str, pem: &str| -> std::io::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, pem)?;
        Ok(path)
    };
    Ok(PkiFiles {
        ca: write("ca.pem", CA_PEM)?,
        cert: write("service.pem", SERVICE_CERT_PEM)?,
        key: write("service-key.pem", SERVICE_KEY_PEM)?,
    })
}
