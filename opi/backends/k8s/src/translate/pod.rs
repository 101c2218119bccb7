//! What LRP pods and task pods share: security, resources, image, env wiring.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Capabilities, EnvFromSource, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SeccompProfile, SecretEnvSource, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use opi::model::{LrpLifecycle, RegistryCredentials};

/// The uid of CF's `vcap` user, which droplet images run as.
pub const VCAP_UID: i64 = 2000;

/// Working directory of droplet images.
pub const DROPLET_WORKDIR: &str = "/home/vcap/app";

/// The pod security context: non-root `vcap`, the runtime's seccomp profile.
pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_user: Some(VCAP_UID),
        run_as_group: Some(VCAP_UID),
        fs_group: Some(VCAP_UID),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

/// The container security context: no privilege escalation, no capabilities.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

/// Requests and limits: memory limit = request = `memory_mb`; ephemeral
/// storage = `disk_mb` (when set); a CPU request of `cpu_weight` × 10
/// millicores (weight 100 = one core), at least 10m, and no CPU limit, which
/// is how Diego treats the weight: a share, not a cap.
pub fn resources(memory_mb: u64, disk_mb: u64, cpu_weight: u8) -> ResourceRequirements {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if memory_mb > 0 {
        let memory = Quantity(format!("{memory_mb}Mi"));
        requests.insert("memory".to_owned(), memory.clone());
        limits.insert("memory".to_owned(), memory);
    }
    if disk_mb > 0 {
        let disk = Quantity(format!("{disk_mb}Mi"));
        requests.insert("ephemeral-storage".to_owned(), disk.clone());
        limits.insert("ephemeral-storage".to_owned(), disk);
    }
    let millis = (u32::from(cpu_weight) * 10).max(10);
    requests.insert("cpu".to_owned(), Quantity(format!("{millis}m")));
    ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}

/// The image and command of a lifecycle. Droplets run their start command
/// through `sh` in `/home/vcap/app` (the working directory is `Some` then).
pub fn image_and_command(
    lifecycle: &LrpLifecycle,
    registry: &str,
) -> (String, Option<Vec<String>>, Option<String>) {
    match lifecycle {
        LrpLifecycle::Docker { image, command, .. } => (
            image.clone(),
            (!command.is_empty()).then(|| command.clone()),
            None,
        ),
        LrpLifecycle::Buildpack {
            droplet_guid,
            droplet_hash,
            start_command,
        } => (
            opi::model::droplet_image(registry, droplet_guid, droplet_hash),
            Some(vec!["/bin/sh".into(), "-c".into(), start_command.clone()]),
            Some(DROPLET_WORKDIR.into()),
        ),
    }
}

/// `envFrom` of the environment Secret (required: the pod waits for it).
pub fn env_from_secret(secret: &str) -> EnvFromSource {
    EnvFromSource {
        secret_ref: Some(SecretEnvSource {
            name: secret.to_owned(),
            optional: Some(false),
        }),
        ..EnvFromSource::default()
    }
}

/// The image pull secrets of a pod: the per-LRP credentials Secret when the
/// docker image has credentials, the registry's Secret for droplets.
pub fn image_pull_secrets(
    lifecycle: &LrpLifecycle,
    credentials_secret: &str,
    registry_pull_secret: Option<&str>,
) -> Option<Vec<LocalObjectReference>> {
    let name = match lifecycle {
        LrpLifecycle::Docker {
            credentials: Some(_),
            ..
        } => credentials_secret,
        LrpLifecycle::Docker { .. } => return None,
        LrpLifecycle::Buildpack { .. } => registry_pull_secret?,
    };
    Some(vec![LocalObjectReference {
        name: name.to_owned(),
    }])
}

/// The registry host of an image reference, as docker config files key it.
pub fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => "https://index.docker.io/v1/".to_owned(),
    }
}

/// The `.dockerconfigjson` for `credentials` on the registry of `image`.
pub fn docker_config_json(image: &str, credentials: &RegistryCredentials) -> ByteString {
    docker_config_json_for(&registry_host(image), credentials)
}

/// The `.dockerconfigjson` for `credentials` on registry `host`.
pub fn docker_config_json_for(host: &str, credentials: &RegistryCredentials) -> ByteString {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    let config = serde_json::json!({
        "auths": {
            host: {
                "username": credentials.username,
                "password": credentials.password,
                "auth": auth,
            }
        }
    });
    ByteString(config.to_string().into_bytes())
}

/// Reads the credentials for `image` back from a `.dockerconfigjson`.
pub fn credentials_from_docker_config(image: &str, config: &[u8]) -> Option<RegistryCredentials> {
    let config: serde_json::Value = serde_json::from_slice(config).ok()?;
    let entry = config.get("auths")?.get(registry_host(image))?;
    Some(RegistryCredentials {
        username: entry.get("username")?.as_str()?.to_owned(),
        password: entry.get("password")?.as_str()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_follow_docker_rules() {
        assert_eq!(registry_host("nginx"), "https://index.docker.io/v1/");
        assert_eq!(
            registry_host("library/nginx:1"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(registry_host("ghcr.io/a/b"), "ghcr.io");
        assert_eq!(registry_host("localhost/a"), "localhost");
        assert_eq!(registry_host("127.0.0.1:5000/a"), "127.0.0.1:5000");
    }

    #[test]
    fn docker_config_round_trips() {
        let credentials = RegistryCredentials {
            username: "bob".into(),
            password: "s3cret".into(),
        };
        let config = docker_config_json("ghcr.io/acme/app:1", &credentials);
        assert_eq!(
            credentials_from_docker_config("ghcr.io/acme/app:1", &config.0),
            Some(credentials)
        );
        assert_eq!(credentials_from_docker_config("quay.io/x", &config.0), None);
    }

    #[test]
    fn cpu_requests_scale_with_weight_and_have_a_floor() {
        let cpu = |weight| {
            resources(64, 0, weight).requests.unwrap_or_default()["cpu"]
                .0
                .clone()
        };
        assert_eq!(cpu(0), "10m");
        assert_eq!(cpu(50), "500m");
        assert_eq!(cpu(100), "1000m");
        let r = resources(64, 0, 1);
        assert!(
            !r.limits
                .unwrap_or_default()
                .contains_key("ephemeral-storage")
        );
    }
}
