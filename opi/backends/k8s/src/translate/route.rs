//! An LRP's `cf-router` routes as Kubernetes objects: a Service selecting its
//! pods, and an Ingress or a Gateway API `HTTPRoute` sending each route's
//! host (and path) to the Service port of the route's container port.
//!
//! All three are named after the StatefulSet (the Service only differs when
//! that name starts with a digit, see [`crate::names::service_name`]) and owned by it
//! (`ownerReferences`), so Kubernetes' garbage collector removes whatever a
//! stop missed. Each is computed whole from the desired LRP and
//! server-side applied, so an update changes exactly the routes that changed:
//! unchanged rules are the same values, and applying the same routes again
//! writes nothing.
//!
//! CF route hostnames may carry a path (`host.example.com/api`): the path
//! becomes a path-prefix match on that host.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::Resource as _;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use opi::model::DesiredLrp;
use serde::{Deserialize, Serialize};

use super::Placement;
use super::lrp::{lrp_labels, selector_labels};
use crate::labels;

/// One route as the routing objects see it: lowercased host, path prefix
/// (`/` when the route has none) and container port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The host name (may be a wildcard, `*.example.com`).
    pub host: String,
    /// The path prefix, starting with `/`.
    pub path: String,
    /// The container port.
    pub port: u16,
}

/// The distinct routes of `lrp`, sorted (so the objects never reorder).
pub fn targets(lrp: &DesiredLrp) -> BTreeSet<Target> {
    lrp.routes
        .cf_router
        .iter()
        .filter_map(|route| {
            let port = u16::try_from(route.port).ok().filter(|p| *p != 0)?;
            let hostname = route.hostname.trim();
            let (host, path) = match hostname.split_once('/') {
                Some((host, path)) => (host, format!("/{}", path.trim_start_matches('/'))),
                None => (hostname, "/".to_owned()),
            };
            Some(Target {
                host: host.to_ascii_lowercase(),
                path,
                port,
            })
        })
        .collect()
}

/// The name of a Service port: `port-<container port>`.
pub fn port_name(port: u16) -> String {
    format!("port-{port}")
}

/// The reference that makes an object owned by the StatefulSet
/// `name`/`uid`, so deleting the StatefulSet deletes it.
pub fn owner(statefulset: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: statefulset.to_owned(),
        uid: uid.to_owned(),
        block_owner_deletion: None,
        controller: None,
    }
}

