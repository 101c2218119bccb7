//! Validation: wire bodies in, domain types out, or an [`Invalid`] naming the
//! field and what is wrong with it. Also the reverse conversions (domain →
//! wire) used by the server's responses and the client.

use std::collections::BTreeSet;

use super::wire::{
    self, BuildpackLifecycle, DesireLrpRequest, DockerLifecycle, Lifecycle, Routes, StagingRequest,
    TaskRequest, UpdateLrpRequest,
};
use super::{
    DesiredLrp, HealthCheck, HealthCheckType, Instance, LrpId, LrpLifecycle, LrpUpdate, Named,
    RegistryCredentials, SchedulingInfo, Task, TaskStatus, TaskStep,
};

/// The most instances one LRP may ask for.
pub const MAX_INSTANCES: i64 = 100_000;
/// The most memory or disk one instance may ask for, in MB (16 TiB).
pub const MAX_SIZE_MB: i64 = 16 * 1024 * 1024;
/// The longest guid, version or task guid accepted.
pub const MAX_GUID_LEN: usize = 128;

/// A request field that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    /// The field, as a JSON path (`ports[1]`, `lifecycle.docker_lifecycle.image`)
    /// or a path parameter name.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl Invalid {
    /// A new error.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

type Result<T> = std::result::Result<T, Invalid>;

/// Checks a guid-like identifier: non-empty, at most [`MAX_GUID_LEN`] bytes,
/// only ASCII letters, digits, `-`, `_` and `.`, and not `.`/`..`. These end up in
/// URL paths, file names and scheduler labels, so nothing else is allowed.
pub fn guid(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if value.len() > MAX_GUID_LEN {
        return Err(Invalid::new(
            field,
            format!(
                "must be at most {MAX_GUID_LEN} characters, got {}",
                value.len()
            ),
        ));
    }
    if value == "." || value == ".." {
        return Err(Invalid::new(
            field,
            format!("{value:?} is not a valid identifier"),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(Invalid::new(
            field,
            format!("{bad:?} is not allowed (only letters, digits, '-', '_' and '.')"),
        ));
    }
    Ok(())
}

/// Validates an LRP id from path or body parts.
pub fn lrp_id(guid_value: &str, version: &str) -> Result<LrpId> {
    guid("guid", guid_value)?;
    guid("version", version)?;
    Ok(LrpId::new(guid_value, version))
}

fn range(field: &str, value: i64, min: i64, max: i64) -> Result<()> {
    if value < min {
        let problem = if min == 0 {
            format!("must not be negative, got {value}")
        } else {
            format!("must be at least {min}, got {value}")
        };
        return Err(Invalid::new(field, problem));
    }
    if value > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max}, got {value}"),
        ));
    }
    Ok(())
}

fn port(field: &str, value: i64) -> Result<u16> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Invalid::new(field, format!("port {value} is out of range 1-65535")))
}

fn routes(field: &str, routes: &Routes) -> Result<()> {
    for (i, route) in routes.cf_router.iter().enumerate() {
        if route.hostname.trim().is_empty() {
            return Err(Invalid::new(
                format!("{field}.cf-router[{i}].hostname"),
                "must not be empty",
            ));
        }
        port(&format!("{field}.cf-router[{i}].port"), route.port)?;
    }
    Ok(())
}

fn health_check_type(value: &str) -> Result<HealthCheckType> {
    match value {
        "" | "port" => Ok(HealthCheckType::Port),
        "http" => Ok(HealthCheckType::Http),
        // CC's legacy `none` is the process check.
        "process" | "none" => Ok(HealthCheckType::Process),
        other => Err(Invalid::new(
            "health_check_type",
            format!("unknown health check type {other:?}: expected port, http or process"),
        )),
    }
}

fn environment_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Invalid::new(field, "variable name must not be empty"));
    }
    if name.contains('=') || name.contains('\0') {
        return Err(Invalid::new(
            field,
            format!("variable name {name:?} must not contain '=' or NUL"),
        ));
    }
    Ok(())
}

fn environment_list(environment: &[wire::EnvironmentVariable]) -> Result<()> {
    for (i, var) in environment.iter().enumerate() {
        environment_name(&format!("environment[{i}].name"), &var.name)?;
    }
    Ok(())
}

fn image_tag(field: &str, value: &str) -> Result<()> {
    // OCI tag grammar: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!(
                "{value:?} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)"
            ),
        ))
    }
}

