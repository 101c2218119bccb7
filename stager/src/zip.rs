//! Zip archives: app bits and buildpacks come as zips. Extraction refuses
//! entries that would land outside the target directory (`..`, absolute paths,
//! symlinks pointing out) and keeps unix modes, so buildpacks' `bin/*` stay
//! executable. Packing keeps modes too (St8ge serves its buildpacks as zips).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// Largest total size extracted from one archive (a zip bomb guard): 8 GiB.
const MAX_EXTRACTED_BYTES: u64 = 8 << 30;

/// Whether `name` (an entry's name) stays inside the directory it is extracted to.
pub fn is_safe_entry_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return false;
    }
    let path = Path::new(name);
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && !name.split(['/', '\\']).any(|part| part == "..")
}

/// Extracts the zip `bytes` into `dest` (created if missing). `what` names the
/// archive in errors. Returns how many files were written.
pub fn extract(bytes: &[u8], dest: &Path, what: &str) -> Result<usize> {
    let bad = |message: String| Error::Archive {
        what: what.to_owned(),
        message,
    };
    std::fs::create_dir_all(dest).map_err(Error::io("create", dest))?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let mut files = 0;
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| bad(format!("entry {index}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| bad(format!("entry {index}: {e}")))?
            .into_owned();
        if !is_safe_entry_name(&name) {
            return Err(bad(format!(
                "entry {name:?} would be written outside the target directory"
            )));
        }
        let target = dest.join(&name);
        let mode = entry.unix_mode();
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(Error::io("create", &target))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        if entry.is_symlink() {
            let mut link = String::new();
            entry
                .read_to_string(&mut link)
                .map_err(|e| bad(format!("symlink {name:?}: {e}")))?;
            let resolved = Path::new(&name)
                .parent()
                .unwrap_or(Path::new(""))
                .join(&link);
            if link.starts_with('/') || !stays_inside(&resolved) {
                return Err(bad(format!(
                    "symlink {name:?} points outside the archive ({link:?})"
                )));
            }
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(&link, &target).map_err(Error::io("link", &target))?;
            files += 1;
            continue;
        }
        total = total.saturating_add(entry.size());
        if total > MAX_EXTRACTED_BYTES {
            return Err(bad(format!(
                "expands to more than {MAX_EXTRACTED_BYTES} bytes"
            )));
        }
        let mut out = std::fs::File::create(&target).map_err(Error::io("create", &target))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("entry {name:?}: {e}")))?;
        if let Some(mode) = mode {
            let permissions = std::fs::Permissions::from_mode(mode & 0o7777);
            std::fs::set_permissions(&target, permissions).map_err(Error::io("chmod", &target))?;
        }
        files += 1;
    }
    Ok(files)
}

/// Whether a relative path, with `..` resolved lexically, stays at or below its root.
fn stays_inside(path: &Path) -> bool {
    let mut depth: i64 = 0;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Packs every file and directory under `dir` into a zip (deflated, unix modes
/// kept, paths relative to `dir`, in sorted order so the bytes are stable).
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>> {
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries)?;
    entries.sort();
    let zip_error = |e: zip::result::ZipError| Error::Archive {
        what: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (relative, path) in &entries {
        let meta = std::fs::symlink_metadata(path).map_err(Error::io("stat", path))?;
        let mode = meta.permissions().mode() & 0o7777;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode);
        if meta.is_dir() {
            writer
                .add_directory(format!("{relative}/"), options)
                .map_err(zip_error)?;
        } else if meta.is_file() {
            writer
                .start_file(relative.as_str(), options)
                .map_err(zip_error)?;
            let bytes = std::fs::read(path).map_err(Error::io("read", path))?;
            writer.write_all(&bytes).map_err(Error::io("zip", path))?;
        }
    }
    let cursor = writer.finish().map_err(zip_error)?;
    Ok(cursor.into_inner())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(Error::io("stat", &path))?;
        let relative = path
            .strip_prefix(root)
            .map_err(|e| Error::Internal(e.to_string()))?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if kind.is_dir() {
            out.push((relative, path.clone()));
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push((relative, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes, mode) in entries {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(*mode);
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn entry_names() {
        assert!(is_safe_entry_name("bin/detect"));
        assert!(is_safe_entry_name("./a/b"));
        assert!(!is_safe_entry_name("../etc/passwd"));
        assert!(!is_safe_entry_name("a/../../b"));
        assert!(!is_safe_entry_name("a/.."));
        assert!(!is_safe_entry_name("/etc/passwd"));
        assert!(!is_safe_entry_name(""));
    }

    #[test]
    fn extracts_deflated_files_with_modes() {
        let bytes = zip_of(&[
            ("bin/detect", b"#!/bin/sh\nexit 0\n", 0o755),
            ("README", b"hello", 0o644),
        ]);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(extract(&bytes, dir.path(), "test").unwrap(), 2);
        let detect = dir.path().join("bin/detect");
        assert_eq!(
            std::fs::metadata(&detect).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(std::fs::read(dir.path().join("README")).unwrap(), b"hello");
    }

    #[test]
    fn refuses_entries_escaping_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        for name in ["../evil", "/abs/evil", "a/../../evil"] {
            let bytes = zip_of(&[(name, b"x", 0o644)]);
            let error = extract(&bytes, &target, "app bits")
                .unwrap_err()
                .to_string();
            assert!(error.contains("outside"), "{name}: {error}");
            assert!(error.contains("app bits"), "{error}");
        }
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let error = extract(b"not a zip", dir.path(), "buildpack python")
            .unwrap_err()
            .to_string();
        assert!(error.contains("buildpack python"), "{error}");
    }

    #[test]
    fn pack_then_extract_round_trips_modes() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("bin")).unwrap();
        std::fs::write(src.path().join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src.path().join("bin/run"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(src.path().join("data.txt"), "data").unwrap();
        let bytes = pack_dir(src.path()).unwrap();
        assert_eq!(bytes, pack_dir(src.path()).unwrap(), "stable bytes");
        let out = tempfile::tempdir().unwrap();
        extract(&bytes, out.path(), "round trip").unwrap();
        let mode = std::fs::metadata(out.path().join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_to_string(out.path().join("data.txt")).unwrap(),
            "data"
        );
    }
}
