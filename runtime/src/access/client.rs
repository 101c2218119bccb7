//! The client side: what a Cube component sends to another Cube service.

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use super::Secret;
use crate::Error;

/// The environment variable holding the bearer token a client sends (the
/// staging task's way to report to St8ge; also read by `cube push`).
pub const TOKEN_ENV: &str = "CUBE_AUTH_TOKEN";
/// The environment variable holding the PEM text of the CA to trust (for
/// staging tasks, which cannot read St8ge's files).
pub const CA_PEM_ENV: &str = "CUBE_CA_CERT_PEM";
/// The environment variable holding the PEM client certificate and key a
/// staging task presents when Cube authenticates by certificates alone (no
/// token configured).
pub const IDENTITY_PEM_ENV: &str = "CUBE_CLIENT_IDENTITY_PEM";

/// How a client reaches Cube services: the CA it trusts (besides the system
/// roots), the certificate it presents and the bearer token it sends. The
/// default sends nothing and trusts the system roots.
#[derive(Clone, Default)]
pub struct ClientAccess {
    token: Option<Secret>,
    ca_pem: Option<Arc<[u8]>>,
    identity_pem: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for ClientAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAccess")
            .field("token", &self.token)
            .field("ca", &self.ca_pem.is_some())
            .field(
                "identity",
                &self.identity_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ClientAccess {
    /// A client sending `token`, trusting `ca_pem` and presenting
    /// `identity_pem` (certificate chain and private key, PEM). The PEM is
    /// checked here, so a bad file fails at start-up, naming the flag.
    pub fn new(
        token: Option<Secret>,
        ca_pem: Option<Vec<u8>>,
        identity_pem: Option<Vec<u8>>,
    ) -> Result<Self, Error> {
        if let Some(token) = &token
            && HeaderValue::from_str(&format!("Bearer {}", token.expose())).is_err()
        {
            return Err(Error::Access(
                "the auth token contains characters not allowed in an HTTP header".into(),
            ));
        }
        if let Some(ca) = &ca_pem {
            reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| Error::Access(format!("--ca-cert: not PEM certificates: {e}")))?;
        }
        if let Some(identity) = &identity_pem {
            reqwest::Identity::from_pem(identity).map_err(|_| {
                Error::Access(
                    "--client-cert/--client-key: not a PEM certificate and private key".into(),
                )
            })?;
        }
        Ok(Self {
            token,
            ca_pem: ca_pem.map(Arc::from),
            identity_pem: identity_pem.map(Arc::from),
        })
    }

    /// What a staging task received from St8ge: the token in
    /// `$CUBE_AUTH_TOKEN` and the CA in `$CUBE_CA_CERT_PEM` (either may be unset).
    pub fn from_env() -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::new(
            var(TOKEN_ENV).map(|t| Secret::new(t.trim())),
            var(CA_PEM_ENV).map(String::into_bytes),
            var(IDENTITY_PEM_ENV).map(String::into_bytes),
        )
    }

    /// The same, sending `token` instead.
    pub fn with_token(mut self, token: Option<Secret>) -> Self {
        self.token = token;
        self
    }

    /// The token sent, if any.
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// The PEM of the trusted CA, if any.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// A reqwest builder that trusts the CA and presents the client
    /// certificate, but sends no token: for peers that are not Cube services
    /// (Cloud Controller), which must never see Cube's token.
    pub fn tls_builder(&self) -> reqwest::ClientBuilder {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.ca_pem {
            // Checked in `new`.
            for cert in reqwest::Certificate::from_pem_bundle(ca).unwrap_or_default() {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(identity) = &self.identity_pem
            && let Ok(identity) = reqwest::Identity::from_pem(identity)
        {
            builder = builder.identity(identity);
        }
        builder
    }

    /// A reqwest builder for a client that only talks to Cube services: TLS
    /// as [`Self::tls_builder`], and `Authorization: Bearer <token>` on every
    /// request that sets no `Authorization` of its own.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let builder = self.tls_builder();
        match self.authorization() {
            Some(value) => {
                let mut headers = HeaderMap::new();
                headers.insert(AUTHORIZATION, value);
                builder.default_headers(headers)
            }
            None => builder,
        }
    }

    /// The `Authorization` header value, marked sensitive (kept out of
    /// hyper's and reqwest's debug output).
    pub fn authorization(&self) -> Option<HeaderValue> {
        let token = self.token.as_ref()?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// The environment a staging task needs to call back with this access:
    /// the token and the CA's PEM (a task cannot read this host's files);
    /// without a token, the client certificate and key instead, so a
    /// certificates-only deployment still hears back from its tasks.
    /// Backends keep task environments in Secrets.
    pub fn task_environment(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        match (&self.token, &self.identity_pem) {
            (Some(token), _) => env.push((TOKEN_ENV.to_owned(), token.expose().to_owned())),
            (None, Some(identity)) => env.push((
                IDENTITY_PEM_ENV.to_owned(),
                String::from_utf8_lossy(identity).into_owned(),
            )),
            (None, None) => {}
        }
        if let Some(ca) = &self.ca_pem {
            env.push((
                CA_PEM_ENV.to_owned(),
                String::from_utf8_lossy(ca).into_owned(),
            ));
        }
        env
    }
}