fn lifecycle(field: &str, lifecycle: &Lifecycle) -> Result<LrpLifecycle> {
    match (&lifecycle.docker_lifecycle, &lifecycle.buildpack_lifecycle) {
        (Some(_), Some(_)) => Err(Invalid::new(
            field,
            "must set exactly one of docker_lifecycle and buildpack_lifecycle, not both",
        )),
        (None, None) => Err(Invalid::new(
            field,
            "must set one of docker_lifecycle and buildpack_lifecycle",
        )),
        (Some(docker), None) => {
            if docker.image.trim().is_empty() {
                return Err(Invalid::new(
                    format!("{field}.docker_lifecycle.image"),
                    "must not be empty",
                ));
            }
            if docker.image.chars().any(char::is_whitespace) {
                return Err(Invalid::new(
                    format!("{field}.docker_lifecycle.image"),
                    format!("{:?} must not contain whitespace", docker.image),
                ));
            }
            let credentials = match (
                docker.registry_username.is_empty(),
                docker.registry_password.is_empty(),
            ) {
                (true, true) => None,
                (false, false) => Some(RegistryCredentials {
                    username: docker.registry_username.clone(),
                    password: docker.registry_password.clone(),
                }),
                (true, false) => {
                    return Err(Invalid::new(
                        format!("{field}.docker_lifecycle.registry_username"),
                        "must be set when registry_password is",
                    ));
                }
                (false, true) => {
                    return Err(Invalid::new(
                        format!("{field}.docker_lifecycle.registry_password"),
                        "must be set when registry_username is",
                    ));
                }
            };
            Ok(LrpLifecycle::Docker {
                image: docker.image.clone(),
                command: docker.command.clone(),
                credentials,
            })
        }
        (None, Some(bp)) => {
            guid(
                &format!("{field}.buildpack_lifecycle.droplet_guid"),
                &bp.droplet_guid,
            )?;
            image_tag(
                &format!("{field}.buildpack_lifecycle.droplet_hash"),
                &bp.droplet_hash,
            )?;
            Ok(LrpLifecycle::Buildpack {
                droplet_guid: bp.droplet_guid.clone(),
                droplet_hash: bp.droplet_hash.clone(),
                start_command: bp.start_command.clone(),
            })
        }
    }
}

/// Validates a desire body received at `PUT /apps/{path_process_guid}`.
pub fn desire(path_process_guid: &str, req: DesireLrpRequest) -> Result<DesiredLrp> {
    let id = lrp_id(&req.guid, &req.version)?;
    same_process_guid(path_process_guid, &req.process_guid, &id)?;
    desire_ranges(&req)?;
    let ports = distinct_ports(&req.ports)?;
    routes("routes", &req.routes)?;
    for name in req.environment.keys() {
        environment_name(&format!("environment.{name}"), name)?;
    }
    let health_check = desire_health_check(&req, !ports.is_empty())?;
    volume_mounts(&req.volume_mounts)?;
    let lifecycle = lifecycle("lifecycle", &req.lifecycle)?;
    Ok(desired_lrp(id, req, ports, health_check, lifecycle))
}

/// Checks that the body's process guid (when given) and the path's both
/// name `id`.
fn same_process_guid(path_process_guid: &str, body_process_guid: &str, id: &LrpId) -> Result<()> {
    let process_guid = id.process_guid();
    if !body_process_guid.is_empty() && body_process_guid != process_guid {
        return Err(Invalid::new(
            "process_guid",
            format!("{body_process_guid:?} does not match guid-version {process_guid:?}"),
        ));
    }
    if path_process_guid != process_guid {
        return Err(Invalid::new(
            "process_guid",
            format!("path names {path_process_guid:?} but the body describes {process_guid:?}"),
        ));
    }
    Ok(())
}

/// Checks a desire's instances, sizes, cpu weight and timeouts.
fn desire_ranges(req: &DesireLrpRequest) -> Result<()> {
    range("instances", req.instances, 0, MAX_INSTANCES)?;
    range("memory_mb", req.memory_mb, 1, MAX_SIZE_MB)?;
    range("disk_mb", req.disk_mb, 0, MAX_SIZE_MB)?;
    range("cpu_weight", req.cpu_weight, 0, 100)?;
    range(
        "health_check_timeout_ms",
        req.health_check_timeout_ms,
        0,
        i64::MAX,
    )?;
    range("start_timeout_ms", req.start_timeout_ms, 0, i64::MAX)
}

