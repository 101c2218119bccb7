//! The rewrite stage of a conversion: gunzip the droplet, check every entry
//! against the [`Limits`] and the [`Tree`] seen so far, and write it re-rooted
//! under [`ROOT`] and owned by vcap into the layer's tar.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use tar::{EntryType, Header};

use super::pipeline::{self, Tripped};
use super::{Limits, ROOT, Tree, reroot, vcap_header};
use crate::Error;

/// Largest `staging_info.yml` read for the start command.
const MAX_STAGING_INFO: u64 = 64 * 1024;

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

/// The rewrite stage: gunzips the droplet from `input`, checks every entry and
/// writes the re-rooted tar to `layer`. Returns the start command.
pub(super) fn rewrite(
    input: pipeline::Chunks<'_>,
    layer: pipeline::LayerWriter,
    limits: &Limits,
    tripped: &Tripped,
) -> Result<Option<String>, Error> {
    let unpacked = Unpacked {
        inner: MultiGzDecoder::new(input),
        read: 0,
        limit: limits.max_unpacked,
        tripped,
    };
    let mut archive = tar::Archive::new(unpacked);
    let mut rewritten = Rewritten::start(layer, limits)?;
    for entry in archive.entries().map_err(unreadable)? {
        rewritten.add(entry.map_err(unreadable)?)?;
    }
    // Read to the end so the droplet hash covers all of it.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(unreadable)?;
    rewritten.finish()
}

/// A droplet that is not a readable `.tgz`.
fn unreadable(e: io::Error) -> Error {
    Error::DropletInvalid(format!("not a readable .tgz: {e}"))
}

/// The layer could not be written.
fn write_failed(e: io::Error) -> Error {
    Error::Storage(format!("writing the layer: {e}"))
}

/// What a droplet entry's header says, its kind as the layer writes it.
struct EntryMeta {
    kind: EntryType,
    mode: u32,
    mtime: u64,
    size: u64,
}

impl EntryMeta {
    /// Reads the header of an entry of `kind` (a contiguous file becomes a
    /// regular one).
    fn of(header: &Header, kind: EntryType) -> Result<Self, Error> {
        let mode = header.mode().map_err(unreadable)?;
        let mtime = header.mtime().unwrap_or(0);
        let size = header.size().map_err(unreadable)?;
        let kind = if kind == EntryType::Continuous {
            EntryType::Regular
        } else {
            kind
        };
        Ok(Self {
            kind,
            mode,
            mtime,
            size,
        })
    }
}

/// The layer's tar as the droplet's entries are added to it, with what they
/// have established so far.
struct Rewritten<'l> {
    builder: tar::Builder<pipeline::LayerWriter>,
    limits: &'l Limits,
    tree: Tree,
    entries: u64,
    start_command: Option<String>,
}

impl<'l> Rewritten<'l> {
    /// A layer holding `home/` (root's) and `home/vcap/` (vcap's).
    fn start(layer: pipeline::LayerWriter, limits: &'l Limits) -> Result<Self, Error> {
        let mut builder = tar::Builder::new(layer);
        let mut home = Header::new_gnu();
        home.set_entry_type(EntryType::Directory);
        home.set_mode(0o755);
        home.set_size(0);
        builder
            .append_data(&mut home, "home/", io::empty())
            .map_err(write_failed)?;
        let mut root = vcap_header(EntryType::Directory, 0o755, 0, 0);
        builder
            .append_data(&mut root, format!("{ROOT}/"), io::empty())
            .map_err(write_failed)?;
        Ok(Self {
            builder,
            limits,
            tree: Tree::default(),
            entries: 0,
            start_command: None,
        })
    }

    /// Checks one droplet entry and writes it re-rooted; skips global headers
    /// and the droplet root itself.
    fn add<R: Read>(&mut self, entry: tar::Entry<'_, R>) -> Result<(), Error> {
        self.count_entry()?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let path_bytes = entry.path_bytes().into_owned();
        let Some(path) = reroot(&path_bytes).map_err(Error::DropletInvalid)? else {
            return Ok(()); // the droplet root itself
        };
        let meta = EntryMeta::of(entry.header(), kind)?;
        self.admit(&path, &meta)?;
        self.append(entry, &path, &meta)
    }

