//! [`DesiredLrp`] ⇄ BBS `DesiredLRP`, [`LrpUpdate`] → `DesiredLRPUpdate`,
//! `DesiredLRPSchedulingInfo` → [`SchedulingInfo`].
//!
//! The BBS knows an LRP only by its process guid (`<guid>-<version>`), which
//! cannot be split back when either part has a dash. So the LRP's id is also
//! written as a route entry under [`LRP_ID_ROUTE`] (routers ignore keys they
//! do not know), which scheduling infos carry too. Records written by Cloud
//! Controller's own Diego bridge have no such entry; their process guid is a
//! 36-character app guid, a dash and the version, and is split there.

use std::collections::BTreeMap;

use opi::model::{
    DesiredLrp, HealthCheck, HealthCheckType, LrpId, LrpUpdate, Named, Route, Routes,
    SchedulingInfo,
};
use serde::{Deserialize, Serialize};

use super::{APPS_DOMAIN, dynamic_tag, lifecycle_of, runnable, tag};
use crate::error::DiegoError;
use crate::proto::{self, metric_tag_value::DynamicValue};

/// The routes key under which Cube records an LRP's id.
pub const LRP_ID_ROUTE: &str = "cube-lrp-id";
/// The routes key of the gorouter's HTTP routes.
pub const CF_ROUTER: &str = "cf-router";
/// Log source of an LRP's container events.
const LRP_LOG_SOURCE: &str = "CELL";
/// Log source of health-check output.
const HEALTH_LOG_SOURCE: &str = "HEALTH_CHECK";
/// The port health-checked when an LRP has none (Cloud Controller's default).
const DEFAULT_PORT: u16 = 8080;

/// One `cf-router` entry in the format the route-emitter reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CfRoute {
    hostnames: Vec<String>,
    port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    route_service_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IdRoute {
    guid: String,
    version: String,
}

fn to_i32(what: &str, value: u64) -> Result<i32, DiegoError> {
    i32::try_from(value)
        .map_err(|_| DiegoError::Unsupported(format!("{what} {value} is too large for Diego")))
}

/// The BBS routes of an LRP: `cf-router` in the route-emitter's format (one
/// entry per run of consecutive routes to the same port, so reading back
/// keeps their order), the other routers' entries verbatim, and the id.
pub fn routes(id: &LrpId, routes: &Routes) -> proto::ProtoRoutes {
    let mut entries: Vec<CfRoute> = Vec::new();
    for route in &routes.cf_router {
        match entries.last_mut() {
            Some(last) if last.port == route.port => last.hostnames.push(route.hostname.clone()),
            _ => entries.push(CfRoute {
                hostnames: vec![route.hostname.clone()],
                port: route.port,
                route_service_url: None,
            }),
        }
    }
    let mut map: BTreeMap<String, Vec<u8>> = routes
        .other
        .iter()
        .map(|(key, value)| (key.clone(), value.to_string().into_bytes()))
        .collect();
    map.insert(CF_ROUTER.to_owned(), json_bytes(&entries));
    map.insert(
        LRP_ID_ROUTE.to_owned(),
        json_bytes(&IdRoute {
            guid: id.guid.clone(),
            version: id.version.clone(),
        }),
    );
    proto::ProtoRoutes { routes: map }
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The OPI routes in BBS routes (the id entry left out).
pub fn opi_routes(routes: Option<&proto::ProtoRoutes>) -> Result<Routes, DiegoError> {
    let mut out = Routes::default();
    let Some(routes) = routes else {
        return Ok(out);
    };
    for (key, value) in &routes.routes {
        match key.as_str() {
            LRP_ID_ROUTE => {}
            CF_ROUTER => {
                let entries: Vec<CfRoute> = serde_json::from_slice(value)
                    .map_err(|e| DiegoError::Unreadable(format!("cf-router routes: {e}")))?;
                for entry in entries {
                    out.cf_router
                        .extend(entry.hostnames.into_iter().map(|hostname| Route {
                            hostname,
                            port: entry.port,
                        }));
                }
            }
            _ => {
                let value = serde_json::from_slice(value).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(value).into_owned())
                });
                out.other.insert(key.clone(), value);
            }
        }
    }
    Ok(out)
}