/// Checks `ports`: each a valid port, none listed twice.
fn distinct_ports(values: &[i64]) -> Result<Vec<u16>> {
    let mut ports = Vec::with_capacity(values.len());
    let mut seen = BTreeSet::new();
    for (i, value) in values.iter().enumerate() {
        let p = port(&format!("ports[{i}]"), *value)?;
        if !seen.insert(p) {
            return Err(Invalid::new(
                format!("ports[{i}]"),
                format!("port {p} is listed twice"),
            ));
        }
        ports.push(p);
    }
    Ok(ports)
}

/// The health check of a desire: a known type, a port to check when it
/// needs one, and an http endpoint (default `/`) that is a path.
fn desire_health_check(req: &DesireLrpRequest, has_ports: bool) -> Result<HealthCheck> {
    let kind = health_check_type(&req.health_check_type)?;
    if matches!(kind, HealthCheckType::Port | HealthCheckType::Http) && !has_ports {
        return Err(Invalid::new(
            "ports",
            format!("a {} health check needs at least one port", kind.as_str()),
        ));
    }
    let http_endpoint = match kind {
        HealthCheckType::Http if req.health_check_http_endpoint.is_empty() => "/".to_owned(),
        HealthCheckType::Http if !req.health_check_http_endpoint.starts_with('/') => {
            return Err(Invalid::new(
                "health_check_http_endpoint",
                format!("{:?} must start with '/'", req.health_check_http_endpoint),
            ));
        }
        _ => req.health_check_http_endpoint.clone(),
    };
    Ok(HealthCheck {
        kind,
        http_endpoint,
        timeout_ms: u64::try_from(req.health_check_timeout_ms).unwrap_or_default(),
    })
}

/// Checks volume mounts: each names a volume and an absolute mount dir.
fn volume_mounts(mounts: &[wire::VolumeMount]) -> Result<()> {
    for (i, mount) in mounts.iter().enumerate() {
        if mount.volume_id.is_empty() {
            return Err(Invalid::new(
                format!("volume_mounts[{i}].volume_id"),
                "must not be empty",
            ));
        }
        if !mount.mount_dir.starts_with('/') {
            return Err(Invalid::new(
                format!("volume_mounts[{i}].mount_dir"),
                format!("{:?} must be an absolute path", mount.mount_dir),
            ));
        }
    }
    Ok(())
}

/// The domain LRP of a validated desire body and its validated parts.
fn desired_lrp(
    id: LrpId,
    req: DesireLrpRequest,
    ports: Vec<u16>,
    health_check: HealthCheck,
    lifecycle: LrpLifecycle,
) -> DesiredLrp {
    DesiredLrp {
        id,
        process_type: if req.process_type.is_empty() {
            "web".to_owned()
        } else {
            req.process_type
        },
        app: Named {
            guid: req.app_guid,
            name: req.app_name,
        },
        space: Named {
            guid: req.space_guid,
            name: req.space_name,
        },
        org: Named {
            guid: req.organization_guid,
            name: req.organization_name,
        },
        instances: u32::try_from(req.instances).unwrap_or(u32::MAX),
        memory_mb: u64::try_from(req.memory_mb).unwrap_or_default(),
        disk_mb: u64::try_from(req.disk_mb).unwrap_or_default(),
        cpu_weight: u8::try_from(req.cpu_weight).unwrap_or(100),
        ports,
        routes: req.routes,
        environment: req.environment,
        health_check,
        start_timeout_ms: u64::try_from(req.start_timeout_ms).unwrap_or_default(),
        lifecycle,
        annotation: req.last_updated,
        user_defined_annotations: req.user_defined_annotations,
        volume_mounts: req.volume_mounts,
        placement_tags: req.placement_tags,
        egress_rules: req.egress_rules,
    }
}

/// Validates an update received at `POST /apps/{path_process_guid}`.
pub fn update(path_process_guid: &str, req: UpdateLrpRequest) -> Result<(LrpId, LrpUpdate)> {
    let id = lrp_id(&req.guid, &req.version)?;
    if path_process_guid != id.process_guid() {
        return Err(Invalid::new(
            "process_guid",
            format!(
                "path names {path_process_guid:?} but the body describes {:?}",
                id.process_guid()
            ),
        ));
    }
    let instances = match req.update.instances {
        Some(n) => {
            range("update.instances", n, 0, MAX_INSTANCES)?;
            Some(u32::try_from(n).unwrap_or(u32::MAX))
        }
        None => None,
    };
    if let Some(r) = &req.update.routes {
        routes("update.routes", r)?;
    }
    Ok((
        id,
        LrpUpdate {
            instances,
            routes: req.update.routes,
            annotation: req.update.annotation,
        },
    ))
}

