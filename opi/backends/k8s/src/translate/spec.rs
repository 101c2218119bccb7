//! The record a StatefulSet carries of its desired LRP, and the way back.
//!
//! Cube keeps no state of its own: everything [`opi::Scheduler::get`] returns
//! must come from the cluster. The StatefulSet holds the parts that change
//! through updates where Kubernetes keeps them (`spec.replicas`, the routes and
//! last-updated annotations) and the rest as a JSON annotation
//! ([`crate::labels::LRP_SPEC`]) without secrets; the environment comes from the
//! env Secret and registry passwords from the pull Secret.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use opi::model::{
    DesiredLrp, HealthCheck, HealthCheckType, LrpId, LrpLifecycle, Named, RegistryCredentials,
    Routes, VolumeMount,
};
use serde::{Deserialize, Serialize};

use crate::labels;

/// Everything about a desired LRP that is neither secret nor changed by
/// updates. Serialised into [`labels::LRP_SPEC`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrpSpec {
    /// Process type.
    pub process_type: String,
    /// App guid.
    pub app_guid: String,
    /// App name.
    pub app_name: String,
    /// Space guid.
    pub space_guid: String,
    /// Space name.
    pub space_name: String,
    /// Organization guid.
    pub org_guid: String,
    /// Organization name.
    pub org_name: String,
    /// Memory in MB.
    pub memory_mb: u64,
    /// Disk in MB.
    pub disk_mb: u64,
    /// CPU weight.
    pub cpu_weight: u8,
    /// Ports.
    pub ports: Vec<u16>,
    /// `port`, `http` or `process`.
    pub health_check_type: String,
    /// HTTP health check path.
    pub health_check_http_endpoint: String,
    /// Health check timeout.
    pub health_check_timeout_ms: u64,
    /// Start timeout.
    pub start_timeout_ms: u64,
    /// The lifecycle, without passwords.
    pub lifecycle: SpecLifecycle,
    /// User annotations.
    #[serde(default)]
    pub user_defined_annotations: BTreeMap<String, String>,
    /// Volume mounts.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// Placement tags.
    #[serde(default)]
    pub placement_tags: Vec<String>,
    /// Egress rules.
    #[serde(default)]
    pub egress_rules: Vec<serde_json::Value>,
}

/// A lifecycle without secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecLifecycle {
    /// A docker image; the password lives in the pull Secret.
    Docker {
        /// Image.
        image: String,
        /// Command.
        command: Vec<String>,
        /// Whether the image has credentials (in the registry Secret).
        has_credentials: bool,
    },
    /// A droplet.
    Buildpack {
        /// Droplet guid.
        droplet_guid: String,
        /// Droplet hash.
        droplet_hash: String,
        /// Start command.
        start_command: String,
    },
}

impl LrpSpec {
    /// The record of `lrp`.
    pub fn of(lrp: &DesiredLrp) -> Self {
        Self {
            process_type: lrp.process_type.clone(),
            app_guid: lrp.app.guid.clone(),
            app_name: lrp.app.name.clone(),
            space_guid: lrp.space.guid.clone(),
            space_name: lrp.space.name.clone(),
            org_guid: lrp.org.guid.clone(),
            org_name: lrp.org.name.clone(),
            memory_mb: lrp.memory_mb,
            disk_mb: lrp.disk_mb,
            cpu_weight: lrp.cpu_weight,
            ports: lrp.ports.clone(),
            health_check_type: lrp.health_check.kind.as_str().to_owned(),
            health_check_http_endpoint: lrp.health_check.http_endpoint.clone(),
            health_check_timeout_ms: lrp.health_check.timeout_ms,
            start_timeout_ms: lrp.start_timeout_ms,
            lifecycle: match &lrp.lifecycle {
                LrpLifecycle::Docker {
                    image,
                    command,
                    credentials,
                } => SpecLifecycle::Docker {
                    image: image.clone(),
                    command: command.clone(),
                    has_credentials: credentials.is_some(),
                },
                LrpLifecycle::Buildpack {
                    droplet_guid,
                    droplet_hash,
                    start_command,
                } => SpecLifecycle::Buildpack {
                    droplet_guid: droplet_guid.clone(),
                    droplet_hash: droplet_hash.clone(),
                    start_command: start_command.clone(),
                },
            },
            user_defined_annotations: lrp.user_defined_annotations.clone(),
            volume_mounts: lrp.volume_mounts.clone(),
            placement_tags: lrp.placement_tags.clone(),
            egress_rules: lrp.egress_rules.clone(),
        }
    }

