//! Droplets: where they come from ([`DropletSource`]) and how they are
//! unpacked ([`extract`]) — once per droplet, shared by every instance and task.
//!
//! A droplet is a `.tgz` in CF's layout (`app/`, `deps/`, `profile.d/`, `tmp/`,
//! `logs/`, `staging_info.yml`). Cube's registry serves the same files as an
//! image layer re-rooted under `home/vcap/`; [`extract`] accepts both.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::Error;

/// Where droplets come from.
#[async_trait::async_trait]
pub trait DropletSource: Send + Sync + 'static {
    /// Writes droplet `guid` with content hash `hash` as a `.tgz` to `dest`.
    async fn download(&self, guid: &str, hash: &str, dest: &Path) -> Result<(), Error>;
}

/// Droplets as files `<dir>/<guid>.tgz` (tests, and a CC simulator's store).
pub struct FileDroplets {
    dir: PathBuf,
}

impl FileDroplets {
    /// Droplets under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait::async_trait]
impl DropletSource for FileDroplets {
    async fn download(&self, guid: &str, hash: &str, dest: &Path) -> Result<(), Error> {
        let source = self.dir.join(format!("{guid}.tgz"));
        tokio::fs::copy(&source, dest)
            .await
            .map(drop)
            .map_err(|e| Error::Droplet {
                droplet: format!("{guid}:{hash}"),
                message: format!("cannot read {}: {e}", source.display()),
            })
    }
}

/// Droplets pulled from Cube's registry: the last layer of image
/// `cloudfoundry/<guid>:<hash>`, digest-verified.
pub struct RegistryDroplets {
    base: reqwest::Url,
    http: reqwest::Client,
}

impl RegistryDroplets {
    /// Pulls from the registry at `base` (e.g. `http://127.0.0.1:8087`).
    pub fn new(base: reqwest::Url, http: reqwest::Client) -> Self {
        Self { base, http }
    }
}

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[async_trait::async_trait]
impl DropletSource for RegistryDroplets {
    async fn download(&self, guid: &str, hash: &str, dest: &Path) -> Result<(), Error> {
        let droplet = format!("{guid}:{hash}");
        let fail = |message: String| Error::Droplet {
            droplet: droplet.clone(),
            message,
        };
        let manifest_url = self
            .base
            .join(&format!("v2/cloudfoundry/{guid}/manifests/{hash}"))
            .map_err(|e| fail(e.to_string()))?;
        let manifest: serde_json::Value = self
            .http
            .get(manifest_url.clone())
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| fail(format!("GET {manifest_url}: {e}")))?
            .json()
            .await
            .map_err(|e| fail(format!("manifest is not JSON: {e}")))?;
        let digest = manifest["layers"]
            .as_array()
            .and_then(|layers| layers.last())
            .and_then(|layer| layer["digest"].as_str())
            .ok_or_else(|| fail("manifest has no layers".into()))?
            .to_owned();
        let expected_hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| fail(format!("unsupported digest {digest}")))?
            .to_owned();
        let blob_url = self
            .base
            .join(&format!("v2/cloudfoundry/{guid}/blobs/{digest}"))
            .map_err(|e| fail(e.to_string()))?;
        let mut response = self
            .http
            .get(blob_url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| fail(format!("GET {blob_url}: {e}")))?;
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(Error::io("cannot create", dest))?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(format!("reading layer: {e}")))?
        {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(Error::io("cannot write", dest))?;
        }
        file.flush()
            .await
            .map_err(Error::io("cannot write", dest))?;
        let actual: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if actual != expected_hex {
            return Err(fail(format!(
                "layer digest mismatch: got sha256:{actual}, want {digest}"
            )));
        }
        Ok(())
    }
}

/// The path of a droplet entry relative to the droplet root: `./` and an
/// image layer's `home/vcap/` prefix removed. `None` for the prefix directories
/// themselves. Errors for anything that could escape the root.
pub fn droplet_path(path: &Path) -> Result<Option<PathBuf>, String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_owned()),
            Component::ParentDir => return Err(format!("{} contains '..'", path.display())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{} is absolute", path.display()));
            }
        }
    }
    let strip = parts.len() >= 2 && parts[0] == "home" && parts[1] == "vcap";
    if strip {
        parts.drain(..2);
    } else if parts.len() == 1 && parts[0] == "home" {
        return Ok(None);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.iter().collect()))
}