fn callback(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(url) => Err(Invalid::new(
            field,
            format!(
                "{value:?} must be an http(s) URL with a host, not {}",
                url.scheme()
            ),
        )),
        Err(e) => Err(Invalid::new(field, format!("{value:?} is not a URL: {e}"))),
    }
}

/// Validates a task body received at `POST /tasks/{path_guid}`.
pub fn task(path_guid: &str, req: TaskRequest) -> Result<Task> {
    guid("task_guid", path_guid)?;
    if !req.guid.is_empty() && req.guid != path_guid {
        return Err(Invalid::new(
            "guid",
            format!("{:?} does not match the path's {path_guid:?}", req.guid),
        ));
    }
    callback("completion_callback", &req.completion_callback)?;
    range("memory_mb", req.memory_mb, 0, MAX_SIZE_MB)?;
    range("disk_mb", req.disk_mb, 0, MAX_SIZE_MB)?;
    range("cpu_weight", req.cpu_weight, 0, 100)?;
    environment_list(&req.environment)?;
    let lifecycle = lifecycle("lifecycle", &req.lifecycle)?;
    steps(&req.steps, &lifecycle)?;
    Ok(Task {
        guid: path_guid.to_owned(),
        name: req.name,
        app: Named {
            guid: req.app_guid,
            name: req.app_name,
        },
        space: Named {
            guid: req.space_guid,
            name: req.space_name,
        },
        org: Named {
            guid: req.org_guid,
            name: req.org_name,
        },
        completion_callback: req.completion_callback,
        environment: req.environment,
        lifecycle,
        memory_mb: u64::try_from(req.memory_mb).unwrap_or_default(),
        disk_mb: u64::try_from(req.disk_mb).unwrap_or_default(),
        cpu_weight: u8::try_from(req.cpu_weight).unwrap_or(100),
        steps: req.steps,
    })
}

/// The longest step name (a DNS-1123 label: Kubernetes names containers after steps).
pub const MAX_STEP_NAME_LEN: usize = 63;

