//! Whether an app runs: starting, stopping, and the crashes of what runs.

use super::{AppState, State};
use crate::model::ProcessGuid;
use crate::{Error, Result};

impl State {
    /// Starts `name`: it must have a droplet. Starting a stopped app makes a
    /// new version (a new LRP), as CC does.
    pub fn start_app(&mut self, name: &str, now_micros: i64) -> Result<()> {
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        if app.droplet.is_none() {
            return Err(Error::unprocessable(format!(
                "app `{name}` has no droplet: stage it before starting"
            )));
        }
        if app.state != AppState::Started {
            app.state = AppState::Started;
            app.new_version(now_micros);
        }
        Ok(())
    }

    /// Stops `name`; the bulk API stops listing it.
    pub fn stop_app(&mut self, name: &str, now_micros: i64) -> Result<()> {
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        if app.state != AppState::Stopped {
            app.state = AppState::Stopped;
            app.touch(now_micros);
        }
        Ok(())
    }

    /// Stops the app with this guid; whether it was started.
    pub(super) fn stop_app_by_guid(&mut self, app_guid: &str, now_micros: i64) -> bool {
        let Some(app) = self.apps.values_mut().find(|app| app.guid == app_guid) else {
            return false;
        };
        if app.state == AppState::Stopped {
            return false;
        }
        app.state = AppState::Stopped;
        app.touch(now_micros);
        true
    }

    /// Records a crash of the app behind `process_guid`. Unknown apps are a 404,
    /// as in CC.
    pub fn record_crash(&mut self, process_guid: &str) -> Result<()> {
        let pg = ProcessGuid(process_guid.to_owned());
        let guid = pg.app_guid().ok_or_else(|| {
            Error::message_parse(format!("`{process_guid}` is not a process guid"))
        })?;
        let id = self
            .app_id_by_guid(guid)
            .ok_or_else(|| Error::not_found(format!("ProcessNotFound: {guid}")))?;
        let app = self.app_mut(id)?;
        if pg.version() == Some(app.version.as_str()) {
            app.crash_count = app.crash_count.saturating_add(1);
        }
        Ok(())
    }
}
