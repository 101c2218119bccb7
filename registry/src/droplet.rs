//! Droplet → image layer, in one streaming pass with no droplet buffered in
//! memory: gunzip → check and re-root every entry under `home/vcap/` (owned by
//! vcap, uid/gid 2000) → tar → gzip, hashing the input (sha256 and sha1, to check
//! the droplet hash), the uncompressed layer (diff id) and the compressed layer
//! (blob digest) as the bytes flow. The pass runs as a three-thread pipeline
//! with bounded channels (`droplet/pipeline.rs`); the gzip stores segments that do not
//! compress instead of growing them (`droplet/gzip.rs`).
//!
//! Hostile droplets are refused: `..` components, absolute paths, links that
//! leave the droplet root or are written through, device files and FIFOs,
//! duplicate paths, and anything over the size and entry limits (which also
//! stops gzip bombs, since the unpacked stream is counted as it is inflated).
//!
//! The output is deterministic: the same droplet always gives the same layer.

mod gzip;
mod pipeline;

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use flate2::read::MultiGzDecoder;
use tar::{EntryType, Header};

use crate::{Digest, Error};
use pipeline::Tripped;

/// Where droplet files go inside the image.
pub const ROOT: &str = "home/vcap";
/// uid and gid of the `vcap` user.
pub const VCAP_ID: u64 = 2000;
/// Largest `staging_info.yml` read for the start command.
const MAX_STAGING_INFO: u64 = 64 * 1024;

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

/// Counts the inflated stream, stopping gzip bombs.
struct Unpacked<'t, R> {
    inner: R,
    read: u64,
    limit: u64,
    tripped: &'t Tripped,
}

impl<R: Read> Read for Unpacked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            let why = format!(
                "droplet unpacks to more than the limit of {} bytes",
                self.limit
            );
            let _ = self.tripped.set(why.clone());
            return Err(io::Error::other(why));
        }
        Ok(n)
    }
}

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
        let rewritten = rewrite(
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

/// The rewrite stage: gunzips the droplet from `input`, checks every entry and
/// writes the re-rooted tar to `layer`. Returns the start command.
fn rewrite(
    input: pipeline::Chunks<'_>,
    layer: pipeline::LayerWriter,
    limits: &Limits,
    tripped: &Tripped,
) -> Result<Option<String>, Error> {
    let invalid = |e: io::Error| Error::DropletInvalid(format!("not a readable .tgz: {e}"));
    let unpacked = Unpacked {
        inner: MultiGzDecoder::new(input),
        read: 0,
        limit: limits.max_unpacked,
        tripped,
    };
    let mut archive = tar::Archive::new(unpacked);
    let mut builder = tar::Builder::new(layer);
    let write_err = |e: io::Error| Error::Storage(format!("writing the layer: {e}"));

    // home/ stays root's; home/vcap/ belongs to vcap.
    let mut home = Header::new_gnu();
    home.set_entry_type(EntryType::Directory);
    home.set_mode(0o755);
    home.set_size(0);
    builder
        .append_data(&mut home, "home/", io::empty())
        .map_err(write_err)?;
    let mut root = vcap_header(EntryType::Directory, 0o755, 0, 0);
    builder
        .append_data(&mut root, format!("{ROOT}/"), io::empty())
        .map_err(write_err)?;

    let mut tree = Tree::default();
    let mut entries = 0u64;
    let mut start_command = None;
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        entries += 1;
        if entries > limits.max_entries {
            return Err(Error::TooLarge(format!(
                "droplet has more than {} entries",
                limits.max_entries
            )));
        }
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue;
        }
        let path_bytes = entry.path_bytes().into_owned();
        let Some(path) = reroot(&path_bytes).map_err(Error::DropletInvalid)? else {
            continue; // the droplet root itself
        };
        let mode = entry.header().mode().map_err(invalid)?;
        let mtime = entry.header().mtime().unwrap_or(0);
        let size = entry.header().size().map_err(invalid)?;
        let kind = if kind == EntryType::Continuous {
            EntryType::Regular
        } else {
            kind
        };
        if size > limits.max_unpacked {
            return Err(Error::TooLarge(format!(
                "entry {path:?} declares {size} bytes; the limit is {}",
                limits.max_unpacked
            )));
        }
        if !matches!(
            kind,
            EntryType::Regular | EntryType::Directory | EntryType::Symlink | EntryType::Link
        ) {
            return Err(Error::DropletInvalid(format!(
                "entry {path:?} is a {} ({kind:?}); only files, directories and links are allowed",
                describe(kind)
            )));
        }
        tree.enter(&path, kind).map_err(Error::DropletInvalid)?;
        let target_path = format!("{ROOT}/{path}");
        match kind {
            EntryType::Regular if path == "staging_info.yml" && size <= MAX_STAGING_INFO => {
                let mut data = Vec::with_capacity(size as usize);
                (&mut entry)
                    .take(MAX_STAGING_INFO)
                    .read_to_end(&mut data)
                    .map_err(invalid)?;
                start_command = parse_start_command(&data);
                let mut header = vcap_header(kind, mode, mtime, data.len() as u64);
                builder
                    .append_data(&mut header, &target_path, data.as_slice())
                    .map_err(write_err)?;
            }
            EntryType::Regular => {
                let mut header = vcap_header(kind, mode, mtime, size);
                builder
                    .append_data(&mut header, &target_path, &mut entry)
                    .map_err(|e| Error::DropletInvalid(format!("reading entry {path:?}: {e}")))?;
            }
            EntryType::Directory => {
                let mut header = vcap_header(kind, mode, mtime, 0);
                builder
                    .append_data(&mut header, format!("{target_path}/"), io::empty())
                    .map_err(write_err)?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    Error::DropletInvalid(format!("symlink {path:?} has no target"))
                })?;
                let target = std::str::from_utf8(&target)
                    .map_err(|_| {
                        Error::DropletInvalid(format!("symlink {path:?} target is not UTF-8"))
                    })?
                    .to_owned();
                tree.check_symlink(&path, &target)
                    .map_err(Error::DropletInvalid)?;
                let mut header = vcap_header(kind, 0o777, mtime, 0);
                builder
                    .append_link(&mut header, &target_path, &target)
                    .map_err(write_err)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    Error::DropletInvalid(format!("hard link {path:?} has no target"))
                })?;
                let target = tree
                    .check_hardlink(&path, &target)
                    .map_err(Error::DropletInvalid)?;
                let mut header = vcap_header(kind, mode, mtime, 0);
                builder
                    .append_link(&mut header, &target_path, format!("{ROOT}/{target}"))
                    .map_err(write_err)?;
            }
            _ => unreachable_kind()?,
        }
    }

    // Read to the end so the droplet hash covers all of it.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(invalid)?;
    builder
        .into_inner()
        .and_then(pipeline::LayerWriter::finish)
        .map_err(write_err)?;
    Ok(start_command)
}

fn unreachable_kind() -> Result<(), Error> {
    Err(Error::DropletInvalid("unsupported entry type".into()))
}

fn describe(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "FIFO",
        EntryType::GNUSparse => "sparse file",
        _ => "special entry",
    }
}

/// `start_command` of a `staging_info.yml` (which CF writes as JSON).
fn parse_start_command(data: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    value.get("start_command")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests;
