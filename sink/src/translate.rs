//! The pure translation of CC's `DesireAppRequestFromCC` into OPI's
//! `DesireLrpRequest` — what Diego's nsync did for Diego.

use std::collections::BTreeMap;

use cc::model::DesireAppRequestFromCC;
use opi::model::wire::{
    BuildpackLifecycle, DesireLrpRequest, DockerLifecycle, Lifecycle, Route, Routes, VolumeMount,
};

/// Why a desired app cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{process_guid}: {problem}")]
pub struct Untranslatable {
    /// The app.
    pub process_guid: String,
    /// What is wrong.
    pub problem: String,
}

/// The droplet an app runs, as the registry names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropletRef {
    /// The droplet's guid (the image repository is `cloudfoundry/<guid>`).
    pub guid: String,
    /// Its hash (the image tag).
    pub hash: String,
    /// Where CC serves it, for an import.
    pub uri: String,
}

/// A translated app.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The OPI desire body.
    pub request: DesireLrpRequest,
    /// The droplet, for buildpack apps.
    pub droplet: Option<DropletRef>,
}

/// CC's CPU weight for a given memory (`TaskCpuWeightCalculator`): memory
/// clamped to 128–8192 MB, as a percentage of 8192.
pub fn cpu_weight(memory_mb: u64) -> i64 {
    let clamped = memory_mb.clamp(128, 8192);
    i64::try_from(clamped * 100 / 8192).unwrap_or(100)
}

