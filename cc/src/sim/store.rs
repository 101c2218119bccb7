//! The simulator's persistent state: one `state.json` in the data directory,
//! replaced atomically on every change, and blobs (app bits, droplets) in
//! `packages/` and `droplets/`.
//!
//! A change is applied to a copy of the state, the copy is written to disk, and
//! only then does it become the state readers see: a failed write changes
//! nothing, and a crash at any point leaves the old or the new file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::Digest;

use super::atomic;
use super::state::State;
use crate::{Error, Result};

const STATE_FILE: &str = "state.json";
const PACKAGES: &str = "packages";
const DROPLETS: &str = "droplets";

/// State plus the directory it lives in.
pub struct Store {
    dir: PathBuf,
    current: RwLock<Arc<State>>,
    writer: tokio::sync::Mutex<()>,
}

impl Store {
    /// Opens (creating if needed) the data directory and loads its state.
    pub fn open(dir: &Path) -> Result<Self> {
        for sub in [dir.to_owned(), dir.join(PACKAGES), dir.join(DROPLETS)] {
            std::fs::create_dir_all(&sub).map_err(|source| Error::Io {
                action: "create directory",
                path: sub.clone(),
                cause: source,
            })?;
            atomic::remove_leftovers(&sub)?;
        }
        let path = dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::CorruptState {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(Error::Io {
                    action: "read",
                    path,
                    cause: source,
                });
            }
        };
        Ok(Store {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(state)),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current state (a cheap, consistent snapshot).
    pub fn snapshot(&self) -> Arc<State> {
        match self.current.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies `change` and persists the result. When `change` fails, or the
    /// write does, the state stays as it was.
    pub async fn update<T>(&self, change: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let _guard = self.writer.lock().await;
        let mut next = (*self.snapshot()).clone();
        let value = change(&mut next)?;
        let bytes = serde_json::to_vec(&next).map_err(|e| Error::CorruptState {
            path: self.dir.join(STATE_FILE),
            message: format!("cannot encode state: {e}"),
        })?;
        let path = self.dir.join(STATE_FILE);
        blocking(move || atomic::write(&path, &bytes)).await?;
        let next = Arc::new(next);
        match self.current.write() {
            Ok(mut state) => *state = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(value)
    }

    /// Stores app bits for package `guid`; returns their SHA-256 (hex) and size.
    pub async fn put_package(&self, guid: &str, bytes: bytes::Bytes) -> Result<(String, u64)> {
        self.put_blob(self.package_path(guid), bytes).await
    }

    /// Stores the droplet uploaded for build `guid`; returns SHA-256 and size.
    pub async fn put_droplet(&self, guid: &str, bytes: bytes::Bytes) -> Result<(String, u64)> {
        self.put_blob(self.droplet_path(guid), bytes).await
    }

    /// Where package `guid` lives.
    pub fn package_path(&self, guid: &str) -> PathBuf {
        self.dir.join(PACKAGES).join(format!("{guid}.zip"))
    }

    /// Where the droplet of build `guid` lives.
    pub fn droplet_path(&self, guid: &str) -> PathBuf {
        self.dir.join(DROPLETS).join(format!("{guid}.tgz"))
    }

    async fn put_blob(&self, path: PathBuf, bytes: bytes::Bytes) -> Result<(String, u64)> {
        blocking(move || {
            let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
            atomic::write(&path, &bytes)?;
            Ok((sha256, bytes.len() as u64))
        })
        .await
    }

    /// Reads a blob; a missing file is a 404 naming `what`.
    pub async fn read_blob(&self, path: PathBuf, what: &str) -> Result<bytes::Bytes> {
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::not_found(format!("{what} not found")))
            }
            Err(source) => Err(Error::Io {
                action: "read",
                path,
                cause: source,
            }),
        }
    }

    /// Removes blobs no longer referenced (after their app was deleted); a
    /// missing file is fine.
    pub async fn remove_blobs(&self, paths: Vec<PathBuf>) {
        for path in paths {
            if let Err(error) = tokio::fs::remove_file(&path).await
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), %error, "cannot remove blob");
            }
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io {
            action: "run blocking write",
            path: PathBuf::new(),
            cause: std::io::Error::other(e.to_string()),
        })?
}
