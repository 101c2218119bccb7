//! Content-addressed storage with registry semantics on top of a [`Backend`].
//!
//! Key layout (the same for every backend):
//!
//! ```text
//! blobs/sha256/<hh>/<hex>                                  blob and manifest content
//! repositories/<name>/_layers/sha256/<hex>                 blob linked into a repository (empty)
//! repositories/<name>/_manifests/revisions/sha256/<hex>    manifest in a repository (its media type)
//! repositories/<name>/_manifests/tags/<tag>                tag (the manifest digest)
//! ```
//!
//! Incoming content is streamed into a temp file under `<data-dir>/_tmp`
//! while hashed, fsynced, checked against the expected digest, and only then
//! moved into place. Upload sessions live under `<data-dir>/_uploads/<id>`.
//! Writes happen in dependency order (blob, then revision, then tag), so a crash
//! never leaves a reference to missing content.

pub mod backend;
pub mod cache;
mod file_stream;
pub mod fs;
pub mod object;
mod refs;
mod upload;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

pub use backend::{Backend, ByteStream, Meta};
pub use cache::BlobCache;
pub use fs::FsBackend;
pub use object::ObjectBackend;

use crate::digest::Hasher;
use crate::manifest::MAX_MANIFEST_BYTES;
use crate::{Digest, Error, Name, Tag};
use refs::RefCache;

/// Repositories, blobs, manifests, tags and uploads.
pub struct Store {
    backend: Arc<dyn Backend>,
    tmp: PathBuf,
    uploads: PathBuf,
    max_blob_bytes: u64,
    sessions: Mutex<upload::Sessions>,
    cache: BlobCache,
    refs: RefCache,
}

/// A blob's body: bytes in memory, or a stream from the backend.
pub enum BlobBody {
    /// From [`BlobCache`].
    Memory(Bytes),
    /// Streamed from the backend.
    Stream(ByteStream),
}

/// Age after which reading a blob's existence refreshes its repository link.
pub const LINK_REFRESH: Duration = Duration::from_secs(600);

/// Storage key of a blob's content.
pub fn blob_key(digest: &Digest) -> String {
    format!("blobs/sha256/{}/{}", &digest.hex()[..2], digest.hex())
}

fn layer_link(name: &Name, digest: &Digest) -> String {
    format!("repositories/{name}/_layers/sha256/{}", digest.hex())
}

fn revision_key(name: &Name, digest: &Digest) -> String {
    format!(
        "repositories/{name}/_manifests/revisions/sha256/{}",
        digest.hex()
    )
}

fn tags_prefix(name: &Name) -> String {
    format!("repositories/{name}/_manifests/tags")
}

fn tag_key(name: &Name, tag: &Tag) -> String {
    format!("{}/{tag}", tags_prefix(name))
}

/// The digest at the end of a `.../sha256/[<hh>/]<hex>` key.
pub fn digest_of_key(key: &str) -> Option<Digest> {
    if !key.contains("sha256/") {
        return None;
    }
    let hex = key.rsplit('/').next()?;
    format!("sha256:{hex}").parse().ok()
}

