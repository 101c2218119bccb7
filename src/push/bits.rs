//! Packs an app directory into the zip CC stores as app bits (what `cf push`
//! uploads).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

/// Directories never uploaded (CF's defaults plus VCS metadata).
const SKIPPED: &[&str] = &[".git", ".hg", ".svn", ".cfignore", "_darcs", ".DS_Store"];

/// Zips every file under `dir` (paths relative to it, `/`-separated, file modes
/// kept). Symlinks are skipped. Returns the archive and how many files it holds.
pub fn zip_dir(dir: &Path) -> Result<(Vec<u8>, usize)> {
    let meta = std::fs::metadata(dir).with_context(|| io("read app directory", dir))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let zip_error = |e: zip::result::ZipError| anyhow!("cannot build the zip: {e}");
    for (relative, path) in &files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(file_mode(path));
        writer
            .start_file(relative.as_str(), options)
            .map_err(zip_error)?;
        let bytes = std::fs::read(path).with_context(|| io("read", path))?;
        writer.write_all(&bytes).with_context(|| io("zip", path))?;
    }
    let cursor = writer.finish().map_err(zip_error)?;
    Ok((cursor.into_inner(), files.len()))
}

/// What failed, on which path: `read app directory /x`.
fn io(action: &str, path: &Path) -> String {
    format!("{action} {}", path.display())
}

/// Adds every regular file under `dir` to `files` as (path relative to
/// `root`, path), skipping [`SKIPPED`] names and symlinks.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| io("list", dir))?;
    for entry in entries {
        let entry = entry.with_context(|| io("list", dir))?;
        let name = entry.file_name();
        if SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().with_context(|| io("stat", &path))?;
        if kind.is_dir() {
            collect(root, &path, files)?;
        } else if kind.is_file() {
            let relative = path
                .strip_prefix(root)
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            files.push((relative, path));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o644)
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> u32 {
    0o644
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_files_relative_to_the_dir_without_vcs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("app.rb"), "puts 1").unwrap();
        std::fs::write(dir.path().join("lib/x.rb"), "x").unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "ref").unwrap();
        let (bytes, count) = zip_dir(dir.path()).unwrap();
        assert_eq!(count, 2);
        assert!(bytes.starts_with(b"PK\x03\x04"));
        let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<_> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["app.rb", "lib/x.rb"]);
    }

    #[test]
    fn a_missing_dir_is_named() {
        let err = zip_dir(Path::new("/nonexistent/app"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/app"), "{err}");
    }
}
