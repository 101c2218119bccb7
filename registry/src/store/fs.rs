//! The filesystem backend: objects are files under a root directory, written to
//! a temp file, fsynced and renamed into place (then the directory is fsynced),
//! so a crash leaves either nothing or the whole object.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::backend::{Backend, ByteStream, Meta};
use super::file_stream;
use crate::Error;

/// Objects as files under `root`; temp files under `tmp` (same filesystem).
#[derive(Debug, Clone)]
pub struct FsBackend {
    root: PathBuf,
    tmp: PathBuf,
}

impl FsBackend {
    /// A backend rooted at `root`, staging writes in `tmp` (must be on the same
    /// filesystem so renames are atomic).
    pub fn new(root: PathBuf, tmp: PathBuf) -> Self {
        Self { root, tmp }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

fn io_error(context: &str, key: &str) -> impl FnOnce(io::Error) -> Error {
    let context = format!("{context} {key}");
    move |e| Error::storage(context, e)
}

fn absent_is_none<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Renames `from` to `to`, creating parents, then fsyncs the parent directory.
pub(crate) async fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    let parent = to.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent).await?;
    tokio::fs::rename(from, to).await?;
    sync_dir(parent).await
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

/// A fresh random name for temp files and upload ids.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // getrandom only fails when the OS has no entropy source at all; fall back
    // to time and a counter so names stay unique within this process.
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&(nanos as u64).to_le_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    hex::encode(bytes)
}

#[async_trait::async_trait]
impl Backend for FsBackend {
    async fn head(&self, key: &str) -> Result<Option<Meta>, Error> {
        let meta = absent_is_none(tokio::fs::metadata(self.path(key)).await)
            .map_err(io_error("stat", key))?;
        Ok(meta.filter(|m| m.is_file()).map(|m| Meta {
            key: key.to_owned(),
            size: m.len(),
            modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
        }))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<ByteStream>, Error> {
        let path = self.path(key);
        let opened = tokio::task::spawn_blocking(move || -> io::Result<Option<(File, u64)>> {
            let Some(mut file) = absent_is_none(File::open(path))? else {
                return Ok(None);
            };
            let len = match range {
                Some(range) => {
                    file.seek(SeekFrom::Start(range.start))?;
                    range.end - range.start
                }
                None => file.metadata()?.len(),
            };
            Ok(Some((file, len)))
        })
        .await
        .map_err(io::Error::other)
        .and_then(|opened| opened)
        .map_err(io_error("open", key))?;
        Ok(opened.map(|(file, len)| file_stream::stream(file, len)))
    }

    async fn read(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let data =
            absent_is_none(tokio::fs::read(self.path(key)).await).map_err(io_error("read", key))?;
        Ok(data.map(Bytes::from))
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), Error> {
        let tmp = self.tmp.join(random_id());
        let write = async {
            tokio::fs::create_dir_all(&self.tmp).await?;
            let mut file = tokio::fs::File::create(&tmp).await?;
            file.write_all(&data).await?;
            file.sync_all().await?;
            drop(file);
            rename_durably(&tmp, &self.path(key)).await
        };
        let result = write.await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result.map_err(io_error("write", key))
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<(), Error> {
        rename_durably(file, &self.path(key))
            .await
            .map_err(io_error("store", key))
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        absent_is_none(tokio::fs::remove_file(self.path(key)).await)
            .map(|_| ())
            .map_err(io_error("delete", key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Meta>, Error> {
        let root = self.root.clone();
        let prefix = prefix.trim_end_matches('/').to_owned();
        tokio::task::spawn_blocking(move || walk(&root, &prefix))
            .await
            .map_err(|e| Error::storage("list", e))?
            .map_err(|e| Error::storage("list", e))
    }

    fn describe(&self) -> String {
        format!("filesystem {}", self.root.display())
    }
}

fn walk(root: &Path, prefix: &str) -> io::Result<Vec<Meta>> {
    let mut out = Vec::new();
    let mut pending = vec![prefix.to_owned()];
    while let Some(dir_key) = pending.pop() {
        let Some(entries) = absent_is_none(std::fs::read_dir(root.join(&dir_key)))? else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let key = format!("{dir_key}/{file_name}");
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(key);
            } else if kind.is_file() {
                let meta = entry.metadata()?;
                out.push(Meta {
                    key,
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}
