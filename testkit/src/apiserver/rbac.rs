//! Role-based access control for clients made with
//! [`super::FakeApiServer::client_as`]: requests their rules do not allow are
//! answered 403 Forbidden, as a real apiserver would answer a service account
//! with those Roles, so tests can prove a component needs no more RBAC than
//! it documents.

/// One rule: `verbs` on `resources` (plurals, or `pods/status` for a
/// subresource) of API `group` (`""` for core), in one namespace (a Role)
/// or everywhere including cluster-scoped kinds (a ClusterRole with a
/// ClusterRoleBinding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// API group.
    pub group: String,
    /// Resources.
    pub resources: Vec<String>,
    /// Verbs: get, list, watch, create, update, patch, delete.
    pub verbs: Vec<String>,
    /// `Some(ns)` for a Role bound in `ns`; `None` for cluster-wide.
    pub namespace: Option<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Rule {
    /// A rule of a Role in `namespace`.
    pub fn namespaced(namespace: &str, group: &str, resources: &[&str], verbs: &[&str]) -> Self {
        Self {
            group: group.to_owned(),
            resources: strings(resources),
            verbs: strings(verbs),
            namespace: Some(namespace.to_owned()),
        }
    }

    /// A rule of a ClusterRole bound cluster-wide.
    pub fn cluster(group: &str, resources: &[&str], verbs: &[&str]) -> Self {
        Self {
            group: group.to_owned(),
            resources: strings(resources),
            verbs: strings(verbs),
            namespace: None,
        }
    }
}

/// A user and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rbac {
    /// The user name in 403 messages.
    pub user: String,
    /// Its rules.
    pub rules: Vec<Rule>,
}

impl Rbac {
    /// Whether `verb` on `resource` of `group` in `namespace` (`None`:
    /// cluster-scoped or across all namespaces) is allowed.
    pub fn allows(&self, verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> bool {
        self.rules.iter().any(|rule| {
            rule.group == group
                && rule.resources.iter().any(|r| r == resource || r == "*")
                && rule.verbs.iter().any(|v| v == verb || v == "*")
                && match (&rule.namespace, namespace) {
                    (None, _) => true,
                    (Some(bound), Some(ns)) => bound == ns,
                    (Some(_), None) => false,
                }
        })
    }

    /// The 403 message for a denied request.
    pub fn denial(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> String {
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        format!(
            "{resource} \"{name}\" is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}",
            self.user
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_bound_to_their_namespace() {
        let rbac = Rbac {
            user: "cube".into(),
            rules: vec![
                Rule::namespaced("apps", "", &["secrets"], &["get"]),
                Rule::cluster("", &["namespaces"], &["list"]),
            ],
        };
        assert!(rbac.allows("get", "", "secrets", Some("apps")));
        assert!(!rbac.allows("get", "", "secrets", Some("other")));
        assert!(
            !rbac.allows("get", "", "secrets", None),
            "not across namespaces"
        );
        assert!(!rbac.allows("patch", "", "secrets", Some("apps")));
        assert!(rbac.allows("list", "", "namespaces", None));
        assert!(
            !rbac.allows("list", "apps", "namespaces", None),
            "groups differ"
        );
    }
}
