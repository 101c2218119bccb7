use std::collections::BTreeMap;

use super::*;

fn statefulset(guid: &str, routes: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some("myapp".into()),
        annotations: Some(BTreeMap::from([
            (labels::PROCESS_GUID.to_owned(), guid.to_owned()),
            (labels::ROUTES.to_owned(), routes.to_owned()),
            (
                labels::LRP_SPEC.to_owned(),
                r#"{"app_guid":"app-1","process_type":"web","ports":[8080]}"#.to_owned(),
            ),
        ])),
        ..ObjectMeta::default()
    }
}

#[test]
fn routes_are_grouped_by_port_and_sorted() {
    let meta = statefulset(
        "guid",
        r#"{"cf-router":[{"hostname":"b.example.com","port":8080},
            {"hostname":"a.example.com","port":8080},{"hostname":"a.example.com","port":8080},
            {"hostname":"admin.example.com","port":9090},{"hostname":"bad","port":70000}],
            "tcp-router":[{"external_port":1}]}"#,
    );
    let (guid, routes) = of_statefulset(&meta).expect("Cube's StatefulSet");
    assert_eq!(guid, "guid");
    assert_eq!(routes.app_guid, "app-1");
    assert_eq!(
        routes.hostnames,
        BTreeMap::from([
            (8080, vec!["a.example.com".into(), "b.example.com".into()]),
            (9090, vec!["admin.example.com".into()]),
        ])
    );
    assert_eq!(of_statefulset(&ObjectMeta::default()), None);
    let no_routes = statefulset("guid", "not json");
    assert_eq!(
        of_statefulset(&no_routes).map(|(_, r)| r.hostnames),
        Some(BTreeMap::new())
    );
}

#[test]
fn the_table_follows_statefulsets_and_counts_route_changes() {
    let changes = Changes::default();
    let table = RouteTable::new(changes.clone());
    let one = r#"{"cf-router":[{"hostname":"a.example.com","port":8080}]}"#;
    let two = r#"{"cf-router":[{"hostname":"b.example.com","port":8080}]}"#;
    let hostnames = |guid: &str| {
        table.with(|routes| {
            routes
                .get(guid)
                .map(|r| r.hostnames.values().flatten().cloned().collect::<Vec<_>>())
        })
    };
    table.seen(&statefulset("g1", one));
    assert_eq!(changes.current(), 1);
    table.seen(&statefulset("g1", one));
    assert_eq!(changes.current(), 1, "nothing changed");
    table.seen(&statefulset("g1", two));
    assert_eq!(changes.current(), 2);
    assert_eq!(hostnames("g1"), Some(vec!["b.example.com".to_owned()]));

    table.seen(&statefulset("g2", one));
    table.relisting();
    table.seen(&statefulset("g1", two));
    table.listed();
    assert_eq!(hostnames("g2"), None, "not listed again");
    assert_eq!(changes.current(), 4);
    table.gone(&statefulset("g1", two));
    assert_eq!(hostnames("g1"), None);
    assert_eq!(changes.current(), 5);
}
