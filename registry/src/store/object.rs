//! The `object_store` backend, for S3-compatible stores (and any other
//! `object_store` implementation). Puts of small objects are single atomic PUTs;
//! blobs are multipart uploads, which become visible only when completed.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::backend::{Backend, ByteStream, Meta};
use crate::Error;

/// Files at or below this size are uploaded with one PUT.
const SINGLE_PUT_LIMIT: u64 = 8 * 1024 * 1024;
/// Part size of multipart uploads.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Objects in an [`ObjectStore`], under an optional key prefix.
#[derive(Debug, Clone)]
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl ObjectBackend {
    /// A backend over `store`, keeping every key under `prefix` (may be empty).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    /// An S3-compatible store from a `s3://bucket/prefix` URL; credentials,
    /// region and endpoint come from the usual `AWS_*` environment variables.
    pub fn s3(url: &str) -> Result<Self, Error> {
        let parsed = url.strip_prefix("s3://").ok_or_else(|| {
            Error::Config(format!("object store URL must start with s3://: {url}"))
        })?;
        let (bucket, prefix) = parsed.split_once('/').unwrap_or((parsed, ""));
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| Error::Config(format!("object store {url}: {e}")))?;
        Ok(Self::new(Arc::new(store), prefix))
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn key_of(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(&self.prefix)
                .map(|k| k.trim_start_matches('/'))
                .unwrap_or(full)
                .to_owned()
        }
    }
}

fn err(context: &str, key: &str) -> impl FnOnce(object_store::Error) -> Error {
    let context = format!("{context} {key}");
    move |e| Error::storage(context, e)
}

fn absent_is_none<T>(result: object_store::Result<T>) -> object_store::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait::async_trait]
impl Backend for ObjectBackend {
    async fn head(&self, key: &str) -> Result<Option<Meta>, Error> {
        let meta =
            absent_is_none(self.store.head(&self.path(key)).await).map_err(err("head", key))?;
        Ok(meta.map(|m| Meta {
            key: key.to_owned(),
            size: m.size,
            modified: SystemTime::from(m.last_modified),
        }))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<ByteStream>, Error> {
        if range.as_ref().is_some_and(|r| r.is_empty()) {
            // object_store refuses empty ranges; an empty body is the answer.
            return Ok(Some(futures::stream::empty().boxed()));
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = absent_is_none(self.store.get_opts(&self.path(key), options).await)
            .map_err(err("get", key))?;
        Ok(result.map(|r| r.into_stream().map_err(std::io::Error::other).boxed()))
    }

    async fn read(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let Some(result) =
            absent_is_none(self.store.get(&self.path(key)).await).map_err(err("get", key))?
        else {
            return Ok(None);
        };
        absent_is_none(result.bytes().await).map_err(err("read", key))
    }

    async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), Error> {
        self.store
            .put(&self.path(key), data.into())
            .await
            .map(|_| ())
            .map_err(err("put", key))
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::storage(format!("read {}", file.display()), e);
        let mut source = tokio::fs::File::open(file).await.map_err(io)?;
        let size = source.metadata().await.map_err(io)?.len();
        if size <= SINGLE_PUT_LIMIT {
            let mut data = Vec::with_capacity(size as usize);
            source.read_to_end(&mut data).await.map_err(io)?;
            self.put_bytes(key, data.into()).await?;
        } else {
            let upload = self
                .store
                .put_multipart(&self.path(key))
                .await
                .map_err(err("start upload", key))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buffer = vec![0u8; 1024 * 1024];
            loop {
                let read = match source.read(&mut buffer).await {
                    Ok(read) => read,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(io(e));
                    }
                };
                if read == 0 {
                    break;
                }
                if let Err(e) = writer.wait_for_capacity(4).await {
                    return Err(err("upload", key)(e));
                }
                writer.write(&buffer[..read]);
            }
            writer.finish().await.map_err(err("finish upload", key))?;
        }
        let _ = tokio::fs::remove_file(file).await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        absent_is_none(self.store.delete(&self.path(key)).await)
            .map(|_| ())
            .map_err(err("delete", key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Meta>, Error> {
        let path = self.path(prefix.trim_end_matches('/'));
        let mut out: Vec<Meta> = self
            .store
            .list(Some(&path))
            .map_ok(|m| Meta {
                key: self.key_of(&m.location),
                size: m.size,
                modified: SystemTime::from(m.last_modified),
            })
            .try_collect()
            .await
            .map_err(err("list", prefix))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("object store {} (prefix {:?})", self.store, self.prefix)
    }
}
