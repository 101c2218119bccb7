//! The apps the bulk API lists: started and staged, in id order.

use std::collections::HashMap;

use super::{App, State};
use crate::model::ProcessGuid;

impl State {
    /// One page of desired apps after `last_id`, in id order.
    pub fn desired_page(&self, last_id: u64, batch_size: usize) -> Vec<&App> {
        self.apps
            .range(last_id.saturating_add(1)..)
            .map(|(_, app)| app)
            .filter(|app| app.is_desired())
            .take(batch_size)
            .collect()
    }

    /// Desired apps whose current process guid is one of `process_guids`, in
    /// the order asked; unknown or outdated guids are skipped, as CC does.
    pub fn desired_by_process_guid(&self, process_guids: &[String]) -> Vec<&App> {
        let by_guid: HashMap<&str, &App> = self
            .apps
            .values()
            .filter(|app| app.is_desired())
            .map(|app| (app.guid.as_str(), app))
            .collect();
        process_guids
            .iter()
            .filter_map(|pg| {
                let pg = ProcessGuid(pg.clone());
                let app = by_guid.get(pg.app_guid()?)?;
                (pg.version() == Some(app.version.as_str())).then_some(*app)
            })
            .collect()
    }
}
