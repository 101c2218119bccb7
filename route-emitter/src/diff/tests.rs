#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn endpoint(instance: &str, index: u32, port: u16, hostnames: &[&str]) -> Endpoint {
    Endpoint {
        process_guid: "app-v1".into(),
        app_guid: "app".into(),
        instance_guid: instance.into(),
        index,
        host: "10.0.0.1".into(),
        port,
        container_port: 8080,
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
    }
}

/// (instance, port, uris) of each message, for compact assertions.
fn summary(messages: &[RegistryMessage]) -> Vec<(String, u16, Vec<String>)> {
    messages
        .iter()
        .map(|m| (m.private_instance_id.clone(), m.port, m.uris.clone()))
        .collect()
}

fn s(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

#[test]
fn first_sight_registers_every_endpoint_once() {
    let new = [
        endpoint("i0", 0, 1000, &["a.example.com", "b.example.com"]),
        endpoint("i1", 1, 1001, &["a.example.com", "b.example.com"]),
    ];
    let changes = diff(&[], &new);
    assert!(changes.unregister.is_empty());
    assert_eq!(
        summary(&changes.register),
        vec![
            ("i0".into(), 1000, s(&["a.example.com", "b.example.com"])),
            ("i1".into(), 1001, s(&["a.example.com", "b.example.com"])),
        ]
    );
    assert_eq!(changes.register[1].private_instance_index, "1");
}

#[test]
fn nothing_changed_nothing_published() {
    let same = [endpoint("i0", 0, 1000, &["a.example.com"])];
    assert!(diff(&same, &same).is_empty());
}

#[test]
fn a_stopped_instance_is_unregistered_with_all_its_hostnames() {
    let old = [
        endpoint("i0", 0, 1000, &["a.example.com", "b.example.com"]),
        endpoint("i1", 1, 1001, &["a.example.com", "b.example.com"]),
    ];
    let changes = diff(&old, &old[..1]);
    assert!(changes.register.is_empty());
    assert_eq!(
        summary(&changes.unregister),
        vec![("i1".into(), 1001, s(&["a.example.com", "b.example.com"]))]
    );
}

#[test]
fn a_renamed_route_unregisters_the_old_hostname_and_registers_the_new() {
    let old = [endpoint(
        "i0",
        0,
        1000,
        &["a.example.com", "keep.example.com"],
    )];
    let new = [endpoint(
        "i0",
        0,
        1000,
        &["b.example.com", "keep.example.com"],
    )];
    let changes = diff(&old, &new);
    assert_eq!(
        summary(&changes.unregister),
        vec![("i0".into(), 1000, s(&["a.example.com"]))]
    );
    assert_eq!(
        summary(&changes.register),
        vec![("i0".into(), 1000, s(&["b.example.com"]))]
    );
}

#[test]
fn a_new_incarnation_at_the_same_address_replaces_the_old() {
    let old = [endpoint("old", 0, 1000, &["a.example.com"])];
    let new = [endpoint("new", 0, 1000, &["a.example.com"])];
    let changes = diff(&old, &new);
    assert_eq!(
        summary(&changes.unregister),
        vec![("old".into(), 1000, s(&["a.example.com"]))]
    );
    assert_eq!(
        summary(&changes.register),
        vec![("new".into(), 1000, s(&["a.example.com"]))]
    );
}

#[test]
fn container_ports_dialled_at_one_port_are_one_registration() {
    let mut admin = endpoint("i0", 0, 1000, &["admin.example.com"]);
    admin.container_port = 9090;
    let new = [endpoint("i0", 0, 1000, &["a.example.com"]), admin];
    assert_eq!(
        summary(&registrations(&new)),
        vec![(
            "i0".into(),
            1000,
            s(&["a.example.com", "admin.example.com"])
        )]
    );
}

#[test]
fn resync_repeats_every_registration_and_drops_what_is_gone() {
    let old = [
        endpoint("i0", 0, 1000, &["a.example.com"]),
        endpoint("i1", 1, 1001, &["a.example.com"]),
    ];
    let changes = resync(&old, &old[..1]);
    assert_eq!(
        summary(&changes.unregister),
        vec![("i1".into(), 1001, s(&["a.example.com"]))]
    );
    assert_eq!(
        summary(&changes.register),
        vec![("i0".into(), 1000, s(&["a.example.com"]))]
    );
}

/// gorouter's table as (instance, host, port, uri) rows.
fn apply(table: &mut BTreeSet<(String, String, u16, String)>, changes: &Changes) {
    for m in &changes.unregister {
        for uri in &m.uris {
            table.remove(&(
                m.private_instance_id.clone(),
                m.host.clone(),
                m.port,
                uri.clone(),
            ));
        }
    }
    for m in &changes.register {
        for uri in &m.uris {
            table.insert((
                m.private_instance_id.clone(),
                m.host.clone(),
                m.port,
                uri.clone(),
            ));
        }
    }
}

fn endpoints_strategy() -> impl Strategy<Value = Vec<Endpoint>> {
    let one = (
        0u32..4,
        0u16..3,
        proptest::collection::btree_set("[abc]\\.example\\.com", 0..3),
    )
        .prop_map(|(instance, port, hostnames)| {
            let hostnames: Vec<&str> = hostnames.iter().map(String::as_str).collect();
            endpoint(&format!("i{instance}"), instance, 1000 + port, &hostnames)
        });
    proptest::collection::vec(one, 0..6)
}

proptest! {
    /// Whatever the two states, applying the diff to a router that holds `old`
    /// leaves exactly `new`'s registrations.
    #[test]
    fn applying_the_diff_reaches_the_new_table(old in endpoints_strategy(), new in endpoints_strategy()) {
        let mut table = BTreeSet::new();
        apply(&mut table, &Changes { unregister: Vec::new(), register: registrations(&old) });
        apply(&mut table, &diff(&old, &new));
        let mut want = BTreeSet::new();
        apply(&mut want, &Changes { unregister: Vec::new(), register: registrations(&new) });
        prop_assert_eq!(table, want);
    }
}
