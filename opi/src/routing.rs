//! Where a router may send traffic: the endpoints of ready LRP instances.
//!
//! A backend that knows where its instances listen implements [`RouteSource`];
//! route publishers (the local Host-header router, the NATS route emitter for
//! Cloud Foundry's gorouter) read [`RouteSource::endpoints`] and wait on
//! [`RouteSource::changes`] instead of polling.
//!
//! [`route_hostnames`] and [`lrp_endpoints`] are the pure part both backends
//! share: an LRP's `cf-router` routes grouped by the container port they reach.

use std::collections::BTreeMap;

use crate::model::{DesiredLrp, Routes};

/// One ready instance a router may send traffic to for some hostnames.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// LRP process guid (as CC knows it, `<app guid>-<version>`).
    pub process_guid: String,
    /// The app guid.
    pub app_guid: String,
    /// Unique per instance incarnation (pod uid / local instance id).
    pub instance_guid: String,
    /// The instance index.
    pub index: u32,
    /// IP the router dials (pod IP; 127.0.0.1 locally).
    pub host: String,
    /// Port the router dials.
    pub port: u16,
    /// The app's container port this endpoint serves.
    pub container_port: u16,
    /// `cf-router` hostnames routed to `container_port` (sorted).
    pub hostnames: Vec<String>,
}

/// A backend that knows where its ready instances are.
pub trait RouteSource: Send + Sync + 'static {
    /// Endpoints of instances that are running AND ready now.
    fn endpoints(&self) -> Vec<Endpoint>;
    /// A counter bumped whenever `endpoints()` may have changed (wait with `changed()`).
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Every routed host (lower-cased, without path), whether or not an
    /// instance is ready for it: a router answers 503 for these and 404 for
    /// others. Default: the hosts of [`RouteSource::endpoints`]; a backend
    /// that knows the routes of LRPs with no ready instance says so here.
    fn routed_hosts(&self) -> std::collections::BTreeSet<String> {
        self.endpoints()
            .iter()
            .flat_map(|endpoint| endpoint.hostnames.iter())
            .map(|hostname| route_host(hostname))
            .collect()
    }
}

/// The host of a `cf-router` hostname (`app.example.com/path` →
/// `app.example.com`), lower-cased.
pub fn route_host(hostname: &str) -> String {
    hostname
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The `cf-router` hostnames of `routes` grouped by container port, each list
/// sorted and without duplicates. Ports outside `u16` (rejected by validation)
/// are skipped; hostnames are compared as given (CC sends them lower-case).
pub fn route_hostnames(routes: &Routes) -> BTreeMap<u16, Vec<String>> {
    let mut by_port: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for route in &routes.cf_router {
        let Ok(port) = u16::try_from(route.port) else {
            continue;
        };
        by_port
            .entry(port)
            .or_default()
            .push(route.hostname.clone());
    }
    for hostnames in by_port.values_mut() {
        hostnames.sort();
        hostnames.dedup();
    }
    by_port
}

/// Where one ready instance listens: what [`lrp_endpoints`] needs besides the LRP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceAddress {
    /// Unique per instance incarnation.
    pub instance_guid: String,
    /// The instance index.
    pub index: u32,
    /// IP the router dials.
    pub host: String,
}

/// The endpoints of one ready instance of `lrp`: one per container port that
/// has routes, dialled at `address.host` on `dial_port(container_port)`.
/// A container port `dial_port` maps to `None` (not exposed) gets no endpoint.
pub fn lrp_endpoints(
    lrp: &DesiredLrp,
    address: &InstanceAddress,
    dial_port: impl Fn(u16) -> Option<u16>,
) -> Vec<Endpoint> {
    route_hostnames(&lrp.routes)
        .into_iter()
        .filter_map(|(container_port, hostnames)| {
            Some(Endpoint {
                process_guid: lrp.id.process_guid(),
                app_guid: lrp.app.guid.clone(),
                instance_guid: address.instance_guid.clone(),
                index: address.index,
                host: address.host.clone(),
                port: dial_port(container_port)?,
                container_port,
                hostnames,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::Route;

    fn routes(entries: &[(&str, i64)]) -> Routes {
        Routes {
            cf_router: entries
                .iter()
                .map(|(hostname, port)| Route {
                    hostname: hostname.to_string(),
                    port: *port,
                })
                .collect(),
            other: BTreeMap::new(),
        }
    }

    #[test]
    fn hostnames_are_grouped_by_port_sorted_and_deduplicated() {
        let grouped = route_hostnames(&routes(&[
            ("b.example.com", 8080),
            ("a.example.com", 8080),
            ("admin.example.com", 9090),
            ("a.example.com", 8080),
            ("bad.example.com", 70000),
        ]));
        assert_eq!(
            grouped,
            BTreeMap::from([
                (
                    8080,
                    vec!["a.example.com".to_string(), "b.example.com".to_string()]
                ),
                (9090, vec!["admin.example.com".to_string()]),
            ])
        );
    }

    #[test]
    fn no_routes_no_hostnames() {
        assert!(route_hostnames(&Routes::default()).is_empty());
    }

    /// CC's buildpack fixture with two more routes, one on a second port.
    fn lrp_with_routes() -> DesiredLrp {
        let path = format!(
            "{}/testdata/desire_buildpack.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut req: crate::model::wire::DesireLrpRequest =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        req.ports = vec![8080, 9090];
        req.routes = routes(&[
            ("myapp.example.com", 8080),
            ("www.example.com", 8080),
            ("admin.example.com", 9090),
        ]);
        let process_guid = format!("{}-{}", req.guid, req.version);
        crate::model::validate::desire(&process_guid, req).unwrap()
    }

    #[test]
    fn one_endpoint_per_routed_container_port_at_the_dialled_port() {
        let lrp = lrp_with_routes();
        let address = InstanceAddress {
            instance_guid: "pod-uid".into(),
            index: 2,
            host: "10.1.2.3".into(),
        };
        let endpoints = lrp_endpoints(&lrp, &address, |port| Some(port + 1));
        assert_eq!(endpoints.len(), 2, "{endpoints:?}");
        let web = &endpoints[0];
        assert_eq!(web.process_guid, lrp.id.process_guid());
        assert_eq!(web.app_guid, lrp.app.guid);
        assert_eq!((web.instance_guid.as_str(), web.index), ("pod-uid", 2));
        assert_eq!(
            (web.host.as_str(), web.port, web.container_port),
            ("10.1.2.3", 8081, 8080)
        );
        assert_eq!(web.hostnames, ["myapp.example.com", "www.example.com"]);
        assert_eq!(
            (endpoints[1].port, endpoints[1].container_port),
            (9091, 9090)
        );
        assert_eq!(endpoints[1].hostnames, ["admin.example.com"]);
    }

    #[test]
    fn unexposed_container_ports_get_no_endpoint() {
        let lrp = lrp_with_routes();
        let address = InstanceAddress {
            instance_guid: "i".into(),
            index: 0,
            host: "127.0.0.1".into(),
        };
        let endpoints = lrp_endpoints(&lrp, &address, |port| (port == 8080).then_some(61000));
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0].port, 61000);
    }
}
