//! The buildpacks St8ge ships (`buildpacks/` in the repo): each a directory in
//! the CF format, offered in the order of the `order` file (one name a line;
//! buildpacks it does not name follow by name), served as zips built on the fly.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A directory of buildpacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    dir: PathBuf,
}

impl Shipped {
    /// The buildpacks in `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(Error::Config(format!(
                "buildpacks directory {} does not exist",
                dir.display()
            )));
        }
        Ok(Self { dir })
    }

    /// The first existing default location: `./buildpacks`, `buildpacks/` next
    /// to the binary or up to three directories above it (`target/debug/cube`
    /// in a checkout), or the checkout this crate was built from.
    pub fn find_default() -> Option<Self> {
        let mut candidates = vec![PathBuf::from("buildpacks")];
        if let Ok(exe) = std::env::current_exe() {
            candidates.extend(
                exe.ancestors()
                    .skip(1)
                    .take(4)
                    .map(|d| d.join("buildpacks")),
            );
        }
        candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../buildpacks"));
        candidates
            .into_iter()
            .find(|dir| dir.join("order").is_file() || has_buildpack(dir))
            .map(|dir| Self { dir })
    }

    /// Where they are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Buildpack names in detection order.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut all: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(Error::io("list", &self.dir))?
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().join("bin").is_dir())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .filter(|name| is_name(name))
            .collect();
        all.sort();
        let order = match std::fs::read_to_string(self.dir.join("order")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read", self.dir.join("order"))(e)),
        };
        let mut names: Vec<String> = order
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter(|name| all.iter().any(|n| n == name))
            .map(str::to_owned)
            .collect();
        names.dedup();
        for name in all {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Whether a buildpack of this name is shipped.
    pub fn has(&self, name: &str) -> bool {
        is_name(name) && self.dir.join(name).join("bin").is_dir()
    }

    /// Buildpack `name` as a zip (unix modes kept).
    pub fn zip(&self, name: &str) -> Result<Vec<u8>> {
        if !self.has(name) {
            return Err(Error::NotFound(format!("buildpack {name:?}")));
        }
        crate::zip::pack_dir(&self.dir.join(name))
    }
}

/// Buildpack names: a directory name without path tricks.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn has_buildpack(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().join("bin/detect").is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_file_then_the_rest_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["zeta", "alpha", "python", "binary"] {
            std::fs::create_dir_all(dir.path().join(name).join("bin")).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("not-a-buildpack")).unwrap();
        std::fs::write(
            dir.path().join("order"),
            "# first\npython\nmissing\nbinary\n",
        )
        .unwrap();
        let shipped = Shipped::new(dir.path()).unwrap();
        assert_eq!(
            shipped.names().unwrap(),
            ["python", "binary", "alpha", "zeta"]
        );
        assert!(shipped.has("alpha"));
        assert!(!shipped.has("../alpha"));
        assert!(!shipped.has("not-a-buildpack"));
        assert!(matches!(shipped.zip("nope"), Err(Error::NotFound(_))));
        assert!(Shipped::new(dir.path().join("missing")).is_err());
    }

    #[test]
    fn the_repository_ships_python_and_binary() {
        let shipped =
            Shipped::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../buildpacks")).unwrap();
        assert_eq!(shipped.names().unwrap(), ["python", "binary"]);
        assert!(Shipped::find_default().is_some());
    }
}
