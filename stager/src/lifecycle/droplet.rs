//! The droplet: a gzipped tar laid out as CF's builder writes it —
//! `./app/` (the built app), `./deps/` (supplied dependencies), `./profile.d/`
//! (start-up scripts), empty `./tmp/` and `./logs/`, and `./staging_info.yml`
//! (stored without the leading `./`, which the tar format normalises away),
//! a JSON object `{"detected_buildpack", "start_command"}` that launchers read.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Layout, Staged};

/// A written droplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Droplet {
    /// Where the `.tgz` is.
    pub path: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The `staging_info.yml` text (JSON, which is YAML too, as CF writes it).
pub fn staging_info(staged: &Staged) -> String {
    serde_json::json!({
        "detected_buildpack": staged.detected_buildpack,
        "start_command": staged.start_command(),
    })
    .to_string()
}

/// Writes the droplet of `layout` to `out` and hashes it.
pub fn write(layout: &Layout, staged: &Staged, out: &Path) -> std::io::Result<Droplet> {
    let file = std::fs::File::create(out)?;
    let gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, dir) in [
        ("app", &layout.build_dir),
        ("deps", &layout.deps_dir),
        ("profile.d", &layout.profile_dir),
    ] {
        if dir.is_dir() {
            tar.append_dir_all(format!("./{name}"), dir)?;
        } else {
            append_empty_dir(&mut tar, name)?;
        }
    }
    append_empty_dir(&mut tar, "tmp")?;
    append_empty_dir(&mut tar, "logs")?;
    let info = staging_info(staged);
    let mut header = tar::Header::new_gnu();
    header.set_size(info.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "./staging_info.yml", info.as_bytes())?;
    let gz = tar.into_inner()?;
    let mut writer = gz.finish()?;
    writer.flush()?;
    drop(writer);
    let bytes = std::fs::read(out)?;
    Ok(Droplet {
        path: out.to_owned(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        size: bytes.len() as u64,
    })
}

fn append_empty_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut header, format!("./{name}/"), std::io::empty())
}