/// Checks a task's `steps`: only with a docker lifecycle whose command is
/// empty (each step brings its own), names DNS-1123 labels (lowercase letters,
/// digits and `-`, starting and ending alphanumeric, at most
/// [`MAX_STEP_NAME_LEN`]) and unique, commands non-empty.
pub fn steps(steps: &[TaskStep], lifecycle: &LrpLifecycle) -> Result<()> {
    if steps.is_empty() {
        return Ok(());
    }
    match lifecycle {
        LrpLifecycle::Buildpack { .. } => {
            return Err(Invalid::new(
                "steps",
                "need a docker_lifecycle (the image every step runs in)",
            ));
        }
        LrpLifecycle::Docker { command, .. } if !command.is_empty() => {
            return Err(Invalid::new(
                "lifecycle.docker_lifecycle.command",
                "must be empty when steps are given (each step has its own command)",
            ));
        }
        LrpLifecycle::Docker { .. } => {}
    }
    let mut seen = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let field = format!("steps[{i}].name");
        dns_label(&field, &step.name)?;
        if !seen.insert(step.name.as_str()) {
            return Err(Invalid::new(
                field,
                format!("{:?} names an earlier step too", step.name),
            ));
        }
        match step.command.first() {
            None => {
                return Err(Invalid::new(
                    format!("steps[{i}].command"),
                    "must not be empty",
                ));
            }
            Some(path) if path.trim().is_empty() => {
                return Err(Invalid::new(
                    format!("steps[{i}].command[0]"),
                    "must name the program to run",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn dns_label(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if value.len() > MAX_STEP_NAME_LEN {
        return Err(Invalid::new(
            field,
            format!(
                "must be at most {MAX_STEP_NAME_LEN} characters, got {}",
                value.len()
            ),
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let body_ok = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(body_ok && edge_ok(value.chars().next()) && edge_ok(value.chars().last())) {
        return Err(Invalid::new(
            field,
            format!(
                "{value:?} is not a DNS-1123 label (lowercase letters, digits and '-', \
                 starting and ending with a letter or digit)"
            ),
        ));
    }
    Ok(())
}

/// Validates a staging body received at `POST /stage/{path_guid}` (served by St8ge).
pub fn staging(path_guid: &str, req: &StagingRequest) -> Result<()> {
    guid("staging_guid", path_guid)?;
    if !req.staging_guid.is_empty() && req.staging_guid != path_guid {
        return Err(Invalid::new(
            "staging_guid",
            format!(
                "{:?} does not match the path's {path_guid:?}",
                req.staging_guid
            ),
        ));
    }
    guid("app_guid", &req.app_guid)?;
    if req.completion_callback.is_empty() {
        return Err(Invalid::new("completion_callback", "must not be empty"));
    }
    callback("completion_callback", &req.completion_callback)?;
    range("memory_mb", req.memory_mb, 0, MAX_SIZE_MB)?;
    range("disk_mb", req.disk_mb, 0, MAX_SIZE_MB)?;
    range("cpu_weight", req.cpu_weight, 0, 100)?;
    environment_list(&req.environment)?;
    match (
        &req.lifecycle.docker_lifecycle,
        &req.lifecycle.buildpack_lifecycle,
    ) {
        (Some(_), Some(_)) | (None, None) => Err(Invalid::new(
            "lifecycle",
            "must set exactly one of docker_lifecycle and buildpack_lifecycle",
        )),
        (Some(docker), None) if docker.image.trim().is_empty() => Err(Invalid::new(
            "lifecycle.docker_lifecycle.image",
            "must not be empty",
        )),
        (Some(_), None) => Ok(()),
        (None, Some(bp)) => {
            callback(
                "lifecycle.buildpack_lifecycle.app_bits_download_uri",
                &bp.app_bits_download_uri,
            )?;
            callback(
                "lifecycle.buildpack_lifecycle.droplet_upload_uri",
                &bp.droplet_upload_uri,
            )?;
            if bp.app_bits_download_uri.is_empty() {
                return Err(Invalid::new(
                    "lifecycle.buildpack_lifecycle.app_bits_download_uri",
                    "must not be empty",
                ));
            }
            if bp.droplet_upload_uri.is_empty() {
                return Err(Invalid::new(
                    "lifecycle.buildpack_lifecycle.droplet_upload_uri",
                    "must not be empty",
                ));
            }
            for (i, b) in bp.buildpacks.iter().enumerate() {
                let field = format!("lifecycle.buildpack_lifecycle.buildpacks[{i}].url");
                if b.url.is_empty() {
                    return Err(Invalid::new(field, "must not be empty"));
                }
                callback(&field, &b.url)?;
            }
            Ok(())
        }
    }
}

// ---- domain → wire -------------------------------------------------------

fn lifecycle_to_wire(lifecycle: &LrpLifecycle) -> Lifecycle {
    match lifecycle {
        LrpLifecycle::Docker {
            image,
            command,
            credentials,
        } => Lifecycle {
            docker_lifecycle: Some(DockerLifecycle {
                image: image.clone(),
                command: command.clone(),
                registry_username: credentials
                    .as_ref()
                    .map(|c| c.username.clone())
                    .unwrap_or_default(),
                registry_password: credentials
                    .as_ref()
                    .map(|c| c.password.clone())
                    .unwrap_or_default(),
            }),
            buildpack_lifecycle: None,
        },
        LrpLifecycle::Buildpack {
            droplet_guid,
            droplet_hash,
            start_command,
        } => Lifecycle {
            docker_lifecycle: None,
            buildpack_lifecycle: Some(BuildpackLifecycle {
                droplet_guid: droplet_guid.clone(),
                droplet_hash: droplet_hash.clone(),
                start_command: start_command.clone(),
            }),
        },
    }
}

impl From<&DesiredLrp> for DesireLrpRequest {
    fn from(lrp: &DesiredLrp) -> Self {
        DesireLrpRequest {
            guid: lrp.id.guid.clone(),
            version: lrp.id.version.clone(),
            process_guid: lrp.id.process_guid(),
            process_type: lrp.process_type.clone(),
            app_guid: lrp.app.guid.clone(),
            app_name: lrp.app.name.clone(),
            space_guid: lrp.space.guid.clone(),
            space_name: lrp.space.name.clone(),
            organization_guid: lrp.org.guid.clone(),
            organization_name: lrp.org.name.clone(),
            placement_tags: lrp.placement_tags.clone(),
            ports: lrp.ports.iter().map(|p| i64::from(*p)).collect(),
            routes: lrp.routes.clone(),
            environment: lrp.environment.clone(),
            egress_rules: lrp.egress_rules.clone(),
            instances: i64::from(lrp.instances),
            last_updated: lrp.annotation.clone(),
            health_check_type: lrp.health_check.kind.as_str().to_owned(),
            health_check_http_endpoint: lrp.health_check.http_endpoint.clone(),
            health_check_timeout_ms: i64::try_from(lrp.health_check.timeout_ms).unwrap_or(i64::MAX),
            start_timeout_ms: i64::try_from(lrp.start_timeout_ms).unwrap_or(i64::MAX),
            memory_mb: i64::try_from(lrp.memory_mb).unwrap_or(i64::MAX),
            disk_mb: i64::try_from(lrp.disk_mb).unwrap_or(i64::MAX),
            cpu_weight: i64::from(lrp.cpu_weight),
            volume_mounts: lrp.volume_mounts.clone(),
            lifecycle: lifecycle_to_wire(&lrp.lifecycle),
            user_defined_annotations: lrp.user_defined_annotations.clone(),
        }
    }
}

impl From<&Task> for TaskRequest {
    fn from(task: &Task) -> Self {
        TaskRequest {
            guid: task.guid.clone(),
            name: task.name.clone(),
            app_guid: task.app.guid.clone(),
            app_name: task.app.name.clone(),
            org_name: task.org.name.clone(),
            org_guid: task.org.guid.clone(),
            space_name: task.space.name.clone(),
            space_guid: task.space.guid.clone(),
            completion_callback: task.completion_callback.clone(),
            environment: task.environment.clone(),
            lifecycle: lifecycle_to_wire(&task.lifecycle),
            memory_mb: i64::try_from(task.memory_mb).unwrap_or(i64::MAX),
            disk_mb: i64::try_from(task.disk_mb).unwrap_or(i64::MAX),
            cpu_weight: i64::from(task.cpu_weight),
            steps: task.steps.clone(),
        }
    }
}

impl From<&SchedulingInfo> for wire::SchedulingInfoBody {
    fn from(info: &SchedulingInfo) -> Self {
        let process_guid = info.id.process_guid();
        wire::SchedulingInfoBody {
            desired_lrp_key: wire::DesiredLrpKey {
                process_guid: process_guid.clone(),
            },
            process_guid,
            guid: info.id.guid.clone(),
            version: info.id.version.clone(),
            annotation: info.annotation.clone(),
            instances: info.instances,
        }
    }
}

impl From<&Instance> for wire::InstanceBody {
    fn from(instance: &Instance) -> Self {
        wire::InstanceBody {
            index: instance.index,
            since: instance.since,
            state: instance.state.as_str().to_owned(),
            placement_error: instance.placement_error.clone(),
        }
    }
}

impl From<&TaskStatus> for wire::TaskResponse {
    fn from(status: &TaskStatus) -> Self {
        let (failed, failure_reason) = match &status.state {
            super::TaskState::Completed {
                failed,
                failure_reason,
                ..
            } => (*failed, failure_reason.clone()),
            _ => (false, String::new()),
        };
        wire::TaskResponse {
            guid: status.guid.clone(),
            name: status.name.clone(),
            app_guid: status.app_guid.clone(),
            state: status.state.as_str().to_owned(),
            failed,
            failure_reason,
        }
    }
}

/// The public body of `GET /apps/{guid}/{version}`: everything but the
/// environment and credentials. `registry` prefixes droplet images.
pub fn desired_lrp_body(lrp: &DesiredLrp, registry: &str) -> wire::DesiredLrpBody {
    wire::DesiredLrpBody {
        process_guid: lrp.id.process_guid(),
        guid: lrp.id.guid.clone(),
        version: lrp.id.version.clone(),
        process_type: lrp.process_type.clone(),
        app_name: lrp.app.name.clone(),
        instances: lrp.instances,
        routes: lrp.routes.clone(),
        annotation: lrp.annotation.clone(),
        image: lrp.image(registry),
        memory_mb: lrp.memory_mb,
        disk_mb: lrp.disk_mb,
    }
}

#[cfg(test)]
mod tests;
