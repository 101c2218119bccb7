//! Access control for every Cube API, configured once: TLS, client
//! certificates (mTLS) and bearer tokens.
//!
//! The server side is an [`Access`]: an optional TLS configuration (served by
//! [`crate::serve_with`]) and a [`Policy`] enforced by [`Access::guard`]. The
//! client side is a [`ClientAccess`]: the CA to trust, the certificate to
//! present and the token to send. [`AccessArgs`] are the flags that build both,
//! flattened into every service subcommand and `cube up`.
//!
//! What a request gets (decided by [`Policy::check`]):
//!
//! | request presents | answer |
//! |---|---|
//! | nothing (no `Authorization: Bearer`, no client certificate) | 401, `WWW-Authenticate: Bearer realm="cube"` |
//! | a bearer token that is not in the token file | 401, `WWW-Authenticate: Bearer realm="cube", error="invalid_token"` (RFC 6750) |
//! | a token from the token file | served |
//! | a client certificate signed by `--tls-client-ca` | served, unless `--tls-client-names` is set and the certificate is valid for none of them: 403 |
//! | a client certificate from another CA | refused during the TLS handshake |
//!
//! Credentials are compared in constant time, never logged, and every type
//! holding one prints it as `<redacted>` in `Debug`.

mod args;
mod client;

pub use args::{AccessArgs, ClientArgs};
pub use client::{CA_PEM_ENV, ClientAccess, IDENTITY_PEM_ENV, TOKEN_ENV};

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;

use crate::Error;

/// A credential (token, password, key). `Debug` never shows it; read it with
/// [`Secret::expose`] only where it is sent or compared.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let differ = a
        .iter()
        .zip(b.iter())
        .fold(u8::from(a.len() != b.len()), |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(differ) == 0
}

/// Reads a token file: one token per line; blank lines and lines starting
/// with `#` are skipped. A file without tokens is an error (it would lock
/// everyone out).
pub fn read_tokens(path: &Path) -> Result<Vec<Secret>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Access(format!("cannot read token file {}: {e}", path.display())))?;
    let tokens: Vec<Secret> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(Secret::new)
        .collect();
    if tokens.is_empty() {
        return Err(Error::Access(format!(
            "token file {} holds no token (one per line)",
            path.display()
        )));
    }
    if tokens
        .iter()
        .any(|t| t.expose().contains(char::is_whitespace))
    {
        return Err(Error::Access(format!(
            "token file {}: a token contains whitespace (one token per line)",
            path.display()
        )));
    }
    Ok(tokens)
}

/// The certificate a connection's client presented, already verified against
/// the client CA by the TLS handshake. [`crate::serve_with`] puts it in each
/// request's extensions.
#[derive(Clone)]
pub struct PeerCertificate(pub Arc<CertificateDer<'static>>);

impl std::fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerCertificate(..)")
    }
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// No credentials are required.
    Anyone,
    /// A token from the token file.
    Token,
    /// A verified (and allowed) client certificate.
    Certificate,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential: 401.
    Missing,
    /// A bearer token that is not accepted: 401 `invalid_token`.
    InvalidToken,
    /// A valid client certificate whose identity is not allowed: 403.
    Forbidden(String),
}

impl Refusal {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The `WWW-Authenticate` challenge to send with a 401.
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            Self::Missing => Some("Bearer realm=\"cube\""),
            Self::InvalidToken => Some("Bearer realm=\"cube\", error=\"invalid_token\""),
            Self::Forbidden(_) => None,
        }
    }

    /// A message for the error body (never contains the credential).
    pub fn message(&self) -> String {
        match self {
            Self::Missing => {
                "authentication required: send `Authorization: Bearer <token>` or a client certificate"
                    .into()
            }
            Self::InvalidToken => "the bearer token is not valid".into(),
            Self::Forbidden(why) => why.clone(),
        }
    }
}

impl IntoResponse for Refusal {
    /// The refusal in Cube's JSON error shape, `{"error":{"code","message"}}`.
    fn into_response(self) -> Response {
        let code = match self.status() {
            StatusCode::FORBIDDEN => "Forbidden",
            _ => "Unauthorized",
        };
        let body = serde_json::json!({ "error": { "code": code, "message": self.message() } });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// Who may call an API.
#[derive(Default)]
pub struct Policy {
    tokens: Vec<Secret>,
    client_certificates: bool,
    client_names: Vec<ServerName<'static>>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("tokens", &self.tokens.len())
            .field("client_certificates", &self.client_certificates)
            .field("client_names", &self.client_names)
            .finish()
    }
}

impl Policy {
    /// Whether requests need a credential at all.
    pub fn required(&self) -> bool {
        !self.tokens.is_empty() || self.client_certificates
    }

    /// Whether `token` is one of the accepted tokens (constant time; every
    /// token is compared).
    pub fn accepts_token(&self, token: &str) -> bool {
        self.tokens.iter().fold(false, |found, accepted| {
            found | constant_time_eq(accepted.expose().as_bytes(), token.as_bytes())
        })
    }

    /// Whether a verified client certificate may call the API.
    pub fn accepts_certificate(&self, peer: &PeerCertificate) -> Result<(), Refusal> {
        if !self.client_certificates {
            return Err(Refusal::Forbidden(
                "client certificates are not accepted here".into(),
            ));
        }
        if self.client_names.is_empty() {
            return Ok(());
        }
        let cert = webpki::EndEntityCert::try_from(peer.0.as_ref()).map_err(|e| {
            Refusal::Forbidden(format!("the client certificate cannot be read: {e}"))
        })?;
        if self
            .client_names
            .iter()
            .any(|name| cert.verify_is_valid_for_subject_name(name).is_ok())
        {
            Ok(())
        } else {
            Err(Refusal::Forbidden(
                "the client certificate is not valid for any allowed name".into(),
            ))
        }
    }

