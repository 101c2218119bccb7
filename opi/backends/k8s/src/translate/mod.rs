//! Pure translation between OPI's domain types and Kubernetes objects.
//!
//! Nothing here does I/O: [`namespace`] is a space's namespace; [`lrp`] turns a [`opi::model::DesiredLrp`] into the
//! StatefulSet, Secrets and PodDisruptionBudget that run it; [`route`] into
//! the Service and Ingress or `HTTPRoute` that route to it; [`task`] turns a
//! [`opi::model::Task`] into a Job and its Secret; [`spec`] is the record a
//! StatefulSet carries so that [`spec::desired_lrp`] can rebuild the desired LRP
//! from the cluster alone; [`pod`] holds what LRP pods and task pods share
//! (security context, resources, image pull credentials).

pub mod lrp;
pub mod namespace;
pub mod pod;
pub mod route;
pub mod spec;
pub mod task;

/// Where an LRP's objects go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The namespace.
    pub namespace: String,
    /// The StatefulSet name (also the prefix of its Secrets and PDB).
    pub name: String,
    /// Older versions of the process that this desire replaces and that were
    /// not stopped yet.
    pub superseded_versions: Vec<String>,
}

/// The name of the Secret holding an LRP's or task's environment.
pub fn env_secret_name(name: &str) -> String {
    format!("{name}-env")
}

/// The name of the Secret holding a docker image's registry credentials.
pub fn registry_secret_name(name: &str) -> String {
    format!("{name}-registry")
}
