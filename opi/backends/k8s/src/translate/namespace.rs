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
