//! Droplet → image layer, in one streaming pass with no droplet buffered in
//! memory: gunzip → check and re-root every entry under `home/vcap/` (owned by
//! vcap, uid/gid 2000) → tar → gzip, hashing the input (sha256 and sha1, to check
//! the droplet hash), the uncompressed layer (diff id) and the compressed layer
//! (blob digest) as the bytes flow. The pass runs as a three-thread pipeline
//! with bounded channels (`droplet/pipeline.rs`); the entries are checked and
//! re-rooted by its rewrite stage (`droplet/rewrite.rs`); the gzip stores
//! segments that do not compress instead of growing them (`droplet/gzip.rs`).
//!
//! Hostile droplets are refused: `..` components, absolute paths, links that
//! leave the droplet root or are written through, device files and FIFOs,
//! duplicate paths, and anything over the size and entry limits (which also
//! stops gzip bombs, since the unpacked stream is counted as it is inflated).
//!
//! The output is deterministic: the same droplet always gives the same layer.

mod gzip;
mod pipeline;
mod rewrite;

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use tar::{EntryType, Header};

use crate::{Digest, Error};
use pipeline::Tripped;

/// Where droplet files go inside the image.
pub const ROOT: &str = "home/vcap";
/// uid and gid of the `vcap` user.
pub const VCAP_ID: u64 = 2000;

/// Limits on one droplet.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest droplet `.tgz`, in bytes.
    pub max_compressed: u64,
    /// Largest unpacked tar stream, in bytes.
    pub max_unpacked: u64,
    /// Most entries in the droplet.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_compressed: 2 << 30,
            max_unpacked: 8 << 30,
            max_entries: 500_000,
        }
    }
}

/// The layer made from a droplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the compressed layer (the blob).
    pub digest: Digest,
    /// Size of the compressed layer.
    pub size: u64,
    /// Digest of the uncompressed layer (the config's diff id).
    pub diff_id: Digest,
    /// Hex sha256 of the droplet as received.
    pub droplet_sha256: String,
    /// Hex sha1 of the droplet as received.
    pub droplet_sha1: String,
    /// `start_command` from the droplet's `staging_info.yml`, if present.
    pub start_command: Option<String>,
}

/// Re-roots a droplet entry path under [`ROOT`]. `Ok(None)` is the droplet root
/// itself (`./`). Refuses absolute paths, `..` and non-UTF-8 names.
pub fn reroot(path: &[u8]) -> Result<Option<String>, String> {
    let text =
        std::str::from_utf8(path).map_err(|_| format!("entry name is not UTF-8: {path:?}"))?;
    if text.starts_with('/') {
        return Err(format!("absolute path {text:?}"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("path {text:?} contains `..`")),
            _ => parts.push(part),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The paths seen so far in a droplet, to refuse links that escape or are
/// written through. Paths are relative to the droplet root.
#[derive(Default)]
pub struct Tree {
    seen: HashSet<String>,
    files: HashSet<String>,
    symlinks: HashSet<String>,
    /// Paths used as directories (parents of entries, or walked through by a
    /// link target); they must never become symlinks.
    directories: HashSet<String>,
}

fn prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

impl Tree {
    /// Records an entry at `path` of `kind`, refusing duplicates and paths that
    /// go through a symlink.
    pub fn enter(&mut self, path: &str, kind: EntryType) -> Result<(), String> {
        for parent in prefixes(path) {
            if self.symlinks.contains(parent) {
                return Err(format!(
                    "entry {path:?} is written through the symlink {parent:?}"
                ));
            }
        }
        if kind == EntryType::Symlink && self.directories.contains(path) {
            return Err(format!("symlink {path:?} replaces a directory"));
        }
        if !self.seen.insert(path.to_owned()) {
            return Err(format!("duplicate entry {path:?}"));
        }
        for parent in prefixes(path) {
            self.directories.insert(parent.to_owned());
        }
        match kind {
            EntryType::Symlink => {
                self.symlinks.insert(path.to_owned());
            }
            EntryType::Directory => {
                self.directories.insert(path.to_owned());
            }
            _ => {
                self.files.insert(path.to_owned());
            }
        }
        Ok(())
    }

    /// Checks a symlink at `path` pointing at `target`: the target, resolved from
    /// the link's directory (or from `/home/vcap` when absolute), must stay inside
    /// the droplet root, and every `..` must step out of a real directory.
    pub fn check_symlink(&mut self, path: &str, target: &str) -> Result<(), String> {
        let escape = || format!("symlink {path:?} -> {target:?} leaves the droplet root");
        if target.is_empty() {
            return Err(format!("symlink {path:?} has an empty target"));
        }
        let mut walk: Vec<&str> = Vec::new();
        let rest = if let Some(absolute) = target.strip_prefix('/') {
            absolute
                .strip_prefix(ROOT)
                .filter(|r| r.is_empty() || r.starts_with('/'))
                .ok_or_else(escape)?
        } else {
            walk.extend(path.split('/'));
            walk.pop();
            target
        };
        for part in rest.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    let here = walk.join("/");
                    if self.symlinks.contains(&here) {
                        return Err(format!(
                            "symlink {path:?} -> {target:?} climbs out of the symlink {here:?}"
                        ));
                    }
                    walk.pop().ok_or_else(escape)?;
                    self.directories.insert(here);
                }
                other => walk.push(other),
            }
        }
        Ok(())
    }

    /// Checks a hard link target (a droplet path), which must be a regular file
    /// seen earlier. Returns the re-rooted target.
    pub fn check_hardlink(&self, path: &str, target: &[u8]) -> Result<String, String> {
        let target = reroot(target)
            .map_err(|e| format!("hard link {path:?}: {e}"))?
            .ok_or_else(|| format!("hard link {path:?} points at the droplet root"))?;
        if !self.files.contains(&target) {
            return Err(format!(
                "hard link {path:?} -> {target:?} does not point at an earlier file"
            ));
        }
        Ok(target)
    }
}

