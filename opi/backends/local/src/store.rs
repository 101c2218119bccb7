//! The local backend's desired state on disk: one JSON file per LRP (the OPI
//! desire body), written atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash mid-write leaves the old file or the new one,
//! never half of one. On start the backend reloads these and brings the
//! instances back.

use std::io::Write;
use std::path::{Path, PathBuf};

use opi::model::wire::DesireLrpRequest;
use opi::model::{DesiredLrp, LrpId, validate};

use crate::Error;

/// Desired LRPs persisted under a directory.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating) the store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(Error::io("cannot create", &dir))?;
        Ok(Self { dir })
    }

    fn path(&self, id: &LrpId) -> PathBuf {
        // Guids are validated to [A-Za-z0-9._-], so this is a plain file name.
        self.dir.join(format!("{}.json", id.process_guid()))
    }

    /// Saves `lrp`, replacing any earlier version atomically.
    pub fn save(&self, lrp: &DesiredLrp) -> Result<(), Error> {
        let path = self.path(&lrp.id);
        let body =
            serde_json::to_vec_pretty(&DesireLrpRequest::from(lrp)).map_err(|e| Error::State {
                path: path.clone(),
                message: e.to_string(),
            })?;
        write_atomically(&path, &body)
    }

    /// Forgets `id` (no error when it is not stored).
    pub fn remove(&self, id: &LrpId) -> Result<(), Error> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("cannot remove", &path)(e)),
        }
    }

    /// Every stored LRP. A file that cannot be read back is moved aside to
    /// `*.corrupt` (kept for inspection) and reported, and the rest load.
    pub fn load_all(&self) -> Result<(Vec<DesiredLrp>, Vec<Error>), Error> {
        let mut lrps = Vec::new();
        let mut problems = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(Error::io("cannot list", &self.dir))?;
        for entry in entries {
            let path = entry.map_err(Error::io("cannot list", &self.dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match load(&path) {
                Ok(lrp) => lrps.push(lrp),
                Err(message) => {
                    let aside = path.with_extension("json.corrupt");
                    let _ = std::fs::rename(&path, &aside);
                    problems.push(Error::State { path, message });
                }
            }
        }
        Ok((lrps, problems))
    }
}

fn load(path: &Path) -> Result<DesiredLrp, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let request: DesireLrpRequest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let process_guid = format!("{}-{}", request.guid, request.version);
    validate::desire(&process_guid, request).map_err(|e| e.to_string())
}

/// Writes `data` to `path` so that readers see either the old or the new content.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    let mut file = std::fs::File::create(&tmp).map_err(Error::io("cannot create", &tmp))?;
    file.write_all(data)
        .map_err(Error::io("cannot write", &tmp))?;
    file.sync_all().map_err(Error::io("cannot sync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(Error::io("cannot rename into", path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("cannot sync", dir))
}
