//! The storage seam: a flat key/object space with atomic writes. Registry
//! semantics (blobs, links, tags) live in [`super::Store`] on top of it, so the
//! filesystem and `object_store` backends share them.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::BoxStream;

use crate::Error;

/// A stream of object bytes.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Size and age of one stored object.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

/// A flat object store. Every write is atomic: readers see the old object, no
/// object, or the complete new one — never a partial one.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Size and age of `key`, `None` if absent.
    async fn head(&self, key: &str) -> Result<Option<Meta>, Error>;
    /// Streams `key` (or a byte range of it), `None` if absent.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<ByteStream>, Error>;
    /// Reads a small object whole.
    async fn read(&self, key: &str) -> Result<Option<Bytes>, Error>;
    /// Writes a small object.
    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), Error>;
    /// Moves a complete, fsynced local file into `key`. The file is consumed.
    async fn put_file(&self, key: &str, file: &Path) -> Result<(), Error>;
    /// Deletes `key`; deleting an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), Error>;
    /// Every object whose key starts with `prefix/`, recursively.
    async fn list(&self, prefix: &str) -> Result<Vec<Meta>, Error>;
    /// A short description for logs and readiness.
    fn describe(&self) -> String;
}
