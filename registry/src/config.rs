//! What `cube registry` is configured with.

use std::path::PathBuf;

use crate::droplet::Limits;
use crate::rootfs::RootfsSource;

/// Default memory for hot blobs: a droplet layer of up to 128 MiB is served
/// from memory to many pulling kubelets.
pub const DEFAULT_BLOB_CACHE_BYTES: u64 = 256 << 20;

/// Settings of one registry.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where blobs, repositories, temp files and uploads live.
    pub data_dir: PathBuf,
    /// `s3://bucket/prefix` to keep blobs and repositories in an S3-compatible
    /// store instead of `data_dir` (temp files and uploads stay local).
    pub object_store: Option<String>,
    /// Base layers of droplet images.
    pub rootfs: Option<RootfsSource>,
    /// Cloud Controller base URL: relative droplet URIs resolve against it, and
    /// absolute ones must point at it. Credentials in it are sent along.
    pub cc_url: Option<String>,
    /// Users and tokens file; `None` disables authentication.
    pub auth_file: Option<PathBuf>,
    /// Allow pulls without credentials when authentication is on.
    pub anonymous_pull: bool,
    /// Limits on droplets.
    pub droplet_limits: Limits,
    /// Largest blob accepted by push.
    pub max_blob_bytes: u64,
    /// Bytes of hot blobs kept in memory (0: none); blobs up to half of it
    /// are kept.
    pub blob_cache_bytes: u64,
    /// Answer a cross-repository mount without `from` (`?mount=<digest>`
    /// alone) by mounting the blob from any repository that holds it (201),
    /// as the distribution spec allows; off: such a request starts an
    /// ordinary upload (202). Every credential reaches every repository here,
    /// so mounting reveals nothing a client could not pull anyway.
    pub automatic_crossmount: bool,
}

impl Config {
    /// Defaults for a registry keeping everything in `data_dir`, without auth or rootfs.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            object_store: None,
            rootfs: None,
            cc_url: None,
            auth_file: None,
            anonymous_pull: false,
            droplet_limits: Limits::default(),
            max_blob_bytes: 16 << 30,
            blob_cache_bytes: DEFAULT_BLOB_CACHE_BYTES,
            automatic_crossmount: false,
        }
    }
}