/// The LRP id of a BBS record: from the id route, or else split from a Cloud
/// Controller process guid (`<36-char guid>-<version>`).
pub fn lrp_id(process_guid: &str, routes: Option<&proto::ProtoRoutes>) -> Option<LrpId> {
    if let Some(bytes) = routes.and_then(|r| r.routes.get(LRP_ID_ROUTE)) {
        let id: IdRoute = serde_json::from_slice(bytes).ok()?;
        let id = LrpId::new(id.guid, id.version);
        return (id.process_guid() == process_guid).then_some(id);
    }
    let (guid, version) = (process_guid.get(..36)?, process_guid.get(37..)?);
    (process_guid.as_bytes().get(36) == Some(&b'-') && !version.is_empty())
        .then(|| LrpId::new(guid, version))
}

/// The BBS `DesiredLRP` that runs `lrp` in domain [`APPS_DOMAIN`]; droplet
/// images come from Cube's registry at `registry` (host[:port]).
///
/// Errors: [`DiegoError::Unsupported`] for what Diego cannot run as asked (see
/// [`super::runnable`]), volume mounts, or sizes beyond `i32`.
pub fn desired_lrp(lrp: &DesiredLrp, registry: &str) -> Result<proto::DesiredLrp, DiegoError> {
    if !lrp.volume_mounts.is_empty() {
        return Err(DiegoError::Unsupported(
            "volume mounts are not supported by the Diego backend".into(),
        ));
    }
    let env = lrp
        .environment
        .iter()
        .map(|(name, value)| proto::EnvironmentVariable {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    let log_source = format!("APP/PROC/{}", lrp.process_type.to_uppercase());
    let run = runnable(&lrp.lifecycle, registry, env, log_source)?;
    Ok(proto::DesiredLrp {
        process_guid: lrp.id.process_guid(),
        domain: APPS_DOMAIN.to_owned(),
        root_fs: run.root_fs,
        instances: to_i32("instances", u64::from(lrp.instances))?,
        action: Some(run.action),
        start_timeout_ms: i64::try_from(lrp.start_timeout_ms).unwrap_or(i64::MAX),
        disk_mb: to_i32("disk_mb", lrp.disk_mb)?,
        memory_mb: to_i32("memory_mb", lrp.memory_mb)?,
        cpu_weight: u32::from(lrp.cpu_weight),
        ports: lrp.ports.iter().copied().map(u32::from).collect(),
        routes: Some(routes(&lrp.id, &lrp.routes)),
        log_source: LRP_LOG_SOURCE.to_owned(),
        log_guid: lrp.app.guid.clone(),
        annotation: lrp.annotation.clone(),
        placement_tags: lrp.placement_tags.clone(),
        image_username: run.image_username,
        image_password: run.image_password,
        check_definition: check_definition(&lrp.health_check, &lrp.ports),
        metric_tags: metric_tags(lrp),
        ..proto::DesiredLrp::default()
    })
}

/// Declarative health checks (run by the cell itself) on the first port;
/// `None` for `process` checks, where a living process is healthy.
fn check_definition(health: &HealthCheck, ports: &[u16]) -> Option<proto::CheckDefinition> {
    let port = u32::from(ports.first().copied().unwrap_or(DEFAULT_PORT));
    let check = match health.kind {
        HealthCheckType::Process => return None,
        HealthCheckType::Port => proto::Check {
            tcp_check: Some(proto::TcpCheck {
                port,
                connect_timeout_ms: health.timeout_ms,
                interval_ms: 0,
            }),
            http_check: None,
        },
        HealthCheckType::Http => proto::Check {
            tcp_check: None,
            http_check: Some(proto::HttpCheck {
                port,
                request_timeout_ms: health.timeout_ms,
                path: health.http_endpoint.clone(),
                interval_ms: 0,
            }),
        },
    };
    Some(proto::CheckDefinition {
        checks: vec![check],
        log_source: HEALTH_LOG_SOURCE.to_owned(),
        readiness_checks: Vec::new(),
    })
}

/// The health check a check definition performs.
fn health_check(definition: Option<&proto::CheckDefinition>) -> HealthCheck {
    let first = definition.and_then(|d| d.checks.first());
    match first {
        Some(proto::Check {
            http_check: Some(http),
            ..
        }) => HealthCheck {
            kind: HealthCheckType::Http,
            http_endpoint: http.path.clone(),
            timeout_ms: http.request_timeout_ms,
        },
        Some(proto::Check {
            tcp_check: Some(tcp),
            ..
        }) => HealthCheck {
            kind: HealthCheckType::Port,
            http_endpoint: String::new(),
            timeout_ms: tcp.connect_timeout_ms,
        },
        _ => HealthCheck {
            kind: HealthCheckType::Process,
            http_endpoint: String::new(),
            timeout_ms: 0,
        },
    }
}

/// Cloud Controller's metric tags for an app process.
fn metric_tags(lrp: &DesiredLrp) -> BTreeMap<String, proto::MetricTagValue> {
    BTreeMap::from([
        ("source_id".to_owned(), tag(&lrp.app.guid)),
        ("app_id".to_owned(), tag(&lrp.app.guid)),
        ("app_name".to_owned(), tag(&lrp.app.name)),
        ("process_id".to_owned(), tag(&lrp.id.guid)),
        ("process_type".to_owned(), tag(&lrp.process_type)),
        (
            "process_instance_id".to_owned(),
            dynamic_tag(DynamicValue::InstanceGuid),
        ),
        ("instance_id".to_owned(), dynamic_tag(DynamicValue::Index)),
        ("space_id".to_owned(), tag(&lrp.space.guid)),
        ("space_name".to_owned(), tag(&lrp.space.name)),
        ("organization_id".to_owned(), tag(&lrp.org.guid)),
        ("organization_name".to_owned(), tag(&lrp.org.name)),
    ])
}

fn static_tag(tags: &BTreeMap<String, proto::MetricTagValue>, name: &str) -> String {
    tags.get(name)
        .map(|v| v.r#static.clone())
        .unwrap_or_default()
}

/// The OPI LRP a BBS `DesiredLRP` runs, as [`desired_lrp`] wrote it.
/// User annotations and egress rules are not stored in the BBS and come back
/// empty.
pub fn opi_lrp(d: &proto::DesiredLrp, registry: &str) -> Result<DesiredLrp, DiegoError> {
    let id = lrp_id(&d.process_guid, d.routes.as_ref()).ok_or_else(|| {
        DiegoError::Unreadable(format!("LRP {:?} has no Cube LRP id", d.process_guid))
    })?;
    let tags = &d.metric_tags;
    let run = d.action.as_ref().and_then(super::find_run);
    let environment = run
        .map(|r| {
            r.env
                .iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let process_type = Some(static_tag(tags, "process_type"))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "web".to_owned());
    let app_guid = Some(static_tag(tags, "app_id"))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| d.log_guid.clone());
    Ok(DesiredLrp {
        process_type,
        app: Named {
            guid: app_guid,
            name: static_tag(tags, "app_name"),
        },
        space: Named {
            guid: static_tag(tags, "space_id"),
            name: static_tag(tags, "space_name"),
        },
        org: Named {
            guid: static_tag(tags, "organization_id"),
            name: static_tag(tags, "organization_name"),
        },
        instances: u32::try_from(d.instances).unwrap_or(0),
        memory_mb: u64::try_from(d.memory_mb).unwrap_or(0),
        disk_mb: u64::try_from(d.disk_mb).unwrap_or(0),
        cpu_weight: u8::try_from(d.cpu_weight.min(100)).unwrap_or(100),
        ports: d
            .ports
            .iter()
            .filter_map(|p| u16::try_from(*p).ok())
            .collect(),
        routes: opi_routes(d.routes.as_ref())?,
        environment,
        health_check: health_check(d.check_definition.as_ref()),
        start_timeout_ms: u64::try_from(d.start_timeout_ms).unwrap_or(0),
        lifecycle: lifecycle_of(
            &d.root_fs,
            d.action.as_ref(),
            &d.image_username,
            &d.image_password,
            registry,
        )?,
        annotation: d.annotation.clone(),
        user_defined_annotations: BTreeMap::new(),
        volume_mounts: Vec::new(),
        placement_tags: d.placement_tags.clone(),
        egress_rules: Vec::new(),
        id,
    })
}

/// The BBS update for an OPI update of `id`. Routes replace the whole routes
/// map in the BBS, so the id entry is written again with them.
pub fn update(id: &LrpId, update: &LrpUpdate) -> Result<proto::DesiredLrpUpdate, DiegoError> {
    use proto::desired_lrp_update::{OptionalAnnotation, OptionalInstances};
    Ok(proto::DesiredLrpUpdate {
        optional_instances: update
            .instances
            .map(|n| to_i32("instances", u64::from(n)).map(OptionalInstances::Instances))
            .transpose()?,
        routes: update.routes.as_ref().map(|r| routes(id, r)),
        optional_annotation: update
            .annotation
            .clone()
            .map(OptionalAnnotation::Annotation),
        ..proto::DesiredLrpUpdate::default()
    })
}

/// What an update cannot express: `have` and `want` differ in more than
/// instances, routes and annotation (so the LRP must be replaced).
pub fn differs_beyond_update(have: &proto::DesiredLrp, want: &proto::DesiredLrp) -> bool {
    let comparable = |d: &proto::DesiredLrp| proto::DesiredLrp {
        instances: 0,
        routes: None,
        annotation: String::new(),
        // Server-side bookkeeping, never written by Cube.
        modification_tag: None,
        // The BBS answers every read with `metrics_guid` filled in from the
        // `source_id` tag, so both sides are compared filled in.
        ..proto::version::populate_metrics_guid(d.clone())
    };
    comparable(have) != comparable(want)
}

/// The update that turns `have` into `want` when only instances, routes or
/// annotation differ; `None` when they are the same.
pub fn update_between(
    have: &proto::DesiredLrp,
    want: &proto::DesiredLrp,
) -> Option<proto::DesiredLrpUpdate> {
    use proto::desired_lrp_update::{OptionalAnnotation, OptionalInstances};
    let update = proto::DesiredLrpUpdate {
        optional_instances: (have.instances != want.instances)
            .then_some(OptionalInstances::Instances(want.instances)),
        routes: (have.routes != want.routes).then(|| want.routes.clone().unwrap_or_default()),
        optional_annotation: (have.annotation != want.annotation)
            .then(|| OptionalAnnotation::Annotation(want.annotation.clone())),
        ..proto::DesiredLrpUpdate::default()
    };
    (update != proto::DesiredLrpUpdate::default()).then_some(update)
}

/// The OPI scheduling info of a BBS one; `None` for LRPs Cube cannot name.
pub fn scheduling_info(info: &proto::DesiredLrpSchedulingInfo) -> Option<SchedulingInfo> {
    let key = info.desired_lrp_key.as_ref()?;
    Some(SchedulingInfo {
        id: lrp_id(&key.process_guid, info.routes.as_ref())?,
        annotation: info.annotation.clone(),
        instances: u32::try_from(info.instances).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests;
