//! [`Config`]: how the Kubernetes backend places and shapes objects.

/// Settings of the Kubernetes backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Put everything in this namespace instead of one per space
    /// (`<org>-<space>`). The namespace must exist.
    pub namespace: Option<String>,
    /// `host[:port]` of Cube's registry, where droplet images live.
    pub registry: String,
    /// The `kubernetes.io/dockerconfigjson` Secret (in each namespace) that
    /// lets kubelets pull droplet images from [`Config::registry`]. An
    /// existing one, unless [`Config::registry_credentials`] are given; then
    /// the backend writes it (named [`DEFAULT_PULL_SECRET`] when unset).
    pub registry_pull_secret: Option<String>,
    /// Credentials kubelets present to Cube's registry (its token as the
    /// password). With them the backend writes the pull Secret into every
    /// namespace before the first droplet workload it places there.
    pub registry_credentials: Option<opi::model::RegistryCredentials>,
    /// Seconds a finished task's Job is kept before Kubernetes deletes it.
    pub task_ttl_seconds: i32,
    /// The field manager of every server-side apply.
    pub field_manager: String,
    /// How an LRP's `cf-router` routes reach its pods.
    pub routing: Routing,
}

/// How HTTP routes reach an LRP's pods (see [`crate::translate::route`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Routing {
    /// No Service, Ingress or HTTPRoute (and no requests for them): routes
    /// are only recorded on the StatefulSet (something else routes).
    #[default]
    None,
    /// A Service per process and an Ingress with one rule per route host.
    Ingress {
        /// `spec.ingressClassName`; `None`: the cluster's default class.
        class: Option<String>,
        /// A TLS Secret (in each app namespace) for every route host.
        tls_secret: Option<String>,
    },
    /// A Service per process and a Gateway API `HTTPRoute` attached to one
    /// Gateway.
    Gateway {
        /// The Gateway's name.
        name: String,
        /// The Gateway's namespace; `None`: the app's namespace.
        namespace: Option<String>,
    },
}

impl Routing {
    /// Whether the backend writes Services (and route objects) at all.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, Self::None)
    }
}

/// The name of the pull Secret the backend writes when it has
/// [`Config::registry_credentials`] and no [`Config::registry_pull_secret`].
pub const DEFAULT_PULL_SECRET: &str = "cube-registry-pull";

impl Config {
    /// The pull Secret droplet pods name, if any.
    pub fn pull_secret(&self) -> Option<&str> {
        match (&self.registry_pull_secret, &self.registry_credentials) {
            (Some(name), _) => Some(name),
            (None, Some(_)) => Some(DEFAULT_PULL_SECRET),
            (None, None) => None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            registry: String::new(),
            registry_pull_secret: None,
            registry_credentials: None,
            task_ttl_seconds: 600,
            field_manager: "cube".into(),
            routing: Routing::None,
        }
    }
}