    /// The record as the annotation value.
    pub fn to_annotation(&self) -> String {
        // Serialising plain strings, numbers and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a StatefulSet could not be read back as a desired LRP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("StatefulSet {name} is not a Cube LRP: {why}")]
pub struct Unreadable {
    /// The StatefulSet.
    pub name: String,
    /// What is missing or malformed.
    pub why: String,
}

/// Parts of the desired LRP that live outside the StatefulSet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// The environment (from the env Secret).
    pub environment: BTreeMap<String, String>,
    /// Docker registry credentials (from the registry Secret).
    pub credentials: Option<RegistryCredentials>,
}

/// The full process guid and version a StatefulSet currently runs.
pub fn lrp_id(sts: &StatefulSet) -> Option<LrpId> {
    let annotations = sts.metadata.annotations.as_ref()?;
    Some(LrpId::new(
        annotations.get(labels::PROCESS_GUID)?.clone(),
        annotations.get(labels::VERSION)?.clone(),
    ))
}

/// Rebuilds the desired LRP from its StatefulSet and secrets.
pub fn desired_lrp(sts: &StatefulSet, secrets: Secrets) -> Result<DesiredLrp, Unreadable> {
    let name = sts.metadata.name.clone().unwrap_or_default();
    let unreadable = |why: &str| Unreadable {
        name: name.clone(),
        why: why.to_owned(),
    };
    let id = lrp_id(sts).ok_or_else(|| unreadable("no process guid/version annotations"))?;
    let annotations = sts.metadata.annotations.clone().unwrap_or_default();
    let spec: LrpSpec = serde_json::from_str(
        annotations
            .get(labels::LRP_SPEC)
            .ok_or_else(|| unreadable("no LRP record annotation"))?,
    )
    .map_err(|e| unreadable(&format!("bad LRP record: {e}")))?;
    let routes: Routes = match annotations.get(labels::ROUTES) {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| unreadable(&format!("bad routes: {e}")))?
        }
        None => Routes::default(),
    };
    let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let kind = match spec.health_check_type.as_str() {
        "http" => HealthCheckType::Http,
        "process" => HealthCheckType::Process,
        _ => HealthCheckType::Port,
    };
    let lifecycle = match spec.lifecycle {
        SpecLifecycle::Docker {
            image,
            command,
            has_credentials,
        } => LrpLifecycle::Docker {
            image,
            command,
            credentials: if has_credentials {
                secrets.credentials
            } else {
                None
            },
        },
        SpecLifecycle::Buildpack {
            droplet_guid,
            droplet_hash,
            start_command,
        } => LrpLifecycle::Buildpack {
            droplet_guid,
            droplet_hash,
            start_command,
        },
    };
    Ok(DesiredLrp {
        id,
        process_type: spec.process_type,
        app: Named {
            guid: spec.app_guid,
            name: spec.app_name,
        },
        space: Named {
            guid: spec.space_guid,
            name: spec.space_name,
        },
        org: Named {
            guid: spec.org_guid,
            name: spec.org_name,
        },
        instances: u32::try_from(replicas).unwrap_or(0),
        memory_mb: spec.memory_mb,
        disk_mb: spec.disk_mb,
        cpu_weight: spec.cpu_weight,
        ports: spec.ports,
        routes,
        environment: secrets.environment.into(),
        health_check: HealthCheck {
            kind,
            http_endpoint: spec.health_check_http_endpoint,
            timeout_ms: spec.health_check_timeout_ms,
        },
        start_timeout_ms: spec.start_timeout_ms,
        lifecycle,
        annotation: annotations
            .get(labels::LAST_UPDATED)
            .cloned()
            .unwrap_or_default(),
        user_defined_annotations: spec.user_defined_annotations,
        volume_mounts: spec.volume_mounts,
        placement_tags: spec.placement_tags,
        egress_rules: spec.egress_rules,
    })
}

/// The versions a StatefulSet lists as superseded but not stopped.
pub fn superseded_versions(sts: &StatefulSet) -> Vec<String> {
    sts.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::SUPERSEDED_VERSIONS))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}
