//! `--fake-apps N`: started Docker apps whose guids derive from their names.

use std::collections::{BTreeMap, HashSet};

use super::{App, AppState, Droplet, Lifecycle, State};
use crate::guid::guid_from_seed;

impl State {
    /// Seeds `count` started Docker apps named `fake-app-<i>`, skipping those
    /// that exist already (guids derive from the name, so a restart with the same
    /// flag adds nothing). Returns how many were added.
    pub fn seed_fake_apps(&mut self, count: usize, image: &str, now_micros: i64) -> usize {
        let existing: HashSet<String> = self.apps.values().map(|app| app.guid.clone()).collect();
        let mut added = 0;
        for i in 0..count {
            let name = format!("fake-app-{i}");
            let guid = guid_from_seed(&name);
            if existing.contains(&guid) {
                continue;
            }
            let id = self.allocate_app_id();
            self.apps
                .insert(id, fake_app(id, guid, name, image, now_micros));
            added += 1;
        }
        added
    }
}

/// Fake app `name`: started, staged with `image` as its droplet, every guid from its name.
fn fake_app(id: u64, guid: String, name: String, image: &str, now_micros: i64) -> App {
    let droplet_guid = guid_from_seed(&format!("{name}/droplet"));
    let version = guid_from_seed(&format!("{name}/v1"));
    App {
        id,
        guid,
        name,
        state: AppState::Started,
        instances: 1,
        memory_mb: 64,
        disk_mb: 256,
        lifecycle: Lifecycle::Docker {
            image: image.to_owned(),
        },
        command: None,
        environment: BTreeMap::new(),
        health_check_type: "port".into(),
        health_check_http_endpoint: None,
        routes: Vec::new(),
        version,
        updated_at_micros: now_micros,
        package: None,
        droplet: Some(Droplet {
            guid: droplet_guid,
            hash: None,
            docker_image: Some(image.to_owned()),
            process_types: BTreeMap::from([("web".to_owned(), String::new())]),
            execution_metadata: "{}".into(),
            detected_buildpack: None,
        }),
        latest_build: None,
        crash_count: 0,
    }
}