/// The header of an entry owned by vcap, with `mode`'s permission bits.
fn vcap_header(kind: EntryType, mode: u32, mtime: u64, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode & 0o777);
    header.set_uid(VCAP_ID);
    header.set_gid(VCAP_ID);
    header.set_mtime(mtime);
    header.set_size(size);
    // Names fit: "vcap" is shorter than the 32-byte fields.
    let _ = header.set_username("vcap");
    let _ = header.set_groupname("vcap");
    header
}

/// Converts a droplet `.tgz` read from `input` into a gzip-compressed layer
/// written to `output`.
///
/// Three threads share the work (see `droplet/pipeline.rs`): reading and hashing the
/// input, gunzip and tar rewrite (on the calling thread), and hashing, gzip
/// and writing the layer. A refused droplet stops all three.
pub fn convert<R, W>(input: R, output: W, limits: &Limits) -> Result<Layer, Error>
where
    R: Read + Send,
    W: Write + Send,
{
    let tripped = Tripped::new();
    let stopped = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let (input_tx, input_rx) = mpsc::sync_channel(pipeline::DEPTH);
        let (layer_tx, layer_rx) = mpsc::sync_channel(pipeline::DEPTH);
        let spawn_err = |e: io::Error| Error::storage("starting a droplet conversion thread", e);
        let tripped = &tripped;
        let stopped = &stopped;
        let reader = std::thread::Builder::new()
            .name("droplet-read".into())
            .spawn_scoped(scope, move || {
                pipeline::read(input, input_tx, stopped, limits.max_compressed, tripped)
            })
            .map_err(spawn_err)?;
        let compressor = std::thread::Builder::new()
            .name("droplet-gzip".into())
            .spawn_scoped(scope, move || pipeline::compress(layer_rx, output))
            .map_err(spawn_err)?;
        // Both channel ends are dropped when `rewrite` returns, so the other
        // stages stop even when it fails.
        let rewritten = rewrite::rewrite(
            pipeline::Chunks::new(input_rx, stopped),
            pipeline::LayerWriter::new(layer_tx),
            limits,
            tripped,
        );
        let panicked = |_| Error::Storage("a droplet conversion thread panicked".into());
        let compressed = compressor.join().map_err(panicked)?;
        let hashes = reader.join().map_err(panicked)?;
        match (rewritten, compressed) {
            (_, Err(e)) | (Err(e), _) => Err(e),
            (Ok(start_command), Ok(Some(compressed))) => Ok(Layer {
                digest: compressed.digest,
                size: compressed.size,
                diff_id: compressed.diff_id,
                droplet_sha256: hashes.sha256,
                droplet_sha1: hashes.sha1,
                start_command,
            }),
            (Ok(_), Ok(None)) => Err(Error::Storage("the layer was not completed".into())),
        }
    });
    match (result, tripped.into_inner()) {
        (_, Some(why)) => Err(Error::TooLarge(why)),
        (result, None) => result,
    }
}

#[cfg(test)]
mod tests;
