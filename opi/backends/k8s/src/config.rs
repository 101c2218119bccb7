//! [`Config`]: how the Kubernetes backend places and shapes objects.

/// Settings of the Kubernetes backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Put everything in this namespace instead of one per space
    /// (`<org>-<space>`). The namespace must exist.
    pub namespace: Option<String>,
    /// `host[:port]` of Cube's registry, where droplet images live.
    pub registry: String,
    /// An existing `kubernetes.io/dockerconfigjson` Secret (in each namespace)
    /// that lets kubelets pull droplet images from [`Config::registry`].
    pub registry_pull_secret: Option<String>,
    /// Seconds a finished task's Job is kept before Kubernetes deletes it.
    pub task_ttl_seconds: i32,
    /// The field manager of every server-side apply.
    pub field_manager: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            registry: String::new(),
            registry_pull_secret: None,
            task_ttl_seconds: 600,
            field_manager: "cube".into(),
        }
    }
}
