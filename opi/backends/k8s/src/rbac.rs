//! The RBAC rules the backend needs, as data: the crate docs' table, and
//! what the tests grant the backend's client on the fake apiserver (which
//! answers 403 to anything else), so the list is proven sufficient.

/// Verbs on resources of one API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resources.
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

/// Rules needed in every namespace Cube places apps in (a `Role` with
/// `--namespace`, else part of a `ClusterRole`).
pub const NAMESPACED: &[Rule] = &[
    Rule {
        group: "apps",
        resources: &["statefulsets"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
    },
    Rule {
        group: "",
        resources: &["pods"],
        verbs: &["list", "watch", "delete"],
    },
    Rule {
        group: "",
        resources: &["secrets"],
        verbs: &["get", "create", "patch", "delete"],
    },
    Rule {
        group: "policy",
        resources: &["poddisruptionbudgets"],
        verbs: &["get", "create", "patch", "delete"],
    },
    Rule {
        group: "batch",
        resources: &["jobs"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
    },
    // Routing (`--routing ingress|gateway`; unused with `none`): applied,
    // read only to remove one an LRP no longer needs, deleted on stop.
    Rule {
        group: "",
        resources: &["services"],
        verbs: &["get", "create", "patch", "delete"],
    },
    Rule {
        group: "networking.k8s.io",
        resources: &["ingresses"],
        verbs: &["get", "create", "patch", "delete"],
    },
    Rule {
        group: "gateway.networking.k8s.io",
        resources: &["httproutes"],
        verbs: &["get", "create", "patch", "delete"],
    },
];

/// Cluster-scoped rules needed only with a namespace per space.
pub const CLUSTER: &[Rule] = &[Rule {
    group: "",
    resources: &["namespaces"],
    verbs: &["get", "list", "watch", "create", "patch"],
}];
