//! A desired LRP as Kubernetes objects: StatefulSet, env Secret, registry
//! Secret and PodDisruptionBudget.
//!
//! The pod template holds nothing that an update (instances, routes,
//! annotation) changes, so updates never restart instances; everything else
//! lives in the template, so a new version or a changed desire rolls them.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, Secret, TCPSocketAction,
    Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use opi::model::{DesiredLrp, HealthCheckType, LrpLifecycle};

use super::pod;
use super::spec::LrpSpec;
use super::{Placement, env_secret_name, registry_secret_name};
use crate::config::Config;
use crate::labels;
use crate::names::{label_value, short_hash};

/// The container name of every LRP pod.
pub const CONTAINER: &str = "opi";

/// Seconds between startup probes.
const STARTUP_PERIOD_SECONDS: i32 = 2;
/// Start timeout when CC sends none.
const DEFAULT_START_TIMEOUT_MS: u64 = 60_000;

/// The labels that select an LRP's pods; they never change for a process
/// (a StatefulSet's selector is immutable), so the version is not among them.
pub fn selector_labels(guid: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::PROCESS_GUID.to_owned(), label_value(guid)),
        (
            labels::SOURCE_TYPE.to_owned(),
            labels::SOURCE_APP.to_owned(),
        ),
    ])
}

/// All labels of an LRP's objects and pods.
pub fn lrp_labels(lrp: &DesiredLrp) -> BTreeMap<String, String> {
    let mut labels = selector_labels(&lrp.id.guid);
    labels.insert(labels::APP_GUID.into(), label_value(&lrp.app.guid));
    labels.insert(labels::VERSION.into(), label_value(&lrp.id.version));
    labels.insert(labels::PROCESS_TYPE.into(), label_value(&lrp.process_type));
    labels
}

/// Annotations naming the LRP (full guids, app/space/org names); shared by the
/// StatefulSet and its pods.
fn identity_annotations(lrp: &DesiredLrp) -> BTreeMap<String, String> {
    let mut annotations = lrp.user_defined_annotations.clone();
    annotations.extend([
        (labels::PROCESS_GUID.to_owned(), lrp.id.guid.clone()),
        (labels::VERSION.to_owned(), lrp.id.version.clone()),
        (labels::APP_NAME.to_owned(), lrp.app.name.clone()),
        (labels::SPACE_NAME.to_owned(), lrp.space.name.clone()),
        (labels::SPACE_GUID.to_owned(), lrp.space.guid.clone()),
        (labels::ORG_NAME.to_owned(), lrp.org.name.clone()),
        (labels::ORG_GUID.to_owned(), lrp.org.guid.clone()),
    ]);
    annotations
}

fn meta(name: &str, placement: &Placement, lrp: &DesiredLrp) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(placement.namespace.clone()),
        labels: Some(lrp_labels(lrp)),
        ..ObjectMeta::default()
    }
}

