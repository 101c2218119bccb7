//! Scaling an app: instances move the etag only, memory or disk make a new LRP.

use serde::{Deserialize, Serialize};

use super::manifest::validate_sizes;
use super::{AppState, State};
use crate::{Error, Result};

/// What `PUT /sim/apps/{name}/scale` takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Instances.
    #[serde(default)]
    pub instances: Option<u32>,
    /// Memory in MB.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Disk in MB.
    #[serde(default)]
    pub disk_mb: Option<u64>,
}

impl State {
    /// Scales `name`: instances change the etag only; memory or disk make a new
    /// version of a started app.
    pub fn scale_app(&mut self, name: &str, scale: Scale, now_micros: i64) -> Result<()> {
        validate_sizes(scale.instances, scale.memory_mb, scale.disk_mb)?;
        if scale == Scale::default() {
            return Err(Error::unprocessable(
                "scale needs at least one of instances, memory_mb, disk_mb",
            ));
        }
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        let before = app.clone();
        if let Some(n) = scale.instances {
            app.instances = n;
        }
        if let Some(mb) = scale.memory_mb {
            app.memory_mb = mb;
        }
        if let Some(mb) = scale.disk_mb {
            app.disk_mb = mb;
        }
        let resized = app.memory_mb != before.memory_mb || app.disk_mb != before.disk_mb;
        if resized && app.state == AppState::Started {
            app.new_version(now_micros);
        } else if *app != before {
            app.touch(now_micros);
        }
        Ok(())
    }
}