    /// Decides a request from its `Authorization` header and the client
    /// certificate of its connection (see the module docs for the table).
    pub fn check(
        &self,
        authorization: Option<&HeaderValue>,
        peer: Option<&PeerCertificate>,
    ) -> Result<Principal, Refusal> {
        if !self.required() {
            return Ok(Principal::Anyone);
        }
        let bearer = authorization
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match (bearer, peer) {
            (Some(token), _) if !self.tokens.is_empty() && self.accepts_token(token) => {
                Ok(Principal::Token)
            }
            (Some(_), None) => Err(Refusal::InvalidToken),
            (Some(_), Some(peer)) | (None, Some(peer)) => {
                self.accepts_certificate(peer)?;
                Ok(Principal::Certificate)
            }
            (None, None) => Err(Refusal::Missing),
        }
    }
}

/// The PEM files of a TLS server.
pub struct ServerTls {
    /// Certificate chain, leaf first.
    pub cert_chain_pem: Vec<u8>,
    /// The leaf's private key.
    pub key_pem: Vec<u8>,
    /// CA whose client certificates authenticate requests (mTLS).
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("key_pem", &"<redacted>")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// A server's access settings: TLS (optional) and who may call it.
/// The default serves plain HTTP to anyone.
#[derive(Clone, Default, Debug)]
pub struct Access {
    tls: Option<Arc<rustls::ServerConfig>>,
    policy: Arc<Policy>,
}

impl Access {
    /// Plain HTTP, no credentials needed.
    pub fn open() -> Self {
        Self::default()
    }

    /// Access from PEM material, accepted `tokens` and the names a client
    /// certificate must be valid for (empty: any certificate of the client CA).
    pub fn new(
        tls: Option<ServerTls>,
        tokens: Vec<Secret>,
        client_names: &[String],
    ) -> Result<Self, Error> {
        let client_certificates = tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
        if !client_names.is_empty() && !client_certificates {
            return Err(Error::Access(
                "client certificate names need a client CA (--tls-client-ca)".into(),
            ));
        }
        let client_names = client_names
            .iter()
            .map(|name| {
                ServerName::try_from(name.clone()).map_err(|e| {
                    Error::Access(format!(
                        "{name:?} is not a DNS name or IP address for --tls-client-names: {e}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tls = tls.map(|tls| server_config(&tls)).transpose()?;
        Ok(Self {
            tls: tls.map(Arc::new),
            policy: Arc::new(Policy {
                tokens,
                client_certificates,
                client_names,
            }),
        })
    }

    /// The TLS configuration, when serving HTTPS.
    pub fn tls(&self) -> Option<&Arc<rustls::ServerConfig>> {
        self.tls.as_ref()
    }

    /// Who may call.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// `router` answering 401/403 to requests for its routes that the policy
    /// refuses (unchanged when no credential is required). Applied to the
    /// routes only, so routers guarded differently can be merged; a path no
    /// route matches gets the router's 404 either way.
    pub fn guard<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        self.guard_except(router, &[])
    }

    /// [`Self::guard`], leaving paths under `public` (exact, or followed by
    /// `/`) open: content that holds no secret and that clients fetch without
    /// Cube's credentials (St8ge's shipped buildpacks).
    pub fn guard_except<S: Clone + Send + Sync + 'static>(
        &self,
        router: Router<S>,
        public: &'static [&'static str],
    ) -> Router<S> {
        if !self.policy.required() {
            return router;
        }
        router.route_layer(axum::middleware::from_fn_with_state(
            (self.policy.clone(), public),
            enforce,
        ))
    }
}

fn is_public(path: &str, public: &[&str]) -> bool {
    public.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

async fn enforce(
    State((policy, public)): State<(Arc<Policy>, &'static [&'static str])>,
    request: Request,
    next: Next,
) -> Response {
    if is_public(request.uri().path(), public) {
        return next.run(request).await;
    }
    let verdict = policy.check(
        request.headers().get(header::AUTHORIZATION),
        request.extensions().get::<PeerCertificate>(),
    );
    match verdict {
        Ok(_) => next.run(request).await,
        Err(refusal) => {
            tracing::debug!(
                method = %request.method(),
                path = request.uri().path(),
                status = refusal.status().as_u16(),
                "request refused: {}",
                refusal.message()
            );
            refusal.into_response()
        }
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Access(format!("{what}: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Access(format!("{what}: no certificate in the file")));
    }
    Ok(certs)
}

fn server_config(tls: &ServerTls) -> Result<rustls::ServerConfig, Error> {
    crate::install_crypto_provider();
    let chain = certificates(&tls.cert_chain_pem, "--tls-cert")?;
    // The key's parse error would not contain the key, but keep it generic anyway.
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|_| Error::Access("--tls-key: no PEM private key in the file".into()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &tls.client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca, "--tls-client-ca")? {
                roots
                    .add(cert)
                    .map_err(|e| Error::Access(format!("--tls-client-ca: {e}")))?;
            }
            // Certificates are optional at the TLS level so that a client
            // without one gets a readable 401 (or uses a token); one that is
            // presented must be valid, or the handshake fails.
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Access(format!("--tls-client-ca: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| Error::Access(format!("--tls-cert/--tls-key do not match: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests;