/// The StatefulSet that runs `lrp`.
pub fn statefulset(lrp: &DesiredLrp, placement: &Placement, config: &Config) -> StatefulSet {
    let mut annotations = identity_annotations(lrp);
    annotations.insert(
        labels::ROUTES.into(),
        serde_json::to_string(&lrp.routes).unwrap_or_default(),
    );
    annotations.insert(labels::LAST_UPDATED.into(), lrp.annotation.clone());
    annotations.insert(labels::LRP_SPEC.into(), LrpSpec::of(lrp).to_annotation());
    if !placement.superseded_versions.is_empty() {
        annotations.insert(
            labels::SUPERSEDED_VERSIONS.into(),
            serde_json::to_string(&placement.superseded_versions).unwrap_or_default(),
        );
    }
    let mut metadata = meta(&placement.name, placement, lrp);
    metadata.annotations = Some(annotations);

    let mut template_annotations = identity_annotations(lrp);
    template_annotations.insert(labels::ENV_HASH.into(), env_hash(lrp));

    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(i32::try_from(lrp.instances).unwrap_or(i32::MAX)),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(selector_labels(&lrp.id.guid)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(lrp_labels(lrp)),
                    annotations: Some(template_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(lrp, placement, config)),
            },
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn pod_spec(lrp: &DesiredLrp, placement: &Placement, config: &Config) -> PodSpec {
    let (image, command, working_dir) = pod::image_and_command(&lrp.lifecycle, &config.registry);
    let volumes: Vec<Volume> = lrp
        .volume_mounts
        .iter()
        .enumerate()
        .map(|(i, mount)| Volume {
            name: format!("volume-{i}"),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: mount.volume_id.clone(),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    let volume_mounts: Vec<VolumeMount> = lrp
        .volume_mounts
        .iter()
        .enumerate()
        .map(|(i, mount)| VolumeMount {
            name: format!("volume-{i}"),
            mount_path: mount.mount_dir.clone(),
            ..VolumeMount::default()
        })
        .collect();
    let (startup, readiness, liveness) = probes(lrp);
    PodSpec {
        containers: vec![Container {
            name: CONTAINER.into(),
            image: Some(image),
            command,
            working_dir,
            env: Some(env(lrp)),
            env_from: Some(vec![pod::env_from_secret(&env_secret_name(
                &placement.name,
            ))]),
            ports: (!lrp.ports.is_empty()).then(|| {
                lrp.ports
                    .iter()
                    .map(|port| ContainerPort {
                        container_port: i32::from(*port),
                        ..ContainerPort::default()
                    })
                    .collect()
            }),
            resources: Some(pod::resources(lrp.memory_mb, lrp.disk_mb, lrp.cpu_weight)),
            security_context: Some(pod::container_security_context()),
            startup_probe: startup,
            readiness_probe: readiness,
            liveness_probe: liveness,
            volume_mounts: (!volume_mounts.is_empty()).then_some(volume_mounts),
            ..Container::default()
        }],
        volumes: (!volumes.is_empty()).then_some(volumes),
        image_pull_secrets: pod::image_pull_secrets(
            &lrp.lifecycle,
            &registry_secret_name(&placement.name),
            config.pull_secret(),
        ),
        security_context: Some(pod::pod_security_context()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        restart_policy: Some("Always".into()),
        ..PodSpec::default()
    }
}

/// Environment set in the pod spec itself: only values that are not secret
/// and are known per pod. The app's environment comes through `envFrom`.
fn env(lrp: &DesiredLrp) -> Vec<EnvVar> {
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.to_owned(),
            api_version: None,
        }),
        ..EnvVarSource::default()
    };
    let mut env = vec![
        EnvVar {
            name: "CF_INSTANCE_INDEX".into(),
            value_from: Some(field(&format!("metadata.labels['{}']", labels::POD_INDEX))),
            value: None,
        },
        EnvVar {
            name: "CF_INSTANCE_GUID".into(),
            value_from: Some(field("metadata.uid")),
            value: None,
        },
        EnvVar {
            name: "CF_INSTANCE_IP".into(),
            value_from: Some(field("status.podIP")),
            value: None,
        },
    ];
    if let Some(port) = lrp.ports.first() {
        env.push(EnvVar {
            name: "PORT".into(),
            value: Some(port.to_string()),
            value_from: None,
        });
    }
    // CC usually sends VCAP_APPLICATION itself (then it comes via envFrom, and
    // a value here would override it).
    if !lrp.environment.contains_key("VCAP_APPLICATION") {
        env.push(EnvVar {
            name: "VCAP_APPLICATION".into(),
            value: Some(vcap_application(lrp)),
            value_from: None,
        });
    }
    env
}

/// `VCAP_APPLICATION` as Diego would set it, minus the routes (they change
/// through updates, which must not restart instances).
pub fn vcap_application(lrp: &DesiredLrp) -> String {
    serde_json::json!({
        "application_id": lrp.app.guid,
        "application_name": lrp.app.name,
        "application_version": lrp.id.version,
        "name": lrp.app.name,
        "version": lrp.id.version,
        "process_id": lrp.id.guid,
        "process_type": lrp.process_type,
        "space_id": lrp.space.guid,
        "space_name": lrp.space.name,
        "organization_id": lrp.org.guid,
        "organization_name": lrp.org.name,
        "limits": { "mem": lrp.memory_mb, "disk": lrp.disk_mb, "fds": 16384 },
    })
    .to_string()
}

/// A short hash of the environment: changes when any name or value does.
fn env_hash(lrp: &DesiredLrp) -> String {
    let mut key = lrp.id.guid.clone();
    for (name, value) in &lrp.environment {
        key.push('\0');
        key.push_str(name);
        key.push('=');
        key.push_str(value);
    }
    short_hash(&key)
}

/// Startup, readiness and liveness probes: port → tcpSocket, http → httpGet on
/// the first port, process (or no port) → none.
fn probes(lrp: &DesiredLrp) -> (Option<Probe>, Option<Probe>, Option<Probe>) {
    let Some(port) = lrp.ports.first() else {
        return (None, None, None);
    };
    let port = IntOrString::Int(i32::from(*port));
    let handler = match lrp.health_check.kind {
        HealthCheckType::Process => return (None, None, None),
        HealthCheckType::Port => Probe {
            tcp_socket: Some(TCPSocketAction { port, host: None }),
            ..Probe::default()
        },
        HealthCheckType::Http => Probe {
            http_get: Some(HTTPGetAction {
                path: Some(lrp.health_check.http_endpoint.clone()),
                port,
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        },
    };
    let timeout_seconds = i32::try_from(lrp.health_check.timeout_ms.div_ceil(1000))
        .unwrap_or(i32::MAX)
        .max(1);
    let start_timeout_ms = match lrp.start_timeout_ms {
        0 => DEFAULT_START_TIMEOUT_MS,
        ms => ms,
    };
    let startup_failures = i32::try_from(
        start_timeout_ms.div_ceil(1000 * u64::from(STARTUP_PERIOD_SECONDS.unsigned_abs())),
    )
    .unwrap_or(i32::MAX)
    .max(1);
    let probe = |period: i32, failures: i32| Probe {
        timeout_seconds: Some(timeout_seconds),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..handler.clone()
    };
    (
        Some(probe(STARTUP_PERIOD_SECONDS, startup_failures)),
        Some(probe(5, 1)),
        Some(probe(10, 3)),
    )
}

/// The Secret holding the app's environment.
pub fn env_secret(lrp: &DesiredLrp, placement: &Placement) -> Secret {
    Secret {
        metadata: meta(&env_secret_name(&placement.name), placement, lrp),
        data: Some(
            lrp.environment
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// The pull Secret for a docker image with credentials, else `None`.
pub fn registry_secret(lrp: &DesiredLrp, placement: &Placement) -> Option<Secret> {
    let LrpLifecycle::Docker {
        image,
        credentials: Some(credentials),
        ..
    } = &lrp.lifecycle
    else {
        return None;
    };
    Some(Secret {
        metadata: meta(&registry_secret_name(&placement.name), placement, lrp),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            pod::docker_config_json(image, credentials),
        )])),
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        ..Secret::default()
    })
}

/// A PodDisruptionBudget keeping half the instances up during node drains,
/// when there is more than one instance (else `None`: a PDB on a single
/// instance would block drains forever).
pub fn pdb(lrp: &DesiredLrp, placement: &Placement) -> Option<PodDisruptionBudget> {
    (lrp.instances > 1).then(|| PodDisruptionBudget {
        metadata: meta(&placement.name, placement, lrp),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::String("50%".into())),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&lrp.id.guid)),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}
