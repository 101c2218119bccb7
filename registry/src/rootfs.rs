//! The base layers of droplet images: read once from a local OCI image layout
//! or pulled once from an upstream registry with `oci-client`, copied into the
//! store (digest-checked) and remembered.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use tokio::sync::OnceCell;
use tokio_util::io::ReaderStream;

use crate::store::Store;
use crate::{Digest, Error};

/// Where the rootfs comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSource {
    /// An OCI image layout directory (`index.json`, `blobs/sha256/...`).
    Layout(PathBuf),
    /// An image reference in an upstream registry; `insecure` uses plain HTTP.
    Remote {
        /// e.g. `docker.io/cloudfoundry/cflinuxfs4:latest`.
        reference: String,
        /// Talk HTTP instead of HTTPS.
        insecure: bool,
    },
}

impl RootfsSource {
    /// An existing directory is a layout; anything else is a reference.
    pub fn parse(text: &str, insecure: bool) -> Self {
        let path = Path::new(text);
        if path.is_dir() {
            Self::Layout(path.to_owned())
        } else {
            Self::Remote {
                reference: text.to_owned(),
                insecure,
            }
        }
    }
}

/// One base layer, already in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseLayer {
    /// OCI media type of the layer.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// The base image every droplet image starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rootfs {
    /// Layers, bottom first.
    pub layers: Vec<BaseLayer>,
    /// Uncompressed layer digests, as in the base config.
    pub diff_ids: Vec<String>,
    /// Environment of the base image (`PATH` and friends).
    pub env: Vec<String>,
    /// CPU architecture (`amd64` when unknown).
    pub architecture: String,
    /// Operating system (`linux` when unknown).
    pub os: String,
}

/// Resolves the rootfs on first use and keeps it; a failure is retried on the
/// next import.
pub struct RootfsProvider {
    source: Option<RootfsSource>,
    resolved: OnceCell<Arc<Rootfs>>,
}

impl RootfsProvider {
    /// A provider for `source`; `None` gives droplet images with no base layers.
    pub fn new(source: Option<RootfsSource>) -> Self {
        Self {
            source,
            resolved: OnceCell::new(),
        }
    }

    /// The rootfs, copying its blobs into `store` the first time.
    pub async fn get(&self, store: &Store) -> Result<Arc<Rootfs>, Error> {
        self.resolved
            .get_or_try_init(|| async {
                let rootfs = match &self.source {
                    None => Rootfs {
                        architecture: "amd64".into(),
                        os: "linux".into(),
                        ..Rootfs::default()
                    },
                    Some(RootfsSource::Layout(dir)) => from_layout(dir, store).await?,
                    Some(RootfsSource::Remote {
                        reference,
                        insecure,
                    }) => from_registry(reference, *insecure, store).await?,
                };
                tracing::info!(layers = rootfs.layers.len(), "rootfs ready");
                Ok(Arc::new(rootfs))
            })
            .await
            .cloned()
    }
}

/// OCI media type for a (possibly Docker) layer media type.
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            crate::manifest::OCI_LAYER_GZIP.into()
        }
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".into()
        }
        other => other.into(),
    }
}

fn layout_blob(dir: &Path, digest: &str) -> Result<PathBuf, Error> {
    let digest: Digest = digest
        .parse()
        .map_err(|e| Error::Config(format!("rootfs layout {}: {e}", dir.display())))?;
    Ok(dir.join("blobs/sha256").join(digest.hex()))
}

fn from_config(config: &ImageConfiguration) -> (Vec<String>, Vec<String>, String, String) {
    let env = config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    let diff_ids = config.rootfs().diff_ids().clone();
    (
        env,
        diff_ids,
        config.architecture().to_string(),
        config.os().to_string(),
    )
}

async fn from_layout(dir: &Path, store: &Store) -> Result<Rootfs, Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::Config(format!("rootfs layout {}: {what}: {e}", dir.display()))
    };
    let index = ImageIndex::from_file(dir.join("index.json")).map_err(|e| bad("index.json", &e))?;
    let mut descriptor = index
        .manifests()
        .first()
        .cloned()
        .ok_or_else(|| bad("index.json", &"lists no manifest"))?;
    // One level of nesting: an index pointing at a (multi-platform) index.
    if *descriptor.media_type() == MediaType::ImageIndex {
        let nested = ImageIndex::from_file(layout_blob(dir, descriptor.digest().as_ref())?)
            .map_err(|e| bad("nested index", &e))?;
        descriptor = nested
            .manifests()
            .iter()
            .find(|d| {
                d.platform().as_ref().is_none_or(|p| {
                    p.os().to_string() == "linux" && p.architecture().to_string() == "amd64"
                })
            })
            .or_else(|| nested.manifests().first())
            .cloned()
            .ok_or_else(|| bad("nested index", &"lists no manifest"))?;
    }
    let manifest = ImageManifest::from_file(layout_blob(dir, descriptor.digest().as_ref())?)
        .map_err(|e| bad("manifest", &e))?;
    let config =
        ImageConfiguration::from_file(layout_blob(dir, manifest.config().digest().as_ref())?)
            .map_err(|e| bad("config", &e))?;
    let mut layers = Vec::new();
    for layer in manifest.layers() {
        let digest: Digest = layer.digest().to_string().parse()?;
        if store.blob_size_global(&digest).await?.is_none() {
            let path = layout_blob(dir, layer.digest().as_ref())?;
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| bad(&path.display().to_string(), &e))?;
            store
                .write_blob(ReaderStream::new(file).boxed(), Some(&digest))
                .await?;
        }
        layers.push(BaseLayer {
            media_type: oci_layer_type(layer.media_type().as_ref()),
            digest,
            size: layer.size(),
        });
    }
    let (env, diff_ids, architecture, os) = from_config(&config);
    Ok(Rootfs {
        layers,
        diff_ids,
        env,
        architecture,
        os,
    })
}

async fn from_registry(reference: &str, insecure: bool, store: &Store) -> Result<Rootfs, Error> {
    let upstream = |e: &dyn std::fmt::Display| Error::Upstream(format!("rootfs {reference}: {e}"));
    let image: oci_client::Reference = reference.parse().map_err(|e| upstream(&e))?;
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: if insecure {
            oci_client::client::ClientProtocol::Http
        } else {
            oci_client::client::ClientProtocol::Https
        },
        ..Default::default()
    });
    let auth = oci_client::secrets::RegistryAuth::Anonymous;
    let (manifest, _digest, config) = client
        .pull_manifest_and_config(&image, &auth)
        .await
        .map_err(|e| upstream(&e))?;
    let config = ImageConfiguration::from_reader(config.as_bytes()).map_err(|e| upstream(&e))?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        let digest: Digest = layer.digest.parse()?;
        if store.blob_size_global(&digest).await?.is_none() {
            let stream = client
                .pull_blob_stream(&image, layer)
                .await
                .map_err(|e| upstream(&e))?;
            store
                .write_blob(
                    stream.stream.map_err(std::io::Error::other).boxed(),
                    Some(&digest),
                )
                .await?;
        }
        layers.push(BaseLayer {
            media_type: oci_layer_type(&layer.media_type),
            digest,
            size: u64::try_from(layer.size).unwrap_or_default(),
        });
    }
    let (env, diff_ids, architecture, os) = from_config(&config);
    Ok(Rootfs {
        layers,
        diff_ids,
        env,
        architecture,
        os,
    })
}
