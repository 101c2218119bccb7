//! Desired LRPs: BBS `DesiredLRP` ⇄ OPI [`DesiredLrp`], scheduling infos,
//! `DesiredLRPUpdate` → [`LrpUpdate`].
//!
//! [`desired`] reads each field CC sets (see the table in
//! [`crate::translate`]), builds OPI's wire request and validates it with
//! `opi::model::validate::desire`, so a `cube bbs` LRP passes exactly the
//! checks a `cube opi` one does; OPI's field names in its refusals are
//! turned back into BBS ones.
//!
//! # The ssh daemon
//!
//! CC runs `/tmp/lifecycle/diego-sshd` beside every app that allows
//! `cf ssh` (most apps), codependent with the app. Cube accepts and ignores
//! it: the app runs the same without it, Cube's backends offer no `cf ssh`
//! (no Diego ssh proxy reaches them), and refusing it would refuse most
//! apps. Its port (2222) is left out of the OPI ports, since nothing listens
//! there; its run stays in the stored copy, and the `diego-ssh` route stays
//! in the routes, because CC reads it back and copies it into every update.
//! The daemon's host key and the route's private key therefore stay in the
//! stored copy: they open nothing on Cube.
//!
//! # Reads
//!
//! [`bbs_desired`] and [`scheduling_info`] answer from the stored copy
//! (secrets filled back from the OPI LRP) with instances, annotation and
//! routes from the OPI LRP, which updates change. They answer format V3 (as
//! stored); `bbs_models::version::desired_lrp_v2` makes the `.r2` form.

mod action;
mod environment;
mod fields;
mod health;
mod lifecycle;
mod routes;
mod stored;
#[cfg(test)]
mod tests;

use bbs_models::desired_lrp_update::{
    OptionalAnnotation, OptionalImagePassword, OptionalImageUsername, OptionalInstances,
};
use bbs_models::{
    DesiredLrpKey, DesiredLrpResource, DesiredLrpSchedulingInfo, DesiredLrpUpdate, VolumePlacement,
};
use opi::model::validate::{self, Invalid, MAX_INSTANCES};
use opi::model::wire::{DesireLrpRequest, Lifecycle};
use opi::model::{DesiredLrp, Environment, HealthCheck, LrpId, LrpUpdate, Routes};

use super::{APPS_DOMAIN, Refusal, STORED_LRP_ANNOTATION, Settings, lrp_id};

pub use routes::CF_ROUTER;

/// A `DesiredLRP` CC desired, as Cube runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The OPI LRP, its user annotation [`STORED_LRP_ANNOTATION`] holding the
    /// request without secrets.
    pub lrp: DesiredLrp,
    /// The droplet it runs, for buildpack apps.
    pub droplet: Option<Droplet>,
}

/// A droplet the Registry must import (digest-checked) before the LRP runs,
/// as the image `cloudfoundry/<guid>:<hash>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Droplet {
    /// The guid in CC's droplet URL (`…/droplets/<guid>/<checksum>/download`).
    pub guid: String,
    /// The droplet's checksum (lower-case hex): the image tag.
    pub hash: String,
    /// Where CC serves the droplet.
    pub url: String,
    /// `sha256` or `sha1`: what `hash` is a digest of the droplet by.
    pub checksum_algorithm: String,
    /// The stack it runs on (`cflinuxfs4`).
    pub stack: String,
    /// The stack's base image, from [`Settings::stacks`].
    pub base_image: String,
}

/// What Cube runs for the `DesiredLRP` CC desires, or the field it refuses.
pub fn desired(lrp: &bbs_models::DesiredLrp, settings: &Settings) -> Result<Desired, Refusal> {
    let id = lrp_id(&lrp.process_guid)?;
    fields::bbs_rules(lrp)?;
    fields::unsupported(lrp)?;
    let launch = action::launch(lrp.action.as_ref())?;
    let environment = environment::environment(lrp, &launch)?;
    let (lifecycle, droplet) = lifecycle::lifecycle(lrp, &launch, settings)?;
    let ports = fields::ports(lrp, launch.sshd.as_ref().and_then(|sshd| sshd.port))?;
    let first_port = ports.first().and_then(|port| u16::try_from(*port).ok());
    let parts = Parts {
        health: health::health_check(lrp, first_port)?,
        routes: routes::opi_routes(lrp.routes.as_ref(), "routes")?,
        volume_mounts: fields::volume_mounts(&lrp.volume_mounts)?,
        environment,
        lifecycle,
        ports,
    };
    let process_guid = id.process_guid();
    let request = request(id, lrp, parts);
    let lrp = validate::desire(&process_guid, request).map_err(bbs_refusal)?;
    Ok(Desired { lrp, droplet })
}