fn symlink_stays_inside(entry_rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = entry_rel.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Unpacks droplet `tgz` into `dest` (which must not exist) atomically: the
/// files go to a temporary sibling that is renamed into place, so `dest`
/// either holds the whole droplet or does not exist. Entries that could escape
/// `dest` (`..`, absolute paths, symlinks or hard links pointing outside,
/// devices) are refused.
pub fn extract(tgz: &Path, dest: &Path) -> Result<(), Error> {
    let droplet = dest.display().to_string();
    let bad = |message: String| Error::Droplet {
        droplet: droplet.clone(),
        message,
    };
    let parent = dest
        .parent()
        .ok_or_else(|| bad("destination has no parent".into()))?;
    std::fs::create_dir_all(parent).map_err(Error::io("cannot create", parent))?;
    let staging = parent.join(format!(
        ".{}.partial-{}",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("droplet"),
        std::process::id()
    ));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(Error::io("cannot clean", &staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(Error::io("cannot create", &staging))?;
    let result = unpack_into(tgz, &staging).map_err(bad);
    if let Err(error) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    std::fs::rename(&staging, dest).map_err(Error::io("cannot move droplet into", dest))
}

fn unpack_into(tgz: &Path, root: &Path) -> Result<(), String> {
    let file =
        std::fs::File::open(tgz).map_err(|e| format!("cannot open {}: {e}", tgz.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("corrupt archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let Some(rel) = droplet_path(&path)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| format!("bad link in {}: {e}", path.display()))?
                .ok_or_else(|| format!("link {} has no target", path.display()))?
                .into_owned();
            let ok = if kind.is_symlink() {
                symlink_stays_inside(&rel, &target)
            } else {
                droplet_path(&target)?.is_some()
            };
            if !ok {
                return Err(format!(
                    "link {} -> {} points outside the droplet",
                    path.display(),
                    target.display()
                ));
            }
            if kind.is_hard_link() {
                let Some(target_rel) = droplet_path(&target)? else {
                    return Err(format!("hard link {} has no target", path.display()));
                };
                let link = root.join(&rel);
                if let Some(dir) = link.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                std::fs::hard_link(root.join(target_rel), &link)
                    .map_err(|e| format!("hard link {}: {e}", path.display()))?;
                continue;
            }
        } else if !(kind.is_file() || kind.is_dir() || kind == tar::EntryType::Continuous) {
            return Err(format!(
                "{} is a {kind:?} entry; droplets hold only files, directories and links",
                path.display()
            ));
        }
        let target = root.join(&rel);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        entry
            .unpack(&target)
            .map_err(|e| format!("cannot unpack {}: {e}", path.display()))?;
    }
    // Drain the rest of the gzip stream so trailing garbage is noticed.
    let _ = archive.into_inner().read_to_end(&mut Vec::new());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tgz(entries: &[(&str, &[u8])], links: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        for (path, target) in links {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        file
    }

    #[test]
    fn cf_layout_and_image_layout_unpack_the_same() {
        for prefix in ["", "home/vcap/", "./"] {
            let archive = tgz(
                &[
                    (&format!("{prefix}app/run.sh"), b"echo hi"),
                    (
                        &format!("{prefix}staging_info.yml"),
                        b"start_command: ./run.sh",
                    ),
                ],
                &[(&format!("{prefix}app/current"), "run.sh")],
            );
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("droplet");
            extract(archive.path(), &dest).unwrap();
            assert_eq!(
                std::fs::read(dest.join("app/run.sh")).unwrap(),
                b"echo hi",
                "{prefix}"
            );
            assert!(dest.join("staging_info.yml").exists());
            assert_eq!(
                std::fs::read_link(dest.join("app/current")).unwrap(),
                PathBuf::from("run.sh")
            );
        }
    }

    #[test]
    fn escaping_links_are_refused_and_nothing_is_left() {
        for target in ["/etc/passwd", "../../etc/passwd", "../../../x"] {
            let archive = tgz(&[("app/ok", b"x")], &[("app/evil", target)]);
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("droplet");
            let err = extract(archive.path(), &dest).unwrap_err().to_string();
            assert!(
                err.contains("points outside the droplet"),
                "{target}: {err}"
            );
            assert!(!dest.exists());
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "partial dir left"
            );
        }
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"definitely not gzip").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = extract(file.path(), &dir.path().join("d"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("corrupt archive") || err.contains("not a tar.gz"),
            "{err}"
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            droplet_path(Path::new("home/vcap/app/x")).unwrap(),
            Some(PathBuf::from("app/x"))
        );
        assert_eq!(droplet_path(Path::new("home/vcap")).unwrap(), None);
        assert_eq!(droplet_path(Path::new("home")).unwrap(), None);
        assert_eq!(
            droplet_path(Path::new("./app")).unwrap(),
            Some(PathBuf::from("app"))
        );
        assert!(droplet_path(Path::new("app/../../x")).is_err());
        assert!(droplet_path(Path::new("/etc/passwd")).is_err());
    }

    proptest! {
        #[test]
        fn accepted_paths_stay_inside(parts in proptest::collection::vec("[a-z.]{1,3}|\\.\\.", 1..6)) {
            let path: PathBuf = parts.iter().collect();
            if let Ok(Some(rel)) = droplet_path(&path) {
                prop_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
    }
}