    /// Counts an entry against the entry limit.
    fn count_entry(&mut self) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::TooLarge(format!(
                "droplet has more than {} entries",
                self.limits.max_entries
            )));
        }
        Ok(())
    }

    /// Refuses an entry over the size limit or of a kind a droplet may not
    /// hold, and records it in the tree (refusing duplicates and paths
    /// through symlinks).
    fn admit(&mut self, path: &str, entry: &EntryMeta) -> Result<(), Error> {
        let (kind, size) = (entry.kind, entry.size);
        if size > self.limits.max_unpacked {
            return Err(Error::TooLarge(format!(
                "entry {path:?} declares {size} bytes; the limit is {}",
                self.limits.max_unpacked
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
        self.tree.enter(path, kind).map_err(Error::DropletInvalid)
    }

    /// Writes an admitted entry at `home/vcap/<path>`.
    fn append<R: Read>(
        &mut self,
        entry: tar::Entry<'_, R>,
        path: &str,
        meta: &EntryMeta,
    ) -> Result<(), Error> {
        let target_path = format!("{ROOT}/{path}");
        match meta.kind {
            EntryType::Regular if path == "staging_info.yml" && meta.size <= MAX_STAGING_INFO => {
                self.append_staging_info(entry, &target_path, meta)
            }
            EntryType::Regular => self.append_file(entry, path, &target_path, meta),
            EntryType::Directory => self.append_directory(&target_path, meta),
            EntryType::Symlink => self.append_symlink(&entry, path, &target_path, meta),
            EntryType::Link => self.append_hardlink(&entry, path, &target_path, meta),
            _ => unreachable_kind(),
        }
    }

    /// Writes `staging_info.yml`, keeping its start command.
    fn append_staging_info<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        target_path: &str,
        meta: &EntryMeta,
    ) -> Result<(), Error> {
        let mut data = Vec::with_capacity(meta.size as usize);
        (&mut entry)
            .take(MAX_STAGING_INFO)
            .read_to_end(&mut data)
            .map_err(unreadable)?;
        self.start_command = parse_start_command(&data);
        let (kind, mode, mtime) = (meta.kind, meta.mode, meta.mtime);
        let mut header = vcap_header(kind, mode, mtime, data.len() as u64);
        self.builder
            .append_data(&mut header, target_path, data.as_slice())
            .map_err(write_failed)
    }

    /// Writes a regular file, streaming its content.
    fn append_file<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        path: &str,
        target_path: &str,
        meta: &EntryMeta,
    ) -> Result<(), Error> {
        let EntryMeta {
            kind,
            mode,
            mtime,
            size,
        } = *meta;
        let mut header = vcap_header(kind, mode, mtime, size);
        self.builder
            .append_data(&mut header, target_path, &mut entry)
            .map_err(|e| Error::DropletInvalid(format!("reading entry {path:?}: {e}")))
    }

    /// Writes a directory.
    fn append_directory(&mut self, target_path: &str, meta: &EntryMeta) -> Result<(), Error> {
        let (kind, mode, mtime) = (meta.kind, meta.mode, meta.mtime);
        let mut header = vcap_header(kind, mode, mtime, 0);
        self.builder
            .append_data(&mut header, format!("{target_path}/"), io::empty())
            .map_err(write_failed)
    }

    /// Writes a symlink whose target stays inside the droplet root.
    fn append_symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        path: &str,
        target_path: &str,
        meta: &EntryMeta,
    ) -> Result<(), Error> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| Error::DropletInvalid(format!("symlink {path:?} has no target")))?;
        let target = std::str::from_utf8(&target)
            .map_err(|_| Error::DropletInvalid(format!("symlink {path:?} target is not UTF-8")))?
            .to_owned();
        self.tree
            .check_symlink(path, &target)
            .map_err(Error::DropletInvalid)?;
        let mut header = vcap_header(meta.kind, 0o777, meta.mtime, 0);
        self.builder
            .append_link(&mut header, target_path, &target)
            .map_err(write_failed)
    }

    /// Writes a hard link to a file written earlier.
    fn append_hardlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        path: &str,
        target_path: &str,
        meta: &EntryMeta,
    ) -> Result<(), Error> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| Error::DropletInvalid(format!("hard link {path:?} has no target")))?;
        let target = self
            .tree
            .check_hardlink(path, &target)
            .map_err(Error::DropletInvalid)?;
        let (kind, mode, mtime) = (meta.kind, meta.mode, meta.mtime);
        let mut header = vcap_header(kind, mode, mtime, 0);
        self.builder
            .append_link(&mut header, target_path, format!("{ROOT}/{target}"))
            .map_err(write_failed)
    }

    /// Ends the layer's tar and the stream it goes into; answers the start
    /// command.
    fn finish(self) -> Result<Option<String>, Error> {
        self.builder
            .into_inner()
            .and_then(pipeline::LayerWriter::finish)
            .map_err(write_failed)?;
        Ok(self.start_command)
    }
}

/// The error for a kind [`Rewritten::admit`] lets through but no arm writes.
fn unreachable_kind() -> Result<(), Error> {
    Err(Error::DropletInvalid("unsupported entry type".into()))
}

/// What a refused entry kind is, in words.
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