/// What [`desired`] read from the request's harder fields.
struct Parts {
    environment: Environment,
    lifecycle: Lifecycle,
    ports: Vec<i64>,
    health: HealthCheck,
    routes: Routes,
    volume_mounts: Vec<opi::model::VolumeMount>,
}

/// OPI's desire request for `lrp`, its stored copy in the user annotations.
fn request(id: LrpId, lrp: &bbs_models::DesiredLrp, parts: Parts) -> DesireLrpRequest {
    let names = fields::names(lrp);
    let start_timeout_ms = match lrp.start_timeout_ms {
        0 => i64::from(deprecated_start_timeout_s(lrp)) * 1000,
        ms => ms,
    };
    DesireLrpRequest {
        process_guid: id.process_guid(),
        guid: id.guid,
        version: id.version,
        process_type: names.process_type,
        app_guid: names.app.guid,
        app_name: names.app.name,
        space_guid: names.space.guid,
        space_name: names.space.name,
        organization_guid: names.org.guid,
        organization_name: names.org.name,
        placement_tags: lrp.placement_tags.clone(),
        ports: parts.ports,
        routes: parts.routes,
        environment: parts.environment,
        egress_rules: fields::egress_rules(&lrp.egress_rules),
        instances: i64::from(lrp.instances),
        last_updated: lrp.annotation.clone(),
        health_check_type: parts.health.kind.as_str().to_owned(),
        health_check_http_endpoint: parts.health.http_endpoint,
        health_check_timeout_ms: i64::try_from(parts.health.timeout_ms).unwrap_or(i64::MAX),
        start_timeout_ms,
        memory_mb: i64::from(lrp.memory_mb),
        disk_mb: i64::from(lrp.disk_mb),
        cpu_weight: i64::from(lrp.cpu_weight),
        volume_mounts: parts.volume_mounts,
        lifecycle: parts.lifecycle,
        user_defined_annotations: [(STORED_LRP_ANNOTATION.to_owned(), stored::encode(lrp))].into(),
    }
}

/// The start timeout of BBS clients older than `start_timeout_ms` (CC sends none).
#[allow(deprecated)]
fn deprecated_start_timeout_s(lrp: &bbs_models::DesiredLrp) -> u32 {
    lrp.deprecated_start_timeout_s
}

/// OPI's refusal of its wire request, named by the BBS field it came from.
/// Names, ports, routes, droplets and volume ids are checked on the BBS
/// fields before, so only ranges and what has no finer BBS name land here.
fn bbs_refusal(invalid: Invalid) -> Refusal {
    let field = invalid.field.as_str();
    let bbs = if field == "guid" || field == "version" || field == "process_guid" {
        "process_guid".to_owned()
    } else if field.starts_with("health_check") {
        "check_definition".to_owned()
    } else if field.ends_with("registry_username") {
        "image_username".to_owned()
    } else if field.ends_with("registry_password") {
        "image_password".to_owned()
    } else if field.starts_with("lifecycle") {
        "root_fs".to_owned()
    } else if field.starts_with("environment") {
        "action".to_owned()
    } else if field.starts_with("routes") {
        format!("routes.{CF_ROUTER}")
    } else if field.starts_with("volume_mounts") {
        field
            .replace(".volume_id", ".shared.volume_id")
            .replace(".mount_dir", ".container_dir")
    } else {
        field.to_owned()
    };
    Refusal::new(bbs, invalid.problem)
}

/// The `DesiredLRP` `get_by_process_guid` answers: as CC desired it, with
/// instances, annotation and routes as last updated.
pub fn bbs_desired(lrp: &DesiredLrp) -> Result<bbs_models::DesiredLrp, Refusal> {
    let mut out = stored::stored_or_synthesized(lrp)?;
    environment::restore_secrets(&mut out, &lrp.environment, &lrp.lifecycle);
    current(&mut out, lrp)?;
    Ok(out)
}

