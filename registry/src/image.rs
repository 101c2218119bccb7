//! Droplet import: a droplet (request body or fetched from Cloud Controller)
//! becomes the image `<name>:<droplet_hash>` = rootfs layers + droplet layer +
//! a config running as vcap in `/home/vcap/app`.

use std::io::{BufWriter, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::droplet::{self, Layer, Limits};
use crate::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::rootfs::{Rootfs, RootfsProvider};
use crate::store::{ByteStream, Store};
use crate::{Digest, Error, Name, Tag};

/// Where the droplet bytes come from.
pub enum DropletSource {
    /// The request body.
    Body(ByteStream),
    /// A URI to download it from (Cloud Controller's `droplet_uri`).
    Uri(String),
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The image manifest digest.
    pub digest: Digest,
    /// `false` when the image already existed and nothing was done.
    pub created: bool,
}

/// Turns droplets into images.
pub struct Importer {
    store: Arc<Store>,
    /// One lock per image being imported, so concurrent imports of the same
    /// droplet convert it once and the others find the tag.
    in_flight: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    rootfs: RootfsProvider,
    limits: Limits,
    http: reqwest::Client,
    cc_url: Option<reqwest::Url>,
}

impl Importer {
    /// An importer writing to `store`.
    pub fn new(
        store: Arc<Store>,
        rootfs: RootfsProvider,
        limits: Limits,
        cc_url: Option<&str>,
    ) -> Result<Self, Error> {
        let cc_url = cc_url
            .map(|u| {
                reqwest::Url::parse(u).map_err(|e| Error::Config(format!("--cc-url {u:?}: {e}")))
            })
            .transpose()?;
        // reqwest is built without a default TLS provider; make sure ring is in.
        cube_runtime::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            store,
            in_flight: Default::default(),
            rootfs,
            limits,
            http,
            cc_url,
        })
    }

    /// The same importer fetching droplets from CC with `access`'s TLS
    /// settings (CA, client certificate; never its token).
    pub fn with_access(
        mut self,
        access: &cube_runtime::access::ClientAccess,
    ) -> Result<Self, Error> {
        self.http = access
            .tls_builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(self)
    }

    /// The limits droplets are held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The store images are written to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Imports a droplet as `name:hash`. A no-op when that tag exists.
    pub async fn import(
        &self,
        name: &Name,
        hash: &Tag,
        source: DropletSource,
    ) -> Result<Imported, Error> {
        if let Some(digest) = self.store.tag_target(name, hash).await? {
            return Ok(Imported {
                digest,
                created: false,
            });
        }
        let key = format!("{name}:{hash}");
        let lock = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            in_flight.entry(key.clone()).or_default().clone()
        };
        let result = async {
            let _guard = lock.lock().await;
            // Whoever held the lock before may have published it meanwhile.
            if let Some(digest) = self.store.tag_target(name, hash).await? {
                return Ok(Imported {
                    digest,
                    created: false,
                });
            }
            self.import_new(name, hash, source).await
        }
        .await;
        drop(lock);
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if in_flight
            .get(&key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            in_flight.remove(&key);
        }
        result
    }

    /// How many imports are running or waiting for another import of the same
    /// image to finish.
    pub fn in_flight(&self) -> usize {
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        in_flight.values().map(|l| Arc::strong_count(l) - 1).sum()
    }

    async fn import_new(
        &self,
        name: &Name,
        hash: &Tag,
        source: DropletSource,
    ) -> Result<Imported, Error> {
        let rootfs = self.rootfs.get(&self.store).await?;
        let body = match source {
            DropletSource::Body(body) => body,
            DropletSource::Uri(uri) => self.download(&uri).await?,
        };
        let temp = self.store.temp_path();
        let result = self
            .convert_and_publish(name, hash, &rootfs, body, &temp)
            .await;
        let _ = tokio::fs::remove_file(&temp).await;
        result.map(|digest| Imported {
            digest,
            created: true,
        })
    }

    async fn convert_and_publish(
        &self,
        name: &Name,
        hash: &Tag,
        rootfs: &Rootfs,
        body: ByteStream,
        temp: &std::path::Path,
    ) -> Result<Digest, Error> {
        let layer = self.convert(body, temp).await?;
        check_hash(hash, &layer)?;
        self.store.commit_file(temp, &layer.digest).await?;
        let (config, manifest) = image_documents(name, hash, rootfs, &layer);
        let config_digest = self.store.put_small_blob(config).await?;
        for digest in rootfs
            .layers
            .iter()
            .map(|l| &l.digest)
            .chain([&layer.digest, &config_digest])
        {
            self.store.link_blob(name, digest).await?;
        }
        self.store
            .put_manifest(name, Some(hash), OCI_MANIFEST, manifest)
            .await
    }

    /// Runs the streaming conversion on a blocking thread, writing the layer to
    /// `temp` (fsynced).
    async fn convert(&self, body: ByteStream, temp: &std::path::Path) -> Result<Layer, Error> {
        let reader = SyncIoBridge::new(StreamReader::new(body));
        let limits = self.limits;
        let temp = temp.to_owned();
        tokio::task::spawn_blocking(move || {
            let io = |e: std::io::Error| Error::storage(format!("write {}", temp.display()), e);
            let file = std::fs::File::create(&temp).map_err(io)?;
            let mut out = BufWriter::with_capacity(256 * 1024, file);
            // No BufReader: the conversion reads its input in 1 MiB chunks.
            let layer = droplet::convert(reader, &mut out, &limits)?;
            out.flush().map_err(io)?;
            let file = out.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            Ok(layer)
        })
        .await
        .map_err(|e| Error::Storage(format!("droplet conversion stopped: {e}")))?
    }

    async fn download(&self, uri: &str) -> Result<ByteStream, Error> {
        let url = match &self.cc_url {
            Some(base) => {
                let url = base
                    .join(uri)
                    .map_err(|e| Error::DropletInvalid(format!("droplet uri {uri:?}: {e}")))?;
                if url.origin() != base.origin() {
                    return Err(Error::Denied(format!(
                        "droplet uri {uri:?} is not on the configured Cloud Controller {}",
                        base.origin().ascii_serialization()
                    )));
                }
                url
            }
            None => reqwest::Url::parse(uri)
                .map_err(|e| Error::DropletInvalid(format!("droplet uri {uri:?}: {e}")))?,
        };
        let mut request = self.http.get(url.clone());
        if let Some(base) = &self.cc_url
            && !base.username().is_empty()
        {
            request = request.basic_auth(base.username(), base.password());
        }
        let upstream =
            |e: &dyn std::fmt::Display| Error::Upstream(format!("GET {}: {e}", redact(&url)));
        let response = request.send().await.map_err(|e| upstream(&e))?;
        if !response.status().is_success() {
            return Err(upstream(&response.status()));
        }
        if let Some(length) = response.content_length()
            && length > self.limits.max_compressed
        {
            return Err(Error::TooLarge(format!(
                "droplet is {length} bytes; the limit is {}",
                self.limits.max_compressed
            )));
        }
        Ok(response
            .bytes_stream()
            .map_err(std::io::Error::other)
            .boxed())
    }
}

