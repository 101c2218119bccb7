//! The fake BBS's test PKI (see `pki/README.md`) and its mutual-TLS server
//! configuration: like the real BBS, it refuses clients without a
//! certificate signed by its CA.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// The CA that signed the fake BBS's and the test client's certificates.
pub const CA_PEM: &str = include_str!("pki/bbs-ca.pem");
/// The fake BBS's certificate (SAN `127.0.0.1`, `localhost`).
pub const SERVER_CERT_PEM: &str = include_str!("pki/server.pem");
/// The fake BBS's key.
pub const SERVER_KEY_PEM: &str = include_str!("pki/server-key.pem");
/// A client certificate the fake BBS accepts.
pub const CLIENT_CERT_PEM: &str = include_str!("pki/client.pem");
/// Its key.
pub const CLIENT_KEY_PEM: &str = include_str!("pki/client-key.pem");
/// A client certificate from another CA, which the fake BBS refuses.
pub const ROGUE_CLIENT_CERT_PEM: &str = include_str!("pki/rogue-client.pem");
/// Its key.
pub const ROGUE_CLIENT_KEY_PEM: &str = include_str!("pki/rogue-client-key.pem");

/// The server side of mutual TLS: the server certificate, and client
/// certificates required and verified against [`CA_PEM`].
pub(crate) fn server_config() -> Result<Arc<rustls::ServerConfig>, String> {
    // Err only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(CA_PEM.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| e.to_string())?;
    let chain = CertificateDer::pem_slice_iter(SERVER_CERT_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key =
        PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).map_err(|e| e.to_string())?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
