//! [`PodView`]: a pod as the pod watch decodes it — metadata without managed
//! fields, from the spec only the node and the app's ports, and the status.
//!
//! The apiserver sends whole pods; decoding them into k8s-openapi `Pod`s
//! builds the whole spec (containers, env, probes, volumes) only to drop it
//! when the record is made. While (re)listing a page of pods is decoded at
//! once, so the skipped parts are most of a relist's transient memory.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

/// A pod with only what [`super::record`] reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodView {
    /// Name, namespace, uid, labels, annotations, creation and deletion
    /// times (nothing else is decoded).
    #[serde(default, deserialize_with = "meta")]
    pub metadata: ObjectMeta,
    /// The node and the containers' names and ports.
    #[serde(default)]
    pub spec: Option<SpecView>,
    /// The status.
    #[serde(default)]
    pub status: Option<PodStatus>,
}

/// The parts of a pod spec the backend reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecView {
    /// The node it was scheduled to.
    #[serde(default)]
    pub node_name: Option<String>,
    /// Its containers.
    #[serde(default)]
    pub containers: Vec<ContainerView>,
}

/// A container's name and ports.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerView {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its ports.
    #[serde(default)]
    pub ports: Option<Vec<PortView>>,
}

/// A container port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortView {
    /// The port number.
    pub container_port: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaView {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

fn meta<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    let view = MetaView::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: view.name,
        namespace: view.namespace,
        uid: view.uid,
        resource_version: view.resource_version,
        labels: view.labels,
        annotations: view.annotations,
        creation_timestamp: view.creation_timestamp,
        deletion_timestamp: view.deletion_timestamp,
        ..ObjectMeta::default()
    })
}

impl From<Pod> for PodView {
    fn from(pod: Pod) -> Self {
        Self {
            metadata: pod.metadata,
            spec: pod.spec.map(|spec| SpecView {
                node_name: spec.node_name,
                containers: spec
                    .containers
                    .into_iter()
                    .map(|c| ContainerView {
                        name: c.name,
                        ports: c.ports.map(|ports| {
                            ports
                                .into_iter()
                                .map(|p| PortView {
                                    container_port: p.container_port,
                                })
                                .collect()
                        }),
                    })
                    .collect(),
            }),
            status: pod.status,
        }
    }
}

/// Implements `kube::Resource` for `$view`, a partial decoding of the
/// namespaced k8s-openapi type `$of` with a `metadata: ObjectMeta` field, so
/// that kube can list and watch it at `$of`'s URLs.
macro_rules! resource_as {
    ($view:ty, $of:ty) => {
        impl kube::Resource for $view {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed(<$of as k8s_openapi::Resource>::KIND)
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed(<$of as k8s_openapi::Resource>::GROUP)
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed(<$of as k8s_openapi::Resource>::VERSION)
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed(<$of as k8s_openapi::Resource>::URL_PATH_SEGMENT)
            }

            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use resource_as;

resource_as!(PodView, Pod);
