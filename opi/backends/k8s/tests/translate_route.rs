//! The routing objects of an LRP (Service, Ingress, `HTTPRoute`) as
//! snapshots (review changes with `cargo insta review`), and the rules the
//! snapshots cannot show.

use opi::model::DesiredLrp;
use opi_k8s::translate::Placement;
use opi_k8s::translate::route::{self, Gateway, Target};

mod common;

fn placement() -> Placement {
    Placement {
        namespace: "acme-dev".into(),
        name: "myapp".into(),
        superseded_versions: Vec::new(),
    }
}

fn with_routes(hosts: &[(&str, i64)]) -> DesiredLrp {
    let mut lrp = common::lrp("myapp", "guid-1", "v1", 2);
    lrp.routes = common::routes(hosts);
    lrp
}

fn owner() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    route::owner("myapp", "00000000-0000-4000-8000-000000000001")
}

fn myapp() -> DesiredLrp {
    with_routes(&[
        ("myapp.example.com", 8080),
        ("MyApp.Apps.Example.com/api/", 8080),
        ("myapp.example.com", 8080),
    ])
}

#[test]
fn service_snapshot() {
    let service = route::service(&myapp(), &placement(), "myapp", &owner()).expect("a port");
    insta::assert_json_snapshot!(service);
}

#[test]
fn ingress_snapshot() {
    let ingress = route::ingress(
        &myapp(),
        &placement(),
        "myapp",
        Some("nginx"),
        Some("apps-tls"),
        &owner(),
    )
    .expect("routes");
    insta::assert_json_snapshot!(ingress);
}

#[test]
fn http_route_snapshot() {
    let gateway = Gateway {
        name: "cf",
        namespace: Some("gateways"),
    };
    let route =
        route::http_route(&myapp(), &placement(), "myapp", &gateway, &owner()).expect("routes");
    insta::assert_json_snapshot!(route);
}

#[test]
fn hostnames_split_into_lowercase_hosts_and_path_prefixes_without_duplicates() {
    let targets: Vec<Target> = route::targets(&myapp()).into_iter().collect();
    assert_eq!(
        targets,
        [
            Target {
                host: "myapp.apps.example.com".into(),
                path: "/api/".into(),
                port: 8080
            },
            Target {
                host: "myapp.example.com".into(),
                path: "/".into(),
                port: 8080
            },
        ]
    );
}

#[test]
fn service_ports_are_container_and_route_ports_once_each() {
    let mut lrp = with_routes(&[("a.example.com", 9090), ("b.example.com", 8080)]);
    lrp.ports = vec![8080, 7070];
    let service = route::service(&lrp, &placement(), "myapp", &owner()).expect("ports");
    let ports: Vec<(Option<String>, i32)> = service
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name, p.port))
        .collect();
    assert_eq!(
        ports,
        [
            (Some("port-7070".into()), 7070),
            (Some("port-8080".into()), 8080),
            (Some("port-9090".into()), 9090),
        ]
    );
}

#[test]
fn no_ports_no_service_and_no_routes_no_route_objects() {
    let mut lrp = with_routes(&[]);
    lrp.ports = Vec::new();
    assert!(route::service(&lrp, &placement(), "myapp", &owner()).is_none());
    assert!(route::ingress(&lrp, &placement(), "myapp", None, None, &owner()).is_none());
    let gateway = Gateway {
        name: "cf",
        namespace: None,
    };
    assert!(route::http_route(&lrp, &placement(), "myapp", &gateway, &owner()).is_none());
}

#[test]
fn one_ingress_rule_per_host_with_a_path_per_route() {
    let lrp = with_routes(&[
        ("a.example.com/v2", 8080),
        ("a.example.com", 8080),
        ("b.example.com", 9090),
    ]);
    let ingress = route::ingress(&lrp, &placement(), "svc", None, None, &owner()).expect("routes");
    let spec = ingress.spec.expect("spec");
    assert_eq!(spec.ingress_class_name, None);
    assert_eq!(spec.tls, None);
    let rules: Vec<(String, Vec<(String, i32)>)> = spec
        .rules
        .unwrap_or_default()
        .into_iter()
        .map(|rule| {
            let paths = rule
                .http
                .map(|h| h.paths)
                .unwrap_or_default()
                .into_iter()
                .map(|p| {
                    let port = p
                        .backend
                        .service
                        .and_then(|s| s.port)
                        .and_then(|p| p.number)
                        .unwrap_or(0);
                    (p.path.unwrap_or_default(), port)
                })
                .collect();
            (rule.host.unwrap_or_default(), paths)
        })
        .collect();
    assert_eq!(
        rules,
        [
            (
                "a.example.com".to_owned(),
                vec![("/".to_owned(), 8080), ("/v2".to_owned(), 8080)]
            ),
            ("b.example.com".to_owned(), vec![("/".to_owned(), 9090)]),
        ]
    );
}
