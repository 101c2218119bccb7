//! Making sure Cube's registry holds a droplet's image before its LRP is
//! desired: `HEAD` the manifest, import from CC's `droplet_uri` when missing.

use reqwest::{StatusCode, Url};

use crate::Error;
use crate::translate::DropletRef;

/// Accept header for the manifest probe.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A client for the registry's manifest probe and droplet import.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: Url,
    http: reqwest::Client,
}

/// What [`RegistryClient::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The image was there already.
    Present,
    /// It was imported now.
    Imported,
}

impl RegistryClient {
    /// A client for the registry at `base`.
    pub fn new(base: Url, http: reqwest::Client) -> Self {
        Self { base, http }
    }

    /// The registry's `host[:port]`, the prefix of droplet image references.
    pub fn host(&self) -> String {
        match (self.base.host_str(), self.base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => String::new(),
        }
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        self.base
            .join(path)
            .map_err(|e| Error::Registry(format!("bad URL {path}: {e}")))
    }

    /// Makes sure image `cloudfoundry/<guid>:<hash>` exists.
    pub async fn ensure(&self, droplet: &DropletRef) -> Result<Ensured, Error> {
        let manifest = self.url(&format!(
            "v2/cloudfoundry/{}/manifests/{}",
            droplet.guid, droplet.hash
        ))?;
        let probe = self
            .http
            .head(manifest.clone())
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .map_err(|e| Error::Registry(format!("HEAD {manifest}: {e}")))?;
        match probe.status() {
            s if s.is_success() => return Ok(Ensured::Present),
            StatusCode::NOT_FOUND => {}
            s => return Err(Error::Registry(format!("HEAD {manifest} answered {s}"))),
        }
        let mut import = self.url(&format!("v2/cloudfoundry/{}/droplets", droplet.guid))?;
        import.query_pairs_mut().append_pair("hash", &droplet.hash);
        let response = self
            .http
            .post(import.clone())
            .json(&serde_json::json!({ "uri": droplet.uri }))
            .send()
            .await
            .map_err(|e| Error::Registry(format!("POST {import}: {e}")))?;
        if response.status().is_success() {
            Ok(Ensured::Imported)
        } else {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            Err(Error::Registry(format!(
                "import of droplet {}:{} answered {status}: {body}",
                droplet.guid, droplet.hash
            )))
        }
    }
}
