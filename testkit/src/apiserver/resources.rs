//! The resource kinds the fake apiserver serves.

/// One resource kind.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name in URLs.
    pub plural: &'static str,
    /// Kind name in objects.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether it has a `status` subresource.
    pub has_status: bool,
    /// Whether names must be DNS-1123 labels (else subdomains).
    pub name_is_dns_label: bool,
    /// Whether `metadata.generation` tracks spec changes.
    pub has_generation: bool,
}

impl Kind {
    /// `apiVersion` of objects of this kind.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name used in error messages: `pods`, `statefulsets.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Pod`, `StatefulSet.apps` as used in 422 messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

#[allow(clippy::too_many_arguments)]
const fn kind(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    has_status: bool,
    name_is_dns_label: bool,
    has_generation: bool,
) -> Kind {
    Kind {
        group,
        version,
        plural,
        kind,
        namespaced,
        has_status,
        name_is_dns_label,
        has_generation,
    }
}

/// Every kind served.
pub static KINDS: [Kind; 10] = [
    kind(
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        true,
        true,
        false,
    ),
    kind("", "v1", "pods", "Pod", true, true, false, false),
    kind("", "v1", "secrets", "Secret", true, false, false, false),
    kind(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        true,
        true,
        true,
    ),
    kind("batch", "v1", "jobs", "Job", true, true, false, true),
    kind(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        true,
        false,
        true,
    ),
    kind(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        false,
        false,
        false,
    ),
    // Service names are DNS-1035 labels (checked in `routing`).
    kind("", "v1", "services", "Service", true, true, true, false),
    kind(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        true,
        false,
        true,
    ),
    // A CRD (Gateway API v1), served as if installed.
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "HTTPRoute",
        true,
        true,
        false,
        true,
    ),
];

/// The kind with this plural name.
pub fn by_plural(plural: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.plural == plural)
}

/// The kind served at `group`/`version`/`plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}
