//! The namespace of a CF space.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use opi::model::Named;

use crate::labels;
use crate::names::label_value;

/// Namespace `name` for `space` of `org`: labelled with the space guid (how
/// Cube finds it again, even after a rename), annotated with the names.
pub fn namespace(name: &str, space: &Named, org: &Named) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                labels::SPACE_GUID.to_owned(),
                label_value(&space.guid),
            )])),
            annotations: Some(BTreeMap::from([
                (labels::SPACE_NAME.to_owned(), space.name.clone()),
                (labels::ORG_NAME.to_owned(), org.name.clone()),
                (labels::ORG_GUID.to_owned(), org.guid.clone()),
            ])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The pull Secret `name` in `namespace` that lets kubelets pull droplet
/// images from `registry` (`host[:port]`) with `credentials`.
pub fn pull_secret(
    name: &str,
    namespace: &str,
    registry: &str,
    credentials: &opi::model::RegistryCredentials,
) -> k8s_openapi::api::core::v1::Secret {
    k8s_openapi::api::core::v1::Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            super::pod::docker_config_json_for(registry, credentials),
        )])),
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        ..k8s_openapi::api::core::v1::Secret::default()
    }
}
