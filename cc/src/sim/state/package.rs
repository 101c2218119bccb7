//! App bits: the zip a buildpack app is staged from.

use serde::{Deserialize, Serialize};

use super::{Lifecycle, State};
use crate::{Error, Result};

/// Uploaded app bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Package guid (the app-bits download URL names it).
    pub guid: String,
    /// SHA-256 of the zip, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl State {
    /// Records uploaded app bits.
    pub fn set_package(&mut self, name: &str, package: Package, now_micros: i64) -> Result<()> {
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        if let Lifecycle::Docker { .. } = app.lifecycle {
            return Err(Error::unprocessable(format!(
                "app `{name}` is a Docker app: it has no app bits"
            )));
        }
        app.package = Some(package);
        app.touch(now_micros);
        Ok(())
    }
}
