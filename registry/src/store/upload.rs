//! Blob upload sessions (`POST`/`PATCH`/`PUT .../blobs/uploads/<id>`): chunks
//! are appended to `<data-dir>/_uploads/<id>/data` with a running hash; the
//! final `PUT` checks the digest and moves the file into the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;

use super::{ByteStream, Store, write_stream};
use crate::digest::Hasher;
use crate::{Digest, Error, Name};

/// In-memory state of the uploads this process is serving. After a restart an
/// upload continues from its file; the hash is then recomputed at the end.
#[derive(Default)]
pub(super) struct Sessions {
    hashers: HashMap<String, Hasher>,
    busy: std::collections::HashSet<String>,
}

/// Releases the "busy" mark of an upload when a request is done with it.
struct Busy<'a> {
    store: &'a Store,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut sessions = self
            .store
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        sessions.busy.remove(&self.id);
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Store {
    fn upload_dir(&self, id: &str) -> PathBuf {
        self.uploads.join(id)
    }

    /// Starts an upload session in `name`; returns its id.
    pub async fn upload_start(&self, name: &Name) -> Result<String, Error> {
        let id = super::fs::random_id();
        let dir = self.upload_dir(&id);
        let io = |e: std::io::Error| Error::storage(format!("create upload {}", dir.display()), e);
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        tokio::fs::write(dir.join("name"), name.as_str())
            .await
            .map_err(io)?;
        tokio::fs::write(dir.join("data"), b"").await.map_err(io)?;
        Ok(id)
    }

    /// Bytes received so far by upload `id` of `name`.
    pub async fn upload_size(&self, name: &Name, id: &str) -> Result<u64, Error> {
        let unknown = || Error::UploadUnknown(id.to_owned());
        if !valid_id(id) {
            return Err(unknown());
        }
        let dir = self.upload_dir(id);
        let owner = tokio::fs::read_to_string(dir.join("name"))
            .await
            .map_err(|_| unknown())?;
        if owner != name.as_str() {
            return Err(unknown());
        }
        let meta = tokio::fs::metadata(dir.join("data"))
            .await
            .map_err(|_| unknown())?;
        Ok(meta.len())
    }

    fn claim(&self, id: &str) -> Result<(Busy<'_>, Option<Hasher>), Error> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if !sessions.busy.insert(id.to_owned()) {
            return Err(Error::UploadInvalid(format!(
                "upload {id} is receiving another request"
            )));
        }
        let hasher = sessions.hashers.remove(id);
        Ok((
            Busy {
                store: self,
                id: id.to_owned(),
            },
            hasher,
        ))
    }

    fn keep_hasher(&self, id: &str, hasher: Hasher) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.hashers.insert(id.to_owned(), hasher);
    }

    /// Appends a chunk. `start` (from `Content-Range`) must equal the bytes
    /// received so far. Returns the new size.
    pub async fn upload_append(
        &self,
        name: &Name,
        id: &str,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<u64, Error> {
        let size = self.upload_size(name, id).await?;
        let (_busy, hasher) = self.claim(id)?;
        if let Some(start) = start
            && start != size
        {
            return Err(Error::UploadRange(format!(
                "chunk starts at {start} but upload {id} has {size} bytes"
            )));
        }
        let mut hasher = hasher.filter(|h| h.len() == size);
        let mut scratch = Hasher::default();
        let data = self.upload_dir(id).join("data");
        let result = write_stream(
            &data,
            body,
            hasher.as_mut().unwrap_or(&mut scratch),
            true,
            self.max_blob_bytes,
        )
        .await;
        match result {
            Ok(written) => {
                if let Some(hasher) = hasher {
                    self.keep_hasher(id, hasher);
                }
                Ok(size + written)
            }
            Err(error) => {
                // Drop the partial chunk so the session stays consistent.
                if let Ok(file) = tokio::fs::OpenOptions::new().write(true).open(&data).await {
                    let _ = file.set_len(size).await;
                }
                Err(error)
            }
        }
    }

    /// Completes an upload: appends the final chunk (if any), checks `digest`,
    /// stores the blob and links it into `name`. Returns its size.
    pub async fn upload_finish(
        &self,
        name: &Name,
        id: &str,
        digest: &Digest,
        body: Option<ByteStream>,
    ) -> Result<u64, Error> {
        let size = match body {
            Some(body) => self.upload_append(name, id, None, body).await?,
            None => self.upload_size(name, id).await?,
        };
        let (_busy, hasher) = self.claim(id)?;
        let data = self.upload_dir(id).join("data");
        let actual = match hasher.filter(|h| h.len() == size) {
            Some(hasher) => hasher.finish(),
            None => hash_file(&data).await?,
        };
        if actual != *digest {
            // The session stays, as the spec allows a retry of the final PUT
            // (the hash is then recomputed from the file).
            return Err(Error::DigestInvalid(format!(
                "uploaded content has digest {actual}, not {digest}"
            )));
        }
        self.commit_file(&data, digest).await?;
        self.link_blob(name, digest).await?;
        let _ = tokio::fs::remove_dir_all(self.upload_dir(id)).await;
        Ok(size)
    }

    /// Abandons an upload.
    pub async fn upload_cancel(&self, name: &Name, id: &str) -> Result<(), Error> {
        self.upload_size(name, id).await?;
        let (_busy, _) = self.claim(id)?;
        tokio::fs::remove_dir_all(self.upload_dir(id))
            .await
            .map_err(|e| Error::storage(format!("remove upload {id}"), e))
    }

    /// Removes upload sessions untouched for longer than `age`; returns how many.
    pub async fn remove_stale_uploads(&self, age: Duration) -> Result<usize, Error> {
        let io = |e: std::io::Error| Error::storage("list uploads", e);
        let mut entries = tokio::fs::read_dir(&self.uploads).await.map_err(io)?;
        let mut removed = 0;
        let now = SystemTime::now();
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let data = entry.path().join("data");
            let modified = match tokio::fs::metadata(&data).await {
                Ok(meta) => meta.modified().unwrap_or(now),
                Err(_) => entry
                    .metadata()
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .unwrap_or(now),
            };
            if now.duration_since(modified).unwrap_or_default() > age {
                let _ = tokio::fs::remove_dir_all(entry.path()).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

async fn hash_file(path: &std::path::Path) -> Result<Digest, Error> {
    let io = |e: std::io::Error| Error::storage(format!("read {}", path.display()), e);
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let mut hasher = Hasher::default();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer).await.map_err(io)?;
        if read == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..read]);
    }
}