fn meta(name: &str, placement: &Placement, lrp: &DesiredLrp, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(placement.namespace.clone()),
        labels: Some(lrp_labels(lrp)),
        annotations: Some(BTreeMap::from([(
            labels::PROCESS_GUID.to_owned(),
            lrp.id.guid.clone(),
        )])),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The Service `name` selecting `lrp`'s pods, with one port (`port-<n>`,
/// TCP, port = targetPort = n) per container port and per route port; `None`
/// when there is no port at all (a Service needs one).
pub fn service(
    lrp: &DesiredLrp,
    placement: &Placement,
    name: &str,
    owner: &OwnerReference,
) -> Option<Service> {
    let ports: BTreeSet<u16> = lrp
        .ports
        .iter()
        .copied()
        .chain(targets(lrp).iter().map(|t| t.port))
        .collect();
    if ports.is_empty() {
        return None;
    }
    Some(Service {
        metadata: meta(name, placement, lrp, owner),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(&lrp.id.guid)),
            ports: Some(
                ports
                    .into_iter()
                    .map(|port| ServicePort {
                        name: Some(port_name(port)),
                        port: i32::from(port),
                        target_port: Some(IntOrString::Int(i32::from(port))),
                        protocol: Some("TCP".into()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// The Ingress `placement.name` of `lrp`: one rule per route host, one
/// `Prefix` path per route path, each to Service `service`'s port for the
/// route's container port; `None` without routes (an Ingress needs a rule).
pub fn ingress(
    lrp: &DesiredLrp,
    placement: &Placement,
    service: &str,
    class: Option<&str>,
    tls_secret: Option<&str>,
    owner: &OwnerReference,
) -> Option<Ingress> {
    let targets = targets(lrp);
    if targets.is_empty() {
        return None;
    }
    let mut hosts: BTreeMap<&str, Vec<HTTPIngressPath>> = BTreeMap::new();
    for target in &targets {
        hosts
            .entry(target.host.as_str())
            .or_default()
            .push(HTTPIngressPath {
                path: Some(target.path.clone()),
                path_type: "Prefix".into(),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: service.to_owned(),
                        port: Some(ServiceBackendPort {
                            number: Some(i32::from(target.port)),
                            name: None,
                        }),
                    }),
                    resource: None,
                },
            });
    }
    let tls = tls_secret.map(|secret| {
        vec![IngressTLS {
            hosts: Some(hosts.keys().map(|h| (*h).to_owned()).collect()),
            secret_name: Some(secret.to_owned()),
        }]
    });
    let rules = hosts
        .into_iter()
        .map(|(host, paths)| IngressRule {
            host: Some(host.to_owned()),
            http: Some(HTTPIngressRuleValue { paths }),
        })
        .collect();
    Some(Ingress {
        metadata: meta(&placement.name, placement, lrp, owner),
        spec: Some(IngressSpec {
            ingress_class_name: class.map(str::to_owned),
            rules: Some(rules),
            tls,
            default_backend: None,
        }),
        status: None,
    })
}

/// The Gateway an `HTTPRoute` attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its namespace (`None`: the route's).
    pub namespace: Option<&'a str>,
}

/// The `HTTPRoute` `placement.name` of `lrp`, attached to `gateway`, with
/// the route hosts as `hostnames`; `None` without routes.
///
/// One rule per container port, matching the paths routed to it.
/// `hostnames` apply to all rules of an `HTTPRoute`, so when the hosts do
/// not all have the same paths and ports (`a.example.com` and
/// `b.example.com/api`), each match also names its host with an exact
/// `Host` header match (a wildcard host then matches nothing).
pub fn http_route(
    lrp: &DesiredLrp,
    placement: &Placement,
    service: &str,
    gateway: &Gateway<'_>,
    owner: &OwnerReference,
) -> Option<HttpRoute> {
    let targets = targets(lrp);
    if targets.is_empty() {
        return None;
    }
    let hostnames: BTreeSet<&str> = targets.iter().map(|t| t.host.as_str()).collect();
    let mut by_port: BTreeMap<u16, Vec<&Target>> = BTreeMap::new();
    for target in &targets {
        by_port.entry(target.port).or_default().push(target);
    }
    // Route-level hostnames apply to every rule: unless every host has the
    // same paths and ports, each match must also name its host.
    let mut per_host: BTreeMap<&str, BTreeSet<(&str, u16)>> = BTreeMap::new();
    for target in &targets {
        per_host
            .entry(target.host.as_str())
            .or_default()
            .insert((target.path.as_str(), target.port));
    }
    let match_hosts = per_host
        .values()
        .zip(per_host.values().skip(1))
        .any(|(a, b)| a != b);
    let rules = by_port
        .into_iter()
        .map(|(port, targets)| {
            let matches: BTreeSet<HttpRouteMatch> = targets
                .iter()
                .map(|t| HttpRouteMatch {
                    path: Some(HttpPathMatch {
                        type_: "PathPrefix".into(),
                        value: t.path.clone(),
                    }),
                    headers: match_hosts.then(|| {
                        vec![HttpHeaderMatch {
                            type_: "Exact".into(),
                            name: "Host".into(),
                            value: t.host.clone(),
                        }]
                    }),
                })
                .collect();
            HttpRouteRule {
                matches: matches.into_iter().collect(),
                backend_refs: vec![HttpBackendRef {
                    group: String::new(),
                    kind: "Service".into(),
                    name: service.to_owned(),
                    port: i32::from(port),
                    weight: 1,
                }],
            }
        })
        .collect();
    Some(HttpRoute {
        api_version: HttpRoute::API_VERSION.into(),
        kind: HttpRoute::KIND.into(),
        metadata: meta(&placement.name, placement, lrp, owner),
        spec: HttpRouteSpec {
            parent_refs: vec![ParentReference {
                group: HttpRoute::GROUP.into(),
                kind: "Gateway".into(),
                name: gateway.name.to_owned(),
                namespace: gateway.namespace.map(str::to_owned),
            }],
            hostnames: hostnames.into_iter().map(str::to_owned).collect(),
            rules,
        },
    })
}

/// A Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`): the fields
/// Cube writes, by hand because k8s-openapi has no Gateway API types (and
/// kube's `derive` would cost a schemars build for one struct).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// `gateway.networking.k8s.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `HTTPRoute`.
    #[serde(default)]
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: HttpRouteSpec,
}

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateways the route attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// The hosts it serves.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Matches and where they go.
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// A reference to a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// `gateway.networking.k8s.io`.
    #[serde(default)]
    pub group: String,
    /// `Gateway`.
    #[serde(default)]
    pub kind: String,
    /// The Gateway's name.
    pub name: String,
    /// The Gateway's namespace (default: the route's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One rule: requests matching any of `matches` go to `backend_refs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// Path (and header) matches.
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// The Service ports requests go to.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
}

/// One match: a path prefix, and optionally headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    /// The path match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
    /// Header matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<HttpHeaderMatch>>,
}

/// A path match (`PathPrefix`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HttpPathMatch {
    /// `PathPrefix`, `Exact` or `RegularExpression`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The path.
    pub value: String,
}

/// A header match (`Exact`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HttpHeaderMatch {
    /// `Exact` or `RegularExpression`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The header name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A Service port requests go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpBackendRef {
    /// `""` (core).
    #[serde(default)]
    pub group: String,
    /// `Service`.
    #[serde(default)]
    pub kind: String,
    /// The Service's name.
    pub name: String,
    /// The Service port.
    #[serde(default)]
    pub port: i32,
    /// Share of the requests (the only backend: 1).
    #[serde(default)]
    pub weight: i32,
}

impl k8s_openapi::Resource for HttpRoute {
    const API_VERSION: &'static str = "gateway.networking.k8s.io/v1";
    const GROUP: &'static str = "gateway.networking.k8s.io";
    const KIND: &'static str = "HTTPRoute";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "httproutes";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for HttpRoute {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