fn redact(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.to_string()
}

/// A hash that looks like a sha1 or sha256 hex digest must match the droplet.
fn check_hash(hash: &Tag, layer: &Layer) -> Result<(), Error> {
    let hash = hash.as_str();
    let is_hex = hash.bytes().all(|b| b.is_ascii_hexdigit());
    let actual = match hash.len() {
        40 if is_hex => &layer.droplet_sha1,
        64 if is_hex => &layer.droplet_sha256,
        _ => return Ok(()),
    };
    if !actual.eq_ignore_ascii_case(hash) {
        return Err(Error::DigestInvalid(format!(
            "droplet hash is {actual}, not {hash} as requested"
        )));
    }
    Ok(())
}

/// Environment every droplet image gets on top of the rootfs's.
const VCAP_ENV: [&str; 3] = ["HOME=/home/vcap/app", "USER=vcap", "LANG=en_US.UTF-8"];

/// The image config and manifest (deterministic JSON) of a droplet image.
pub fn image_documents(name: &Name, hash: &Tag, rootfs: &Rootfs, layer: &Layer) -> (Bytes, Bytes) {
    let overridden = |e: &String| {
        VCAP_ENV
            .iter()
            .any(|v| v.split('=').next() == e.split('=').next())
    };
    let mut env: Vec<String> = rootfs
        .env
        .iter()
        .filter(|e| !overridden(e))
        .cloned()
        .collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/bin:/usr/bin:/bin".into());
    }
    env.extend(VCAP_ENV.iter().map(|e| e.to_string()));
    let mut labels = serde_json::Map::new();
    labels.insert(
        "org.cloudfoundry.droplet.repository".into(),
        json!(name.as_str()),
    );
    labels.insert("org.cloudfoundry.droplet.hash".into(), json!(hash.as_str()));
    if let Some(command) = &layer.start_command {
        labels.insert("org.cloudfoundry.start-command".into(), json!(command));
    }
    let mut diff_ids = rootfs.diff_ids.clone();
    diff_ids.push(layer.diff_id.to_string());
    let config = json!({
        "architecture": rootfs.architecture,
        "os": rootfs.os,
        "config": {
            "User": "vcap",
            "Env": env,
            "WorkingDir": "/home/vcap/app",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = Bytes::from(config.to_string());
    let mut layers: Vec<serde_json::Value> = rootfs
        .layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size}))
        .collect();
    layers.push(json!({"mediaType": OCI_LAYER_GZIP, "digest": layer.digest.to_string(), "size": layer.size}));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": layers,
    });
    (config, Bytes::from(manifest.to_string()))
}