impl Store {
    /// A store over `backend`, with temp files and uploads under `data_dir`.
    /// Leftover temp files of an earlier crash are removed.
    pub async fn open(
        data_dir: &Path,
        backend: Arc<dyn Backend>,
        max_blob_bytes: u64,
    ) -> Result<Self, Error> {
        let tmp = data_dir.join("_tmp");
        let uploads = data_dir.join("_uploads");
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        for dir in [&tmp, &uploads] {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::storage(format!("create {}", dir.display()), e))?;
        }
        Ok(Self {
            backend,
            tmp,
            uploads,
            max_blob_bytes,
            sessions: Mutex::default(),
            cache: BlobCache::new(0),
            refs: RefCache::default(),
        })
    }

    /// A store whose objects are files under `data_dir`.
    pub async fn filesystem(data_dir: &Path, max_blob_bytes: u64) -> Result<Self, Error> {
        let backend = FsBackend::new(data_dir.to_owned(), data_dir.join("_tmp"));
        Self::open(data_dir, Arc::new(backend), max_blob_bytes).await
    }

    /// Keeps up to `capacity` bytes of hot blobs in memory (0: none).
    pub fn cache_blobs(&mut self, capacity: u64) {
        self.cache = BlobCache::new(capacity);
    }

    /// The backend, for garbage collection and readiness.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The largest blob accepted.
    pub fn max_blob_bytes(&self) -> u64 {
        self.max_blob_bytes
    }

    /// A fresh path for a temp file on the store's filesystem.
    pub fn temp_path(&self) -> PathBuf {
        self.tmp.join(fs::random_id())
    }

    /// Whether a temp file can be written and synced (readiness).
    pub async fn check_writable(&self) -> Result<(), Error> {
        let path = self.temp_path();
        let result = async {
            let mut file = tokio::fs::File::create(&path).await?;
            file.write_all(b"ok").await?;
            file.sync_all().await
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        result.map_err(|e| Error::storage(format!("write {}", path.display()), e))
    }

    // ---- blobs ----

    /// Size of a blob stored anywhere, `None` if absent.
    pub async fn blob_size_global(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        Ok(self.backend.head(&blob_key(digest)).await?.map(|m| m.size))
    }

    /// Size of a blob that belongs to `name` (as a layer/config or a manifest).
    ///
    /// A layer link older than [`LINK_REFRESH`] is rewritten: a client that
    /// checks a blob exists is about to reference it, and a young link keeps
    /// gc away from the blob meanwhile.
    pub async fn blob_size(&self, name: &Name, digest: &Digest) -> Result<Option<u64>, Error> {
        let link = layer_link(name, digest);
        let linked = match self.backend.head(&link).await? {
            Some(meta) => {
                let age = SystemTime::now()
                    .duration_since(meta.modified)
                    .unwrap_or_default();
                if age > LINK_REFRESH {
                    self.backend.put_bytes(&link, Bytes::new()).await?;
                }
                true
            }
            None => self
                .backend
                .head(&revision_key(name, digest))
                .await?
                .is_some(),
        };
        if !linked {
            return Ok(None);
        }
        self.blob_size_global(digest).await
    }

    /// Streams a blob (or a byte range of it) that belongs to `name`.
    pub async fn blob_stream(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, Error> {
        self.backend
            .get(&blob_key(digest), range)
            .await?
            .ok_or_else(|| Error::BlobUnknown(digest.to_string()))
    }

    /// The body of a blob of `size` bytes (or a byte range of it) whose
    /// existence the caller has just checked: from memory when the blob is
    /// cached or small enough to be (then it is read whole and kept), else
    /// streamed.
    pub async fn blob_body(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
        size: u64,
    ) -> Result<BlobBody, Error> {
        if !self.cache.admits(size) {
            return Ok(BlobBody::Stream(self.blob_stream(digest, range).await?));
        }
        let blob = self
            .cache
            .get_or_read(digest, size, || async {
                let mut stream = self.blob_stream(digest, None).await?;
                let mut whole = bytes::BytesMut::with_capacity(size as usize);
                while let Some(chunk) = stream.next().await {
                    whole.extend_from_slice(&chunk.map_err(|e| Error::storage("read blob", e))?);
                }
                if whole.len() as u64 != size {
                    return Err(Error::Storage(format!(
                        "blob {digest} is {} bytes, expected {size}",
                        whole.len()
                    )));
                }
                Ok(whole.freeze())
            })
            .await?;
        Ok(BlobBody::Memory(match range {
            Some(r) if r.start <= r.end && r.end <= size => {
                blob.slice(r.start as usize..r.end as usize)
            }
            Some(r) => {
                return Err(Error::Storage(format!(
                    "range {r:?} outside blob {digest} of {size} bytes"
                )));
            }
            None => blob,
        }))
    }

    /// Links an existing blob into `name` (after upload, or a cross-repo mount).
    /// Rewriting the link refreshes its age, which protects it from gc.
    pub async fn link_blob(&self, name: &Name, digest: &Digest) -> Result<(), Error> {
        self.backend
            .put_bytes(&layer_link(name, digest), Bytes::new())
            .await
    }

    /// Removes a blob from `name`; its content stays until gc. `false` if it was
    /// not linked.
    pub async fn unlink_blob(&self, name: &Name, digest: &Digest) -> Result<bool, Error> {
        let key = layer_link(name, digest);
        if self.backend.head(&key).await?.is_none() {
            return Ok(false);
        }
        self.backend.delete(&key).await?;
        Ok(true)
    }

    /// Streams `body` into the store, hashing it; refuses it (storing nothing)
    /// when it exceeds the size limit or does not match `expected`.
    pub async fn write_blob(
        &self,
        body: ByteStream,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), Error> {
        let path = self.temp_path();
        let result = async {
            let mut hasher = Hasher::default();
            write_stream(&path, body, &mut hasher, false, self.max_blob_bytes).await?;
            let size = hasher.len();
            let digest = hasher.finish();
            if let Some(expected) = expected
                && *expected != digest
            {
                return Err(Error::DigestInvalid(format!(
                    "content has digest {digest}, not {expected}"
                )));
            }
            self.commit_file(&path, &digest).await?;
            Ok((digest, size))
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        result
    }

    /// Moves a complete, fsynced, digest-checked local file into place as the
    /// blob `digest`. An existing blob is kept and the file dropped.
    pub async fn commit_file(&self, path: &Path, digest: &Digest) -> Result<(), Error> {
        let key = blob_key(digest);
        if self.backend.head(&key).await?.is_some() {
            let _ = tokio::fs::remove_file(path).await;
            return Ok(());
        }
        self.backend.put_file(&key, path).await
    }

    /// Stores small content (a manifest or config) as a blob.
    pub async fn put_small_blob(&self, data: Bytes) -> Result<Digest, Error> {
        let digest = Digest::of(&data);
        let key = blob_key(&digest);
        if self.backend.head(&key).await?.is_none() {
            self.backend.put_bytes(&key, data).await?;
        }
        Ok(digest)
    }

    // ---- manifests and tags ----

    /// A tag or revision object, from [`RefCache`] when this process has
    /// read it before and not written it since.
    async fn read_ref(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let generation = match self.refs.get(key) {
            Ok(content) => return Ok(Some(content)),
            Err(generation) => generation,
        };
        let content = self.backend.read(key).await?;
        if let Some(content) = &content {
            self.refs.insert(key, content.clone(), generation);
        }
        Ok(content)
    }

    /// Writes a tag or revision object.
    async fn write_ref(&self, key: &str, content: Bytes) -> Result<(), Error> {
        let written = self.backend.put_bytes(key, content).await;
        self.refs.invalidate(key);
        written
    }

    /// Deletes a tag or revision object.
    async fn delete_ref(&self, key: &str) -> Result<(), Error> {
        let deleted = self.backend.delete(key).await;
        self.refs.invalidate(key);
        deleted
    }

    /// Stores a manifest (already checked) in `name`, and points `tag` at it.
    pub async fn put_manifest(
        &self,
        name: &Name,
        tag: Option<&Tag>,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest, Error> {
        let digest = self.put_small_blob(body).await?;
        self.write_ref(
            &revision_key(name, &digest),
            Bytes::from(media_type.to_owned()),
        )
        .await?;
        if let Some(tag) = tag {
            self.write_ref(&tag_key(name, tag), Bytes::from(digest.to_string()))
                .await?;
        }
        Ok(digest)
    }

    /// The digest a tag points at.
    pub async fn tag_target(&self, name: &Name, tag: &Tag) -> Result<Option<Digest>, Error> {
        let Some(data) = self.read_ref(&tag_key(name, tag)).await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&data);
        text.trim()
            .parse()
            .map(Some)
            .map_err(|e| Error::storage(format!("tag {name}:{tag} is corrupt"), e))
    }

    /// The media type of a manifest in `name`, `None` if it is not there.
    pub async fn manifest_media_type(
        &self,
        name: &Name,
        digest: &Digest,
    ) -> Result<Option<String>, Error> {
        Ok(self
            .read_ref(&revision_key(name, digest))
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// A manifest's media type and content (content-addressed, so kept in
    /// the blob cache once read).
    pub async fn manifest(
        &self,
        name: &Name,
        digest: &Digest,
    ) -> Result<Option<(String, Bytes)>, Error> {
        let Some(media_type) = self.manifest_media_type(name, digest).await? else {
            return Ok(None);
        };
        let body = self
            .cache
            .get_or_read(digest, MAX_MANIFEST_BYTES as u64, || async {
                self.backend.read(&blob_key(digest)).await?.ok_or_else(|| {
                    Error::Storage(format!("manifest {digest} of {name} has no content"))
                })
            })
            .await?;
        Ok(Some((media_type, body)))
    }

    /// Removes a manifest and every tag pointing at it. `false` if absent.
    pub async fn delete_manifest(&self, name: &Name, digest: &Digest) -> Result<bool, Error> {
        if self.manifest_media_type(name, digest).await?.is_none() {
            return Ok(false);
        }
        for tag in self.tags(name).await? {
            let Ok(tag) = Tag::parse(&tag) else { continue };
            if self.tag_target(name, &tag).await?.as_ref() == Some(digest) {
                self.delete_ref(&tag_key(name, &tag)).await?;
            }
        }
        self.delete_ref(&revision_key(name, digest)).await?;
        Ok(true)
    }

    /// Removes a tag (the manifest stays). `false` if absent.
    pub async fn delete_tag(&self, name: &Name, tag: &Tag) -> Result<bool, Error> {
        let key = tag_key(name, tag);
        if self.backend.head(&key).await?.is_none() {
            return Ok(false);
        }
        self.delete_ref(&key).await?;
        Ok(true)
    }

    /// Tags of `name`, sorted.
    pub async fn tags(&self, name: &Name) -> Result<Vec<String>, Error> {
        let prefix = tags_prefix(name);
        let mut tags: Vec<String> = self
            .backend
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|m| m.key.strip_prefix(&format!("{prefix}/")).map(str::to_owned))
            .filter(|t| !t.contains('/'))
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// Whether `name` holds any manifest.
    pub async fn repository_exists(&self, name: &Name) -> Result<bool, Error> {
        Ok(!self.revisions(name).await?.is_empty())
    }

    /// Digests of every manifest in `name`.
    pub async fn revisions(&self, name: &Name) -> Result<Vec<Digest>, Error> {
        let prefix = format!("repositories/{name}/_manifests/revisions");
        Ok(self
            .backend
            .list(&prefix)
            .await?
            .iter()
            .filter_map(|m| digest_of_key(&m.key))
            .collect())
    }

    /// Every repository holding at least one manifest, sorted.
    pub async fn repositories(&self) -> Result<Vec<String>, Error> {
        let names: BTreeSet<String> = self
            .backend
            .list("repositories")
            .await?
            .iter()
            .filter_map(|m| {
                let rest = m.key.strip_prefix("repositories/")?;
                let (name, _) = rest.split_once("/_manifests/revisions/")?;
                Some(name.to_owned())
            })
            .collect();
        Ok(names.into_iter().collect())
    }
}

/// Appends (or writes) `body` to `path`, feeding `hasher`; refuses to grow the
/// file past `limit`. The file is fsynced before returning.
async fn write_stream(
    path: &Path,
    mut body: ByteStream,
    hasher: &mut Hasher,
    append: bool,
    limit: u64,
) -> Result<u64, Error> {
    let io = |e: std::io::Error| Error::storage(format!("write {}", path.display()), e);
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .await
        .map_err(io)?;
    let start = file.metadata().await.map_err(io)?.len();
    let mut written = 0u64;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| Error::UploadInvalid(format!("reading the request body: {e}")))?;
        written += chunk.len() as u64;
        if start + written > limit {
            return Err(Error::TooLarge(format!(
                "blob exceeds the limit of {limit} bytes"
            )));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    out.into_inner().sync_all().await.map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_to_digests() {
        let digest = Digest::of(b"x");
        let name = Name::parse("a/b").unwrap();
        assert_eq!(digest_of_key(&blob_key(&digest)), Some(digest.clone()));
        assert_eq!(
            digest_of_key(&layer_link(&name, &digest)),
            Some(digest.clone())
        );
        assert_eq!(
            digest_of_key(&revision_key(&name, &digest)),
            Some(digest.clone())
        );
        let tag = Tag::parse("v1").unwrap();
        assert_eq!(digest_of_key(&tag_key(&name, &tag)), None);
        assert_eq!(digest_of_key("blobs/sha256/ab/not-hex"), None);
    }
}
