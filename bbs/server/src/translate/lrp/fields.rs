//! The plainer fields of a `DesiredLRP`: the BBS's own rules, what Cube's
//! backends cannot honour (refused), names from the metric tags, ports,
//! volume mounts and egress rules.

use bbs_models::desired_lrp::UpdateStrategy;
use bbs_models::{DesiredLrp, SecurityGroupRule, VolumeMount};
use opi::model::Named;
use opi::model::wire;
use serde_json::{Map, Value, json};

use crate::translate::Refusal;

/// The BBS's limit on an annotation.
pub const MAX_ANNOTATION_BYTES: usize = 10 * 1024;
/// An unlimited log rate (CC's default).
const UNLIMITED_LOG_RATE: i64 = -1;
/// The only volume mount mode Cube's backends mount.
const READ_WRITE: &str = "rw";

/// The BBS's rules Cube relies on: a domain, a root filesystem, an
/// annotation of at most 10 KiB, limits that are not negative.
pub fn bbs_rules(lrp: &DesiredLrp) -> Result<(), Refusal> {
    if lrp.domain.is_empty() {
        return Err(Refusal::new("domain", "must not be empty"));
    }
    if lrp.root_fs.is_empty() {
        return Err(Refusal::new("root_fs", "must not be empty"));
    }
    annotation("annotation", &lrp.annotation)?;
    if lrp.max_pids < 0 {
        return Err(Refusal::new("max_pids", "must not be negative"));
    }
    Ok(())
}

/// At most [`MAX_ANNOTATION_BYTES`].
pub fn annotation(field: &str, annotation: &str) -> Result<(), Refusal> {
    if annotation.len() > MAX_ANNOTATION_BYTES {
        return Err(Refusal::new(
            field,
            format!(
                "{} bytes; the BBS takes at most {MAX_ANNOTATION_BYTES}",
                annotation.len()
            ),
        ));
    }
    Ok(())
}

/// Refuses the fields no Cube backend can honour: privileged containers,
/// sidecars, files mounted into the container, a non-rolling update
/// strategy, a log rate limit.
pub fn unsupported(lrp: &DesiredLrp) -> Result<(), Refusal> {
    if lrp.privileged {
        return Err(Refusal::new(
            "privileged",
            "Cube runs no privileged containers",
        ));
    }
    if !lrp.sidecars.is_empty() {
        return Err(Refusal::new(
            "sidecars",
            "Cube's backends run one process per instance",
        ));
    }
    if !lrp.volume_mounted_files.is_empty() {
        return Err(Refusal::new(
            "volume_mounted_files",
            "Cube's backends mount no files into a container (bind services as environment)",
        ));
    }
    if lrp.update_strategy != UpdateStrategy::Rolling as i32 {
        return Err(Refusal::new(
            "update_strategy",
            "Cube's backends replace instances one by one (ROLLING) only",
        ));
    }
    if let Some(limit) = &lrp.log_rate_limit
        && limit.bytes_per_second != UNLIMITED_LOG_RATE
    {
        return Err(Refusal::new(
            "log_rate_limit.bytes_per_second",
            format!(
                "{}: Cube's backends do not limit log rates (-1 only)",
                limit.bytes_per_second
            ),
        ));
    }
    Ok(())
}

/// An app's process type, app, space and organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `web`, `worker`, …
    pub process_type: String,
    /// The app.
    pub app: Named,
    /// The space.
    pub space: Named,
    /// The organization.
    pub org: Named,
}