/// Instances, annotation and routes from the OPI LRP (what updates change).
fn current(out: &mut bbs_models::DesiredLrp, lrp: &DesiredLrp) -> Result<(), Refusal> {
    out.process_guid = lrp.id.process_guid();
    out.instances = i32::try_from(lrp.instances).map_err(|_| {
        Refusal::new(
            "instances",
            format!("{} does not fit the BBS", lrp.instances),
        )
    })?;
    out.annotation.clone_from(&lrp.annotation);
    let isolation_segment = lrp.placement_tags.first().map(String::as_str);
    out.routes = Some(routes::bbs_routes(
        &lrp.routes,
        out.routes.as_ref(),
        isolation_segment,
    ));
    Ok(())
}

/// The LRP's BBS domain: the stored copy's, else [`APPS_DOMAIN`].
pub fn domain(lrp: &DesiredLrp) -> String {
    stored::decode(lrp)
        .ok()
        .flatten()
        .map(|stored| stored.domain)
        .filter(|domain| !domain.is_empty())
        .unwrap_or_else(|| APPS_DOMAIN.to_owned())
}

/// The scheduling info the BBS keeps of `lrp`: key, annotation, instances,
/// resources (memory, disk, root_fs, max_pids), routes (with `diego-ssh`,
/// which CC copies into updates), volume placement (the mounts' drivers)
/// and placement tags. No modification tag (CC reads none).
pub fn scheduling_info(lrp: &DesiredLrp) -> Result<DesiredLrpSchedulingInfo, Refusal> {
    let mut out = stored::stored_or_synthesized(lrp)?;
    current(&mut out, lrp)?;
    Ok(DesiredLrpSchedulingInfo {
        desired_lrp_key: Some(DesiredLrpKey {
            process_guid: out.process_guid,
            domain: out.domain,
            log_guid: out.log_guid,
        }),
        annotation: out.annotation,
        instances: out.instances,
        desired_lrp_resource: Some(DesiredLrpResource {
            memory_mb: out.memory_mb,
            disk_mb: out.disk_mb,
            root_fs: out.root_fs,
            max_pids: out.max_pids,
        }),
        routes: out.routes,
        modification_tag: None,
        volume_placement: Some(VolumePlacement {
            driver_names: out.volume_mounts.into_iter().map(|m| m.driver).collect(),
        }),
        placement_tags: lrp.placement_tags.clone(),
    })
}

/// The OPI update of a BBS `DesiredLRPUpdate`: instances, annotation, and
/// routes (replacing all of them, as in the BBS).
///
/// `metric_tags` are accepted and not applied: CC sends them with every
/// update, unchanged unless names or labels changed; Cube acts on none of
/// them (the names it keeps change with the next process version) and reads
/// answer the tags of the desire. Registry credentials, which CC never
/// updates, are refused: an update cannot change them in OPI.
pub fn update(update: &DesiredLrpUpdate) -> Result<LrpUpdate, Refusal> {
    if let Some(OptionalImageUsername::ImageUsername(_)) = &update.optional_image_username {
        return Err(Refusal::new(
            "image_username",
            "Cube cannot change registry credentials",
        ));
    }
    if let Some(OptionalImagePassword::ImagePassword(_)) = &update.optional_image_password {
        return Err(Refusal::new(
            "image_password",
            "Cube cannot change registry credentials",
        ));
    }
    let instances = match update.optional_instances {
        Some(OptionalInstances::Instances(n)) if n < 0 => {
            return Err(Refusal::new(
                "instances",
                format!("must not be negative, got {n}"),
            ));
        }
        Some(OptionalInstances::Instances(n)) if i64::from(n) > MAX_INSTANCES => {
            return Err(Refusal::new(
                "instances",
                format!("must be at most {MAX_INSTANCES}, got {n}"),
            ));
        }
        Some(OptionalInstances::Instances(n)) => u32::try_from(n).ok(),
        None => None,
    };
    let annotation = match &update.optional_annotation {
        Some(OptionalAnnotation::Annotation(annotation)) => {
            fields::annotation("annotation", annotation)?;
            Some(annotation.clone())
        }
        None => None,
    };
    let routes = update
        .routes
        .as_ref()
        .map(|routes| routes::opi_routes(Some(routes), "routes"))
        .transpose()?;
    Ok(LrpUpdate {
        instances,
        routes,
        annotation,
    })
}
