//! Process guids: `<app_guid>-<version>`, both halves UUIDs
//! (`Diego::ProcessGuid.from(guid, version)`).

use serde::{Deserialize, Serialize};

/// Length of a textual UUID, which is what both halves of a process guid are.
const GUID_LEN: usize = 36;

/// A process guid as CC builds it: the app (process) guid, a dash, the version.
/// A new version is a new LRP; the same process guid with a new etag is an update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessGuid(pub String);

impl ProcessGuid {
    /// Joins an app guid and a version.
    pub fn new(app_guid: &str, version: &str) -> Self {
        ProcessGuid(format!("{app_guid}-{version}"))
    }

    /// The app guid: the first 36 characters (`ProcessGuid.cc_process_guid`).
    /// `None` when the string is too short to hold `<guid>-<version>`.
    pub fn app_guid(&self) -> Option<&str> {
        self.split().map(|(app, _)| app)
    }

    /// The version: everything after the app guid and its dash
    /// (`ProcessGuid.cc_process_version`).
    pub fn version(&self) -> Option<&str> {
        self.split().map(|(_, version)| version)
    }

    fn split(&self) -> Option<(&str, &str)> {
        let app = self.0.get(..GUID_LEN)?;
        let rest = self.0.get(GUID_LEN..)?;
        let version = rest.strip_prefix('-')?;
        (!version.is_empty()).then_some((app, version))
    }

    /// The process guid as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProcessGuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_cc() {
        let pg = ProcessGuid::new(
            "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c",
            "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        );
        assert_eq!(pg.app_guid(), Some("8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c"));
        assert_eq!(pg.version(), Some("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"));
        assert_eq!(ProcessGuid("short".into()).app_guid(), None);
        assert_eq!(
            ProcessGuid("8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c".into()).version(),
            None
        );
    }
}
