//! The access flags, one set for every service (flattened into each service
//! subcommand and `cube up`), layered like every flag: `--tls-cert` >
//! `CUBE_TLS_CERT` > the YAML key `tls-cert`.

use std::path::{Path, PathBuf};

use super::{Access, ClientAccess, Secret, ServerTls, read_tokens};
use crate::Error;

/// Flags of a client of Cube services (`cube push`, the staging steps, and
/// every service's own clients through [`AccessArgs`]).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Access")]
pub struct ClientArgs {
    /// Bearer tokens, one per line. A service accepts any of them; every Cube
    /// client sends the first (or $CUBE_AUTH_TOKEN when set). Tokens are only
    /// ever read from a file or the environment, never from the command line.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// CA (PEM) that signed Cube services' certificates, trusted besides the
    /// system roots (staging tasks get its text in $CUBE_CA_CERT_PEM).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate (PEM) presented to Cube services (default with
    /// --tls-client-ca: --tls-cert, so one certificate identifies a service
    /// both ways).
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
}

/// Flags of a Cube service: how it is served and who may call it, plus
/// [`ClientArgs`] for the calls it makes.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Access")]
pub struct AccessArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Authenticate clients presenting a certificate signed by this CA (PEM)
    /// (mTLS; needs --tls-cert). Clients may use a token instead.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Accept only client certificates valid for one of these DNS names or IP
    /// addresses (comma-separated); others get 403.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub tls_client_names: Vec<String>,

    /// How this service reaches the others (CA, client certificate, token).
    #[command(flatten)]
    pub client: ClientArgs,
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Access(format!("cannot read {flag} {}: {e}", path.display())))
}

fn pair<'a>(
    cert: (&str, &'a Option<PathBuf>),
    key: (&str, &'a Option<PathBuf>),
) -> Result<Option<(&'a Path, &'a Path)>, Error> {
    match (cert.1, key.1) {
        (Some(c), Some(k)) => Ok(Some((c.as_path(), k.as_path()))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::Access(format!("{} needs {}", cert.0, key.0))),
        (None, Some(_)) => Err(Error::Access(format!("{} needs {}", key.0, cert.0))),
    }
}

impl ClientArgs {
    /// The client access these flags (and $CUBE_AUTH_TOKEN, $CUBE_CA_CERT_PEM)
    /// describe; `default_identity` is presented when no --client-cert is given.
    pub fn client(&self, default_identity: Option<(&Path, &Path)>) -> Result<ClientAccess, Error> {
        let token = match std::env::var(super::TOKEN_ENV) {
            Ok(token) if !token.trim().is_empty() => Some(Secret::new(token.trim())),
            _ => match &self.auth_token_file {
                Some(path) => read_tokens(path)?.into_iter().next(),
                None => None,
            },
        };
        let ca = match (&self.ca_cert, std::env::var(super::CA_PEM_ENV)) {
            (Some(path), _) => Some(read("--ca-cert", path)?),
            (None, Ok(pem)) if !pem.trim().is_empty() => Some(pem.into_bytes()),
            (None, _) => None,
        };
        let identity = match pair(
            ("--client-cert", &self.client_cert),
            ("--client-key", &self.client_key),
        )?
        .or(default_identity)
        {
            Some((cert, key)) => {
                let mut pem = read("--client-cert", cert)?;
                pem.push(b'\n');
                pem.extend(read("--client-key", key)?);
                Some(pem)
            }
            None => None,
        };
        ClientAccess::new(token, ca, identity)
    }
}

impl AccessArgs {
    /// The server side: TLS when --tls-cert is given, tokens from
    /// --auth-token-file, client certificates with --tls-client-ca.
    pub fn server(&self) -> Result<Access, Error> {
        let files = pair(("--tls-cert", &self.tls_cert), ("--tls-key", &self.tls_key))?;
        let tls = match files {
            Some((cert, key)) => Some(ServerTls {
                cert_chain_pem: read("--tls-cert", cert)?,
                key_pem: read("--tls-key", key)?,
                client_ca_pem: self
                    .tls_client_ca
                    .as_deref()
                    .map(|ca| read("--tls-client-ca", ca))
                    .transpose()?,
            }),
            None if self.tls_client_ca.is_some() => {
                return Err(Error::Access(
                    "--tls-client-ca needs --tls-cert and --tls-key (client certificates need TLS)"
                        .into(),
                ));
            }
            None => None,
        };
        let tokens = match &self.client.auth_token_file {
            Some(path) => read_tokens(path)?,
            None => Vec::new(),
        };
        Access::new(tls, tokens, &self.tls_client_names)
    }

    /// The client side of a service: [`ClientArgs::client`], presenting
    /// --tls-cert when the deployment uses client certificates
    /// (--tls-client-ca) and no --client-cert is given.
    pub fn client(&self) -> Result<ClientAccess, Error> {
        let own = match (&self.tls_client_ca, &self.tls_cert, &self.tls_key) {
            (Some(_), Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => None,
        };
        self.client.client(own)
    }

    /// Whether the services are served over HTTPS (their URLs start with `https://`).
    pub fn is_tls(&self) -> bool {
        self.tls_cert.is_some()
    }
}
