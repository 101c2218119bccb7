//! The stored copy: the `DesiredLRP` CC desired, its secrets removed, kept
//! in the OPI LRP's user annotation [`STORED_LRP_ANNOTATION`] as standard
//! base64 of its protobuf encoding.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bbs_models::metric_tag_value::DynamicValue;
use bbs_models::{DesiredLrp as BbsLrp, EnvironmentVariable, MetricTagValue};
use opi::model::DesiredLrp;
use prost::Message;

use super::environment::remove_secrets;
use crate::translate::{APPS_DOMAIN, Refusal, STORED_LRP_ANNOTATION};

/// The annotation value that stores `lrp` without its secrets.
pub fn encode(lrp: &BbsLrp) -> String {
    let mut copy = lrp.clone();
    remove_secrets(&mut copy);
    STANDARD.encode(copy.encode_to_vec())
}

/// The stored copy of `lrp` (secrets still removed), `None` when it has none.
pub fn decode(lrp: &DesiredLrp) -> Result<Option<BbsLrp>, Refusal> {
    let Some(text) = lrp.user_defined_annotations.get(STORED_LRP_ANNOTATION) else {
        return Ok(None);
    };
    let field = || format!("user_defined_annotations[{STORED_LRP_ANNOTATION}]");
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| Refusal::new(field(), format!("is not base64: {e}")))?;
    BbsLrp::decode(bytes.as_slice())
        .map(Some)
        .map_err(|e| Refusal::new(field(), format!("is not a DesiredLRP: {e}")))
}

/// The stored copy, or for an LRP desired through OPI rather than the BBS
/// (no stored copy) what OPI knows of it in BBS fields ([`synthesized`]).
pub fn stored_or_synthesized(lrp: &DesiredLrp) -> Result<BbsLrp, Refusal> {
    Ok(decode(lrp)?.unwrap_or_else(|| synthesized(lrp)))
}

/// An LRP Cube runs that CC did not desire through the BBS, in BBS fields:
/// key, sizes, ports, names as CC's metric tags, the environment's names
/// (values are filled in on reads, like a stored copy's). No `root_fs` or
/// actions: it was not desired with any.
fn synthesized(lrp: &DesiredLrp) -> BbsLrp {
    let saturate = |value: u64| i32::try_from(value).unwrap_or(i32::MAX);
    BbsLrp {
        process_guid: lrp.id.process_guid(),
        domain: APPS_DOMAIN.to_owned(),
        instances: i32::try_from(lrp.instances).unwrap_or(i32::MAX),
        environment_variables: lrp
            .environment
            .keys()
            .map(|name| EnvironmentVariable {
                name: name.clone(),
                value: String::new(),
            })
            .collect(),
        start_timeout_ms: i64::try_from(lrp.start_timeout_ms).unwrap_or(i64::MAX),
        disk_mb: saturate(lrp.disk_mb),
        memory_mb: saturate(lrp.memory_mb),
        cpu_weight: u32::from(lrp.cpu_weight),
        ports: lrp.ports.iter().map(|port| u32::from(*port)).collect(),
        log_guid: lrp.app.guid.clone(),
        annotation: lrp.annotation.clone(),
        placement_tags: lrp.placement_tags.clone(),
        metric_tags: metric_tags(lrp),
        ..BbsLrp::default()
    }
}

/// CC's eleven metric tags of an app process (bbs-spec §2.5).
fn metric_tags(lrp: &DesiredLrp) -> std::collections::BTreeMap<String, MetricTagValue> {
    let fixed = |value: &str| MetricTagValue {
        r#static: value.to_owned(),
        dynamic: 0,
    };
    let dynamic = |value: DynamicValue| MetricTagValue {
        r#static: String::new(),
        dynamic: value as i32,
    };
    [
        ("source_id", fixed(&lrp.app.guid)),
        ("process_id", fixed(&lrp.id.guid)),
        ("process_type", fixed(&lrp.process_type)),
        ("process_instance_id", dynamic(DynamicValue::InstanceGuid)),
        ("instance_id", dynamic(DynamicValue::Index)),
        ("app_id", fixed(&lrp.app.guid)),
        ("app_name", fixed(&lrp.app.name)),
        ("space_id", fixed(&lrp.space.guid)),
        ("space_name", fixed(&lrp.space.name)),
        ("organization_id", fixed(&lrp.org.guid)),
        ("organization_name", fixed(&lrp.org.name)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}
