//! Crash-safe file writes: write a temporary file in the same directory, fsync
//! it, rename it over the target, fsync the directory. A reader (or a restart)
//! sees the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Suffix of temporary files; leftovers from a crash are removed at start-up.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}{TEMP_SUFFIX}", crate::guid::new_guid()));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io {
            action,
            path,
            cause: source,
        }
    };
    let result = (|| {
        let mut file = std::fs::File::create(&temp).map_err(io("create", &temp))?;
        file.write_all(bytes).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("fsync", &temp))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(io("rename into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Fsyncs a directory so a rename in it survives a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            action: "fsync directory",
            path: dir.to_owned(),
            cause: source,
        })
}

/// Removes temporary files a crash left in `dir`; returns how many.
pub fn remove_leftovers(dir: &Path) -> Result<usize> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        action: "list",
        path: dir.to_owned(),
        cause: source,
    })?;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
            let path: PathBuf = entry.path();
            if std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_cleans_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        // A crash between create and rename leaves only a temp file behind.
        std::fs::write(dir.path().join(".state.json.x.tmp"), b"half").unwrap();
        assert_eq!(remove_leftovers(dir.path()).unwrap(), 1);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn failure_names_the_file_and_leaves_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"old").unwrap();
        // The target is a directory now: rename fails.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        let err = write(&blocked, b"new").unwrap_err().to_string();
        assert!(err.contains("blocked"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(
            remove_leftovers(dir.path()).unwrap(),
            0,
            "temp file removed on failure"
        );
    }
}
