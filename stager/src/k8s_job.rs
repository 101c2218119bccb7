//! The staging task as a Kubernetes Job (pure): init containers `download` →
//! `build`, then the main container `upload`, each running `cube stage <step>`
//! in the staging image over a shared `emptyDir` workspace. The steps' settings
//! (URLs with CC's credentials) and the staging environment live in a Secret
//! the containers load with `envFrom`, never in the pod spec.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret, SecretEnvSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use opi::model::validate::Invalid;
use opi::model::wire::{Buildpack, StagingRequest};

use crate::recipe::{self, Recipe};

/// Where the workspace volume is mounted.
pub const WORKSPACE: &str = "/workspace";
/// Finished staging Jobs are deleted after this many seconds.
pub const TTL_SECONDS: i32 = 600;

/// The Job and its environment Secret.
#[derive(Debug, Clone, PartialEq)]
pub struct StagingJob {
    /// The Job.
    pub job: Job,
    /// The Secret its containers read their environment from.
    pub secret: Secret,
}

/// The Job name for staging `guid` (DNS-1123, at most 63 characters).
pub fn job_name(guid: &str) -> String {
    let cleaned: String = guid
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut name = format!("staging-{cleaned}");
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// Renders staging `guid` of `request` (buildpacks already resolved) as a
/// Job in `namespace`.
pub fn staging_job(
    recipe: &Recipe,
    namespace: &str,
    guid: &str,
    request: &StagingRequest,
    buildpacks: &[Buildpack],
) -> Result<StagingJob, Invalid> {
    let lifecycle = request
        .lifecycle
        .buildpack_lifecycle
        .as_ref()
        .ok_or_else(|| Invalid::new("lifecycle.buildpack_lifecycle", "is missing"))?;
    let name = job_name(guid);
    let secret_name = format!("{name}-env");
    let labels = BTreeMap::from([
        (
            "cloudfoundry.org/app-guid".to_owned(),
            request.app_guid.clone(),
        ),
        ("cloudfoundry.org/staging-guid".to_owned(), guid.to_owned()),
        ("cloudfoundry.org/source-type".to_owned(), "STG".to_owned()),
    ]);
    let annotations = BTreeMap::from([
        (
            "cloudfoundry.org/app-name".to_owned(),
            request.app_name.clone(),
        ),
        (
            "cloudfoundry.org/space-name".to_owned(),
            request.space_name.clone(),
        ),
        (
            "cloudfoundry.org/org-name".to_owned(),
            request.org_name.clone(),
        ),
    ]);
    let mut environment: BTreeMap<String, String> = request
        .environment
        .iter()
        .filter(|v| !v.name.starts_with("CUBE_"))
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    for var in recipe::step_environment(recipe, guid, request, lifecycle, buildpacks)? {
        environment.insert(var.name, var.value);
    }
    let mut limits = BTreeMap::new();
    if request.memory_mb > 0 {
        limits.insert(
            "memory".to_owned(),
            Quantity(format!("{}Mi", request.memory_mb)),
        );
    }
    if request.disk_mb > 0 {
        limits.insert(
            "ephemeral-storage".to_owned(),
            Quantity(format!("{}Mi", request.disk_mb)),
        );
    }
    let resources = ResourceRequirements {
        requests: Some(limits.clone()).filter(|l| !l.is_empty()),
        limits: Some(limits).filter(|l| !l.is_empty()),
        ..ResourceRequirements::default()
    };
    let container = |step: &str| Container {
        name: step.to_owned(),
        image: Some(recipe.image.clone()),
        command: Some(vec![recipe.cube_binary.clone()]),
        args: Some(vec!["stage".into(), step.into()]),
        env: Some(vec![EnvVar {
            name: recipe::env::WORKSPACE.into(),
            value: Some(WORKSPACE.into()),
            ..EnvVar::default()
        }]),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: secret_name.clone(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        volume_mounts: Some(vec![VolumeMount {
            name: "workspace".into(),
            mount_path: WORKSPACE.into(),
            ..VolumeMount::default()
        }]),
        resources: Some(resources.clone()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let metadata = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels.clone()),
        annotations: Some(annotations.clone()),
        ..ObjectMeta::default()
    };
    let timeout = i64::try_from(recipe.staging_timeout.as_secs()).unwrap_or(i64::MAX);
    let job = Job {
        metadata: metadata(&name),
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(TTL_SECONDS),
            active_deadline_seconds: Some(timeout.max(1)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    annotations: Some(annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(2000),
                        run_as_group: Some(2000),
                        fs_group: Some(2000),
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    init_containers: Some(vec![container("download"), container("build")]),
                    containers: vec![container("upload")],
                    volumes: Some(vec![Volume {
                        name: "workspace".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    };
    let secret = Secret {
        metadata: metadata(&secret_name),
        type_: Some("Opaque".into()),
        string_data: Some(environment),
        ..Secret::default()
    };
    Ok(StagingJob { job, secret })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::Url;

    use super::*;

    fn request() -> StagingRequest {
        serde_json::from_str(include_str!("../testdata/staging_request_buildpack.json")).unwrap()
    }

    fn recipe() -> Recipe {
        Recipe {
            cube_binary: "/usr/local/bin/cube".into(),
            image: "registry.example/cube/stager:1".into(),
            public_url: Url::parse("http://st8ge.cube-system.svc:8086").unwrap(),
            registry_url: Some(Url::parse("http://registry.cube-system.svc:8087").unwrap()),
            staging_timeout: Duration::from_secs(900),
        }
    }

    #[test]
    fn staging_job_snapshot() {
        let request = request();
        let buildpacks = request
            .lifecycle
            .buildpack_lifecycle
            .as_ref()
            .unwrap()
            .buildpacks
            .clone();
        let rendered = staging_job(
            &recipe(),
            "acme-dev",
            "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            &request,
            &buildpacks,
        )
        .unwrap();
        insta::assert_json_snapshot!("staging_job", rendered.job);
        insta::assert_json_snapshot!("staging_job_secret", rendered.secret);
    }

    #[test]
    fn no_credentials_in_the_job_itself() {
        let request = request();
        let rendered = staging_job(&recipe(), "ns", "g", &request, &[]).unwrap();
        let job = serde_json::to_string(&rendered.job).unwrap();
        assert!(!job.contains("internal_user"), "{job}");
        let secret = serde_json::to_string(&rendered.secret).unwrap();
        assert!(
            secret.contains("internal_user"),
            "the callback is in the Secret"
        );
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(job_name("ABC_def"), "staging-abc-def");
        let long = job_name(&"x".repeat(100));
        assert!(long.len() <= 63);
        assert!(!job_name(&format!("{}-y", "x".repeat(54))).ends_with('-'));
    }
}
