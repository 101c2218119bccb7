//! Manifest media types and the parts of a manifest the registry must check:
//! which blobs and manifests it references, and its subject (for referrers).

use serde::Deserialize;

use crate::{Digest, Error};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip-compressed layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Largest manifest accepted.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Every manifest media type the registry stores.
pub const MEDIA_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A reference from a manifest to other content.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Artifact type (OCI 1.1), if any.
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Annotations, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What the registry needs to know about a manifest it is asked to store.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The media type it is served with.
    pub media_type: String,
    /// Blobs (config and layers) that must exist in the repository.
    pub blobs: Vec<Digest>,
    /// Manifests (of an index) that must exist in the repository.
    pub manifests: Vec<Digest>,
    /// The manifest this one refers to (OCI 1.1 `subject`).
    pub subject: Option<Digest>,
    /// The referrers descriptor fields: artifact type and annotations.
    pub artifact_type: Option<String>,
    /// Top-level annotations.
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Parses and checks a manifest body. `content_type` is the request's
/// `Content-Type`; when it names a manifest type, the body must agree with it.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Parsed, Error> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(Error::TooLarge(format!(
            "manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
            body.len()
        )));
    }
    let raw: Raw = serde_json::from_slice(body)
        .map_err(|e| Error::ManifestInvalid(format!("not a JSON manifest: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(Error::ManifestInvalid(
            "schemaVersion must be 2 (schema 1 is not supported)".into(),
        ));
    }
    let content_type = content_type
        .map(|t| t.split(';').next().unwrap_or(t).trim())
        .filter(|t| MEDIA_TYPES.contains(t));
    let media_type = match (content_type, raw.media_type.as_deref()) {
        (Some(header), Some(body)) if header != body => {
            return Err(Error::ManifestInvalid(format!(
                "Content-Type {header} does not match the manifest's mediaType {body}"
            )));
        }
        (Some(header), _) => header.to_owned(),
        (None, Some(body)) if MEDIA_TYPES.contains(&body) => body.to_owned(),
        (None, Some(body)) => {
            return Err(Error::ManifestInvalid(format!(
                "unsupported mediaType {body}"
            )));
        }
        // OCI allows omitting mediaType: decide by shape.
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    let digest = |d: &Descriptor| -> Result<Digest, Error> {
        d.digest.parse().map_err(|_| {
            Error::ManifestInvalid(format!("descriptor digest {:?} is invalid", d.digest))
        })
    };
    let is_index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    if is_index {
        let children = raw
            .manifests
            .ok_or_else(|| Error::ManifestInvalid("an index must have `manifests`".into()))?;
        for child in &children {
            manifests.push(digest(child)?);
        }
    } else {
        let config = raw
            .config
            .ok_or_else(|| Error::ManifestInvalid("an image manifest must have `config`".into()))?;
        blobs.push(digest(&config)?);
        let layers = raw
            .layers
            .ok_or_else(|| Error::ManifestInvalid("an image manifest must have `layers`".into()))?;
        for layer in &layers {
            blobs.push(digest(layer)?);
        }
    }
    let subject = raw.subject.as_ref().map(digest).transpose()?;
    let artifact_type = raw.artifact_type;
    Ok(Parsed {
        media_type,
        blobs,
        manifests,
        subject,
        artifact_type,
        annotations: raw.annotations,
    })
}

/// The config media type of an image manifest, for the referrers artifact type.
pub fn config_media_type(body: &[u8]) -> Option<String> {
    let raw: Raw = serde_json::from_slice(body).ok()?;
    raw.config.map(|c| c.media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(config: &Digest, layer: &Digest) -> String {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": 2},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer.to_string(), "size": 3}],
        })
        .to_string()
    }

    #[test]
    fn image_manifest_lists_its_blobs() {
        let (c, l) = (Digest::of(b"{}"), Digest::of(b"abc"));
        let parsed = parse(Some(OCI_MANIFEST), image(&c, &l).as_bytes()).unwrap();
        assert_eq!(parsed.media_type, OCI_MANIFEST);
        assert_eq!(parsed.blobs, vec![c, l]);
        assert!(parsed.manifests.is_empty());
    }

    #[test]
    fn index_lists_its_manifests() {
        let m = Digest::of(b"m");
        let body = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": m.to_string(), "size": 1}],
        });
        let parsed = parse(None, body.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.media_type, OCI_INDEX);
        assert_eq!(parsed.manifests, vec![m]);
    }

    #[test]
    fn refuses_mismatch_and_garbage() {
        let (c, l) = (Digest::of(b"{}"), Digest::of(b"abc"));
        let body = image(&c, &l);
        assert!(matches!(
            parse(Some(OCI_INDEX), body.as_bytes()),
            Err(Error::ManifestInvalid(_))
        ));
        assert!(matches!(
            parse(None, b"not json"),
            Err(Error::ManifestInvalid(_))
        ));
        assert!(matches!(
            parse(None, br#"{"schemaVersion":1,"name":"x"}"#),
            Err(Error::ManifestInvalid(_))
        ));
        let bad_digest = body.replace(&l.to_string(), "sha256:nothex");
        assert!(matches!(
            parse(None, bad_digest.as_bytes()),
            Err(Error::ManifestInvalid(_))
        ));
        assert!(matches!(
            parse(None, &vec![b' '; MAX_MANIFEST_BYTES + 1]),
            Err(Error::TooLarge(_))
        ));
    }
}