/// Names from CC's metric tags, guids falling back to
/// `network.properties` (`app_id`, `space_id`, `org_id`) and the app guid to
/// `log_guid`; process type `web` when CC names none.
pub fn names(lrp: &DesiredLrp) -> Names {
    let tag = |name: &str| {
        lrp.metric_tags
            .get(name)
            .map(|value| value.r#static.clone())
            .filter(|value| !value.is_empty())
    };
    let network = |name: &str| {
        lrp.network
            .as_ref()
            .and_then(|n| n.properties.get(name))
            .cloned()
            .filter(|value| !value.is_empty())
    };
    let guid = |tag_name: &str, network_name: &str| {
        tag(tag_name)
            .or_else(|| network(network_name))
            .unwrap_or_default()
    };
    let app_guid = tag("app_id")
        .or_else(|| network("app_id"))
        .unwrap_or_else(|| lrp.log_guid.clone());
    Names {
        process_type: tag("process_type").unwrap_or_else(|| "web".to_owned()),
        app: Named {
            guid: app_guid,
            name: tag("app_name").unwrap_or_default(),
        },
        space: Named {
            guid: guid("space_id", "space_id"),
            name: tag("space_name").unwrap_or_default(),
        },
        org: Named {
            guid: guid("organization_id", "org_id"),
            name: tag("organization_name").unwrap_or_default(),
        },
    }
}

/// The OPI ports: each a port, none twice, without `skip` (the ignored ssh
/// daemon's).
pub fn ports(lrp: &DesiredLrp, skip: Option<u16>) -> Result<Vec<i64>, Refusal> {
    let mut ports = Vec::with_capacity(lrp.ports.len());
    for (i, port) in lrp.ports.iter().enumerate() {
        let field = format!("ports[{i}]");
        let port = u16::try_from(*port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| Refusal::new(&field, format!("port {port} is out of range 1-65535")))?;
        if ports.contains(&i64::from(port)) {
            return Err(Refusal::new(field, format!("port {port} is listed twice")));
        }
        if Some(port) != skip {
            ports.push(i64::from(port));
        }
    }
    Ok(ports)
}

/// OPI volume mounts: a shared volume by its id at `container_dir`,
/// read-write. The driver and mount config stay in the stored copy: on Cube
/// the volume is the backend's volume of that id (a claim on Kubernetes).
pub fn volume_mounts(mounts: &[VolumeMount]) -> Result<Vec<wire::VolumeMount>, Refusal> {
    let mut out = Vec::with_capacity(mounts.len());
    for (i, mount) in mounts.iter().enumerate() {
        let field = format!("volume_mounts[{i}]");
        if mount.dedicated.is_some() {
            return Err(Refusal::new(
                format!("{field}.dedicated"),
                "Cube mounts shared volumes only",
            ));
        }
        let shared = mount
            .shared
            .as_ref()
            .ok_or_else(|| Refusal::new(format!("{field}.shared"), "must be set"))?;
        if mount.mode != READ_WRITE {
            return Err(Refusal::new(
                format!("{field}.mode"),
                format!(
                    "{:?}: Cube's backends mount volumes read-write ({READ_WRITE}) only",
                    mount.mode
                ),
            ));
        }
        out.push(wire::VolumeMount {
            volume_id: shared.volume_id.clone(),
            mount_dir: mount.container_dir.clone(),
        });
    }
    Ok(out)
}

/// Egress rules as JSON in CC's shape (`protocol`, `destinations`, `ports`
/// or `port_range{start,end}`, `icmp_info{type,code}`, `log`,
/// `annotations`), unset parts left out.
pub fn egress_rules(rules: &[SecurityGroupRule]) -> Vec<Value> {
    rules.iter().map(egress_rule).collect()
}

fn egress_rule(rule: &SecurityGroupRule) -> Value {
    let mut out = Map::new();
    out.insert("protocol".into(), json!(rule.protocol));
    out.insert("destinations".into(), json!(rule.destinations));
    if !rule.ports.is_empty() {
        out.insert("ports".into(), json!(rule.ports));
    }
    if let Some(range) = &rule.port_range {
        out.insert(
            "port_range".into(),
            json!({"start": range.start, "end": range.end}),
        );
    }
    if let Some(icmp) = &rule.icmp_info {
        out.insert(
            "icmp_info".into(),
            json!({"type": icmp.r#type, "code": icmp.code}),
        );
    }
    if rule.log {
        out.insert("log".into(), json!(true));
    }
    if !rule.annotations.is_empty() {
        out.insert("annotations".into(), json!(rule.annotations));
    }
    Value::Object(out)
}
