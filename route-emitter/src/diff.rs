//! The pure core: which messages move gorouter's table from what it was last
//! told to what the backend reports now.
//!
//! gorouter keys a registration by hostname and `host:port`, so an endpoint is
//! identified here by everything but its hostnames (and the container port,
//! which gorouter never sees): a new instance incarnation, a moved port or a
//! new host is a different registration, and a hostname added to or removed
//! from the same endpoint registers or unregisters just that hostname.

use std::collections::{BTreeMap, BTreeSet};

use opi::routing::Endpoint;

use crate::message::RegistryMessage;

/// Messages to publish, unregistrations first (so an endpoint that comes back
/// at the same address ends registered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// `router.unregister` bodies.
    pub unregister: Vec<RegistryMessage>,
    /// `router.register` bodies.
    pub register: Vec<RegistryMessage>,
}

impl Changes {
    /// Nothing to publish.
    pub fn is_empty(&self) -> bool {
        self.unregister.is_empty() && self.register.is_empty()
    }
}

/// What gorouter identifies one registration by, minus the hostnames.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    process_guid: String,
    app_guid: String,
    instance_guid: String,
    index: u32,
    host: String,
    port: u16,
}

/// Endpoints by key, hostnames of every container port dialled at the same
/// `host:port` merged.
fn table(endpoints: &[Endpoint]) -> BTreeMap<Key, (&Endpoint, BTreeSet<&str>)> {
    let mut table: BTreeMap<Key, (&Endpoint, BTreeSet<&str>)> = BTreeMap::new();
    for endpoint in endpoints {
        let key = Key {
            process_guid: endpoint.process_guid.clone(),
            app_guid: endpoint.app_guid.clone(),
            instance_guid: endpoint.instance_guid.clone(),
            index: endpoint.index,
            host: endpoint.host.clone(),
            port: endpoint.port,
        };
        table
            .entry(key)
            .or_insert_with(|| (endpoint, BTreeSet::new()))
            .1
            .extend(endpoint.hostnames.iter().map(String::as_str));
    }
    table
}

fn message(
    endpoint: &Endpoint,
    uris: impl IntoIterator<Item = impl Into<String>>,
) -> RegistryMessage {
    RegistryMessage::new(endpoint, uris.into_iter().map(Into::into).collect())
}

/// Every registration of `endpoints`: the heartbeat that keeps gorouter from
/// pruning them, and what a router that just started needs.
pub fn registrations(endpoints: &[Endpoint]) -> Vec<RegistryMessage> {
    table(endpoints)
        .into_values()
        .filter(|(_, hostnames)| !hostnames.is_empty())
        .map(|(endpoint, hostnames)| message(endpoint, hostnames))
        .collect()
}

/// The messages that take gorouter from `old` to `new`: unregister what is
/// gone (whole endpoints, or hostnames an endpoint lost), register what is
/// new (whole endpoints, or hostnames an endpoint gained). Unchanged
/// registrations are not repeated.
pub fn diff(old: &[Endpoint], new: &[Endpoint]) -> Changes {
    let (old, new) = (table(old), table(new));
    let mut changes = Changes::default();
    for (key, (endpoint, hostnames)) in &old {
        let kept = new.get(key).map(|(_, kept)| kept);
        let gone: Vec<&str> = hostnames
            .iter()
            .filter(|h| !kept.is_some_and(|kept| kept.contains(*h)))
            .copied()
            .collect();
        if !gone.is_empty() {
            changes.unregister.push(message(endpoint, gone));
        }
    }
    for (key, (endpoint, hostnames)) in &new {
        let had = old.get(key).map(|(_, had)| had);
        let added: Vec<&str> = hostnames
            .iter()
            .filter(|h| !had.is_some_and(|had| had.contains(*h)))
            .copied()
            .collect();
        if !added.is_empty() {
            changes.register.push(message(endpoint, added));
        }
    }
    changes
}

/// A full resync: unregister what is gone since `old`, and register all of
/// `new` again (the heartbeat).
pub fn resync(old: &[Endpoint], new: &[Endpoint]) -> Changes {
    Changes {
        unregister: diff(old, new).unregister,
        register: registrations(new),
    }
}

#[cfg(test)]
mod tests;