/// The droplet guid in a CC droplet URI (`…/droplets/<guid>/<hash>/download`).
pub fn droplet_guid_from_uri(uri: &str) -> Option<String> {
    let url = reqwest::Url::parse(uri).ok()?;
    let mut segments = url.path_segments()?;
    segments.find(|s| *s == "droplets")?;
    segments.next().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Names and guids CC puts in `VCAP_APPLICATION`.
#[derive(Debug, Default)]
struct AppInfo {
    app_guid: String,
    app_name: String,
    space_guid: String,
    space_name: String,
    org_guid: String,
    org_name: String,
    process_type: String,
}

fn app_info(environment: &BTreeMap<String, String>) -> AppInfo {
    let Some(vcap) = environment
        .get("VCAP_APPLICATION")
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
    else {
        return AppInfo::default();
    };
    let text = |key: &str| vcap[key].as_str().unwrap_or_default().to_owned();
    AppInfo {
        app_guid: text("application_id"),
        app_name: text("application_name"),
        space_guid: text("space_id"),
        space_name: text("space_name"),
        org_guid: text("organization_id"),
        org_name: text("organization_name"),
        process_type: text("process_type"),
    }
}

/// Translates one desired app.
pub fn translate(app: &DesireAppRequestFromCC) -> Result<Translated, Untranslatable> {
    let process_guid = app.process_guid.as_str().to_owned();
    let fail = |problem: String| Untranslatable {
        process_guid: process_guid.clone(),
        problem,
    };
    let (guid, version) = match (app.process_guid.app_guid(), app.process_guid.version()) {
        (Some(guid), Some(version)) => (guid.to_owned(), version.to_owned()),
        _ => return Err(fail("process guid is not <app guid>-<version>".into())),
    };
    let (lifecycle, droplet) = lifecycle(app).map_err(fail)?;
    let request = desire_request(app, guid, version, lifecycle);
    // Validate here so a bad record is reported against its app and never
    // sent to OPI.
    opi::model::validate::desire(&process_guid, request.clone())
        .map_err(|e| fail(format!("not a valid LRP: {e}")))?;
    Ok(Translated { request, droplet })
}

/// The OPI desire body of `app` (process `guid`, `version`) running
/// `lifecycle`: names from `VCAP_APPLICATION`, CC's cpu weight.
fn desire_request(
    app: &DesireAppRequestFromCC,
    guid: String,
    version: String,
    lifecycle: Lifecycle,
) -> DesireLrpRequest {
    let environment = environment(app);
    let info = app_info(&environment);
    DesireLrpRequest {
        guid: guid.clone(),
        version,
        process_guid: app.process_guid.as_str().to_owned(),
        process_type: if info.process_type.is_empty() {
            "web".into()
        } else {
            info.process_type
        },
        app_guid: if info.app_guid.is_empty() {
            guid
        } else {
            info.app_guid
        },
        app_name: info.app_name,
        space_guid: info.space_guid,
        space_name: info.space_name,
        organization_guid: info.org_guid,
        organization_name: info.org_name,
        placement_tags: app.isolation_segment.clone().into_iter().collect(),
        ports: app.ports.iter().map(|p| i64::from(*p)).collect(),
        routes: routes(app),
        environment: environment.into(),
        egress_rules: app.egress_rules.clone(),
        instances: i64::from(app.num_instances),
        last_updated: app.etag.as_str().to_owned(),
        health_check_type: app.health_check_type.clone(),
        health_check_http_endpoint: app.health_check_http_endpoint.clone().unwrap_or_default(),
        health_check_timeout_ms: 0,
        start_timeout_ms: i64::try_from(app.health_check_timeout_in_seconds.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        memory_mb: i64::try_from(app.memory_mb).unwrap_or(i64::MAX),
        disk_mb: i64::try_from(app.disk_mb).unwrap_or(i64::MAX),
        cpu_weight: cpu_weight(app.memory_mb),
        volume_mounts: volume_mounts(app),
        lifecycle,
        user_defined_annotations: BTreeMap::new(),
    }
}

/// The app's environment as a map (the last value of a name wins).
fn environment(app: &DesireAppRequestFromCC) -> BTreeMap<String, String> {
    app.environment
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

/// The app's HTTP routes; a route without a port goes to the first port
/// (8080 when the app has none).
fn routes(app: &DesireAppRequestFromCC) -> Routes {
    let first_port = app.ports.first().copied().unwrap_or(8080);
    Routes {
        cf_router: app
            .routing_info
            .http_routes
            .iter()
            .map(|r| Route {
                hostname: r.hostname.clone(),
                port: i64::from(r.port.unwrap_or(first_port)),
            })
            .collect(),
        other: BTreeMap::new(),
    }
}

/// What runs: the docker image when CC names one, else the droplet (and
/// the droplet to import); `Err` says why neither is usable.
fn lifecycle(app: &DesireAppRequestFromCC) -> Result<(Lifecycle, Option<DropletRef>), String> {
    match (&app.docker_image, &app.droplet_uri, &app.droplet_hash) {
        (Some(image), _, _) if !image.is_empty() => Ok((docker_lifecycle(app, image), None)),
        (_, Some(uri), Some(hash)) if !uri.is_empty() && !hash.is_empty() => {
            let droplet_guid = droplet_guid_from_uri(uri)
                .ok_or_else(|| format!("cannot find the droplet guid in droplet_uri {uri:?}"))?;
            Ok(buildpack_lifecycle(app, droplet_guid, uri, hash))
        }
        _ => Err("neither docker_image nor droplet_uri with droplet_hash is set".into()),
    }
}

/// The lifecycle of a docker app running `image` (its start command, if
/// any, through `/bin/sh -c`).
fn docker_lifecycle(app: &DesireAppRequestFromCC, image: &str) -> Lifecycle {
    let command = if app.start_command.trim().is_empty() {
        Vec::new()
    } else {
        vec!["/bin/sh".into(), "-c".into(), app.start_command.clone()]
    };
    Lifecycle {
        docker_lifecycle: Some(DockerLifecycle {
            image: image.to_owned(),
            command,
            registry_username: app.docker_user.clone().unwrap_or_default(),
            registry_password: app.docker_password.clone().unwrap_or_default(),
        }),
        buildpack_lifecycle: None,
    }
}

/// The lifecycle of a buildpack app running droplet `droplet_guid` (served
/// at `uri`, with `hash`), and the droplet to import.
fn buildpack_lifecycle(
    app: &DesireAppRequestFromCC,
    droplet_guid: String,
    uri: &str,
    hash: &str,
) -> (Lifecycle, Option<DropletRef>) {
    let lifecycle = Lifecycle {
        docker_lifecycle: None,
        buildpack_lifecycle: Some(BuildpackLifecycle {
            droplet_guid: droplet_guid.clone(),
            droplet_hash: hash.to_owned(),
            start_command: app.start_command.clone(),
        }),
    };
    let droplet = DropletRef {
        guid: droplet_guid,
        hash: hash.to_owned(),
        uri: uri.to_owned(),
    };
    (lifecycle, Some(droplet))
}

/// The app's volume service mounts; one without a volume id or container
/// dir is left out.
fn volume_mounts(app: &DesireAppRequestFromCC) -> Vec<VolumeMount> {
    app.volume_mounts
        .iter()
        .filter_map(|mount| {
            let volume_id = mount["shared"]["volume_id"].as_str()?;
            let mount_dir = mount["container_dir"].as_str()?;
            Some(VolumeMount {
                volume_id: volume_id.to_owned(),
                mount_dir: mount_dir.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: &str = "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

    fn record(extra: serde_json::Value) -> DesireAppRequestFromCC {
        let mut base = serde_json::json!({
            "process_guid": PG,
            "droplet_uri": "http://cc.internal:9022/internal/v2/droplets/drop-guid-1/abc123/download",
            "droplet_hash": "abc123",
            "start_command": "python app.py",
            "environment": [
                {"name": "VCAP_APPLICATION", "value": "{\"application_id\":\"8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c\",\"application_name\":\"myapp\",\"space_name\":\"dev\",\"space_id\":\"s1\",\"organization_name\":\"acme\",\"organization_id\":\"o1\",\"process_type\":\"web\"}"},
                {"name": "GREETING", "value": "hi"}
            ],
            "memory_mb": 256,
            "disk_mb": 1024,
            "file_descriptors": 16384,
            "num_instances": 3,
            "routing_info": {"http_routes": [{"hostname": "myapp.example.com", "port": 8080}], "internal_routes": []},
            "health_check_type": "port",
            "health_check_timeout_in_seconds": 60,
            "ports": [8080],
            "log_guid": "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c",
            "stack": "cflinuxfs4",
            "etag": "1700000000.5",
            "allow_ssh": true,
            "execution_metadata": "",
            "volume_mounts": []
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn buildpack_app() {
        let t = translate(&record(serde_json::json!({}))).unwrap();
        let r = &t.request;
        assert_eq!(r.guid, "8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c");
        assert_eq!(r.version, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
        assert_eq!(r.app_name, "myapp");
        assert_eq!(r.space_name, "dev");
        assert_eq!(r.organization_name, "acme");
        assert_eq!(r.instances, 3);
        assert_eq!(r.last_updated, "1700000000.5", "annotation = etag");
        assert_eq!(r.start_timeout_ms, 60_000);
        assert_eq!(r.cpu_weight, 3);
        assert_eq!(r.environment["GREETING"], "hi");
        assert_eq!(r.routes.cf_router[0].hostname, "myapp.example.com");
        let bp = r.lifecycle.buildpack_lifecycle.as_ref().unwrap();
        assert_eq!(bp.droplet_guid, "drop-guid-1");
        assert_eq!(bp.droplet_hash, "abc123");
        assert_eq!(bp.start_command, "python app.py");
        assert_eq!(t.droplet.unwrap().guid, "drop-guid-1");
    }

    #[test]
    fn docker_app_passes_the_image_through() {
        let t = translate(&record(serde_json::json!({
            "droplet_uri": null, "droplet_hash": null,
            "docker_image": "nginx:1.27", "docker_user": "u", "docker_password": "p",
            "start_command": ""
        })))
        .unwrap();
        let docker = t.request.lifecycle.docker_lifecycle.unwrap();
        assert_eq!(docker.image, "nginx:1.27");
        assert!(docker.command.is_empty());
        assert_eq!(docker.registry_username, "u");
        assert!(t.droplet.is_none());
    }

    #[test]
    fn bad_records_name_the_app_and_the_problem() {
        let err = translate(&record(serde_json::json!({"process_guid": "short"}))).unwrap_err();
        assert_eq!(err.process_guid, "short");
        let err = translate(&record(serde_json::json!({"droplet_uri": null}))).unwrap_err();
        assert!(err.problem.contains("neither docker_image"), "{err}");
        let err = translate(&record(serde_json::json!({"health_check_type": "tcp"}))).unwrap_err();
        assert!(err.problem.contains("health_check_type"), "{err}");
    }

    #[test]
    fn cpu_weight_like_cc() {
        assert_eq!(cpu_weight(64), 1);
        assert_eq!(cpu_weight(1024), 12);
        assert_eq!(cpu_weight(8192), 100);
        assert_eq!(cpu_weight(32768), 100);
    }
}
